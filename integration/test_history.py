"""The history against the real engine and registry: baselines per branch, never a failed build, a fresh
runner's baseline from the registry, a registry that refuses the record, and the deploy image's facts."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REGISTRY, report, sbuild
from .faultproxy import FaultProxy

pytestmark = pytest.mark.usefixtures("registry")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture
def repo(example: Path) -> Path:
    """examples/pipeline as a git repository on main, with a remote URL (never contacted)."""
    _git(example, "init", "-q", "-b", "main")
    _git(example, "remote", "add", "origin", "https://ci:not-a-token@git.example.com/team/pipeline.git")
    _git(example, "add", ".")
    _git(example, "commit", "-qm", "one")
    return example


def _build(repo: Path, name: str, *extra: str, env: dict[str, str] | None = None) -> dict:
    cp = sbuild("--stage", "test", "--report", str(repo.parent / name), *extra, str(repo), env=env)
    assert (repo.parent / name).exists(), cp.stderr[-3000:]
    rep = report(repo.parent / name)
    rep["_stderr"] = cp.stderr
    return rep


def test_baselines_follow_the_branch_and_never_a_failed_build(repo: Path) -> None:
    one = _build(repo, "one.json")
    assert one["status"] == "success" and one["id"] and one["baseline"] is None
    two = _build(repo, "two.json")
    assert two["baseline"]["id"] == one["id"] and two["baseline"]["branch"] == "main"
    assert two["baseline"]["source"] == "local"
    before = {s["name"]: s["duration_s"] for s in one["stages"]}
    assert {s["name"]: s["baseline_duration_s"] for s in two["stages"]} == {s["name"]: before[s["name"]]
                                                                           for s in two["stages"]}, one["stages"]
    # A new branch: its first build compares with main's latest success.
    _git(repo, "checkout", "-qb", "feature/x")
    three = _build(repo, "three.json")
    assert three["baseline"]["id"] == two["id"]
    # A failing test on main is recorded, and is no baseline for the build after it.
    _git(repo, "checkout", "-q", "main")
    run = repo / "tests" / "run.sh"
    good = run.read_text()
    run.write_text("echo failing on purpose >&2; exit 1\n")
    four = _build(repo, "four.json")
    assert four["status"] == "failed" and four["baseline"]["id"] == two["id"]
    run.write_text(good)
    five = _build(repo, "five.json")
    assert five["baseline"]["id"] == two["id"]
    cp = sbuild("history", "--json", cwd=repo)
    assert cp.returncode == 0, cp.stderr
    listed = json.loads(cp.stdout)
    assert listed["project"] == "git.example.com/team/pipeline:Dockerfile"  # credentials gone
    assert [(b["id"], b["branch"], b["status"]) for b in listed["builds"]] == [
        (five["id"], "main", "success"), (four["id"], "main", "failed"), (three["id"], "feature/x", "success"),
        (two["id"], "main", "success"), (one["id"], "main", "success")]
    cp = sbuild("diff", five["id"], "--json", cwd=repo)
    assert cp.returncode == 0, cp.stderr
    d = json.loads(cp.stdout)
    assert (d["a"]["id"], d["b"]["id"]) == (two["id"], five["id"])
    # The test stage's sources changed and changed back: its steps were rebuilt after the failure.
    assert [s["name"] for s in d["stages"]] == ["base", "build", "test"]


def test_the_deploy_image_digest_size_and_layers_are_recorded(repo: Path) -> None:
    name = f"sbuild-it/hist-{uuid.uuid4().hex[:8]}:1"
    cp = sbuild("--stage", "test,deploy", "-t", name, "--report", str(repo.parent / "r.json"), str(repo))
    assert cp.returncode == 0, cp.stderr[-2000:]
    rep = report(repo.parent / "r.json")
    inspect = json.loads(subprocess.run(["docker", "image", "inspect", name], capture_output=True, text=True,
                                        check=True).stdout)[0]
    assert rep["image"]["digest"] == inspect["Id"]
    assert rep["image"]["size"] == inspect["Size"] and rep["image"]["layers"] == len(inspect["RootFS"]["Layers"])
    subprocess.run(["docker", "image", "rm", name], capture_output=True)


def test_a_fresh_runner_gets_its_baseline_from_the_registry(repo: Path, tmp_path: Path) -> None:
    cache = f"{REGISTRY}/sbuild-it/hist-{uuid.uuid4().hex[:10]}"
    first = _build(repo, "a.json", "--cache-repo", cache, env={"SBUILD_HOME": str(tmp_path / "runner-a")})
    assert first["status"] == "success", first["_stderr"][-2000:]
    tags = json.loads(subprocess.run(["curl", "-sf", f"http://{cache.replace(REGISTRY, REGISTRY + '/v2', 1)}"
                                      "/tags/list"], capture_output=True, text=True, check=True).stdout)["tags"]
    record_tags = [t for t in tags if t.startswith("_sbuild-history-")]
    assert len(record_tags) == 1 and "test-main" in tags  # beside the cache, never one of its tags
    second = _build(repo, "b.json", "--cache-repo", cache, env={"SBUILD_HOME": str(tmp_path / "runner-b")})
    assert second["baseline"] == {"id": first["id"], "branch": "main", "commit": second["baseline"]["commit"],
                                  "finished_at": second["baseline"]["finished_at"], "source": "registry"}
    assert second["cache"]["hit_ratio"] == 1.0


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    # Every manifest PUT of a history record fails (500: the record push retries it, then gives up).
    p = FaultProxy(REGISTRY, "500", 1000, lambda method, path: method == "PUT" and "/manifests/_sbuild-history" in path)
    yield p
    p.close()


def test_a_registry_refusing_the_record_leaves_the_build_green(repo: Path, proxy: FaultProxy) -> None:
    cache = f"{proxy.addr}/sbuild-it/hist-{uuid.uuid4().hex[:10]}"
    rep = _build(repo, "r.json", "--cache-repo", cache)
    assert rep["status"] == "success" and rep["exit_code"] == 0, rep["_stderr"][-2000:]
    warned = [ln for ln in rep["_stderr"].splitlines() if "record not pushed to the registry" in ln]
    assert len(warned) == 1 and "the build is fine" in warned[0]
    assert proxy.injected  # the refusal did happen
    cp = sbuild("history", "--json", cwd=repo)
    assert [b["id"] for b in json.loads(cp.stdout)["builds"]] == [rep["id"]]  # kept locally all the same
