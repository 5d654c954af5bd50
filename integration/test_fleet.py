"""Beyond one machine: two CI runners (two engines) that share only the registry, and a builder that is
not the default one, reached through a docker context."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from .conftest import REGISTRY, Runner, report, sbuild

pytestmark = pytest.mark.usefixtures("registry")
BASE = f"{REGISTRY}/sbuild/busybox:latest"  # what a runner with an empty engine pulls


def _unique(example: Path) -> None:
    tag = uuid.uuid4().hex
    for rel in ("src/build.sh", "tests/run.sh"):
        p = example / rel
        p.write_text(p.read_text() + f"\n# {tag}\n")


def test_two_runners_share_one_cache_through_the_registry(example: Path, tmp_path: Path,
                                                          second_runner: Runner) -> None:
    _unique(example)
    cache = f"{REGISTRY}/sbuild-it/fleet-{uuid.uuid4().hex[:10]}"
    common = ["--stage", "test", "--build-arg", f"BASE_IMAGE={BASE}", "--cache-repo", cache]
    a = tmp_path / "a.json"
    cp = sbuild(*common, "--branch", "main", "--report", str(a), str(example),
                env={"SBUILD_HOME": str(tmp_path / "home-a")})
    assert cp.returncode == 0, cp.stderr[-3000:]
    assert report(a)["cache"]["hit_ratio"] < 1.0  # runner A built it
    # Runner B: another engine, empty, sharing only the registry; the same commit.
    du = subprocess.run(["docker", "-H", second_runner.host, "buildx", "du"], capture_output=True, text=True)
    assert "Total:\t0B" in du.stdout.replace(" ", "") or du.stdout.strip().endswith("0B"), du.stdout
    env_b = {"DOCKER_HOST": second_runner.host, "SBUILD_HOME": str(tmp_path / "home-b")}
    b = tmp_path / "b.json"
    cp = sbuild(*common, "--branch", "main", "--report", str(b), str(example), env=env_b)
    assert cp.returncode == 0, cp.stderr[-3000:]
    rb = report(b)
    assert rb["cache"]["hit_ratio"] == 1.0, rb["stages"]
    assert rb["baseline"]["source"] == "registry"  # and the history came with it
    # B on a new branch: it imports main's cache, so its first build is cached wherever main's is.
    c = tmp_path / "c.json"
    cp = sbuild(*common, "--branch", "feature/fleet", "--default-branch", "main", "--report", str(c),
                str(example), env=env_b)
    assert cp.returncode == 0, cp.stderr[-3000:]
    rc = report(c)
    assert rc["cache"]["hit_ratio"] == 1.0 and f"{cache}:test-main" in " ".join(rc["cache"]["imported_from"])


def _other_engine() -> str:
    """The engine this pair's DOCKER_HOST does not name: the second pair's socket, or the default one."""
    sid = "unix:///run/sbuild-engine28/docker.sock"
    return "unix:///var/run/docker.sock" if os.environ.get("DOCKER_HOST") == sid else sid


@pytest.fixture
def context_builder() -> str:
    name = f"sbuild-it-{uuid.uuid4().hex[:8]}"
    cp = subprocess.run(["docker", "context", "create", name, "--docker", f"host={_other_engine()}"],
                        capture_output=True, text=True, env={**os.environ, "DOCKER_HOST": ""})
    if cp.returncode != 0:
        pytest.fail(f"docker context create: {cp.stderr}")
    yield name
    subprocess.run(["docker", "context", "rm", "-f", name], capture_output=True,
                   env={**os.environ, "DOCKER_HOST": ""})


def test_another_engine_as_a_builder_every_path(example: Path, tmp_path: Path, context_builder: str) -> None:
    # buildx takes a docker context's builder from DOCKER_CONTEXT (or `docker --context`); `--builder CONTEXT`
    # it refuses ("use `docker --context=X buildx`"), 0.13 and 0.29 alike, and so does sbuild, drop-in.
    _unique(example)
    env = {"DOCKER_CONTEXT": context_builder, "DOCKER_HOST": ""}
    b = ["--build-arg", f"BASE_IMAGE={BASE}"]
    cache = f"{REGISTRY}/sbuild-it/ctx-{uuid.uuid4().hex[:10]}"
    image = f"{REGISTRY}/sbuild-it/ctx-app-{uuid.uuid4().hex[:8]}:1"
    r = tmp_path / "r.json"
    # Several stages in one bake session, the deploy image made after they passed, pushed; cache per stage.
    cp = sbuild(*b, "--stage", "lint,test,deploy", "-t", image, "--push", "--cache-repo", cache, "--report",
                str(r), str(example), env=env)
    assert cp.returncode == 0, cp.stderr[-3000:]
    rep = report(r)
    assert rep["pushed"] == [image] and {s["name"] for s in rep["stages"]} >= {"lint", "test", "deploy"}
    tags = json.loads(subprocess.run(["curl", "-sf", f"http://{REGISTRY}/v2/{cache.split('/', 1)[1]}/tags/list"],
                                     capture_output=True, text=True, check=True).stdout)["tags"]
    assert {t.split("-", 1)[0] for t in tags if not t.startswith("_")} == {"lint", "test", "deploy"}
    assert rep["image"]["digest"] and rep["image"]["size"]  # from the pushed manifest, not an engine
    # The docker driver keeps a pushed image in its engine too: the other engine, which the session's cleanup
    # of DOCKER_HOST's engine never sees (one image per CI run stayed there).
    subprocess.run(["docker", "--context", context_builder, "image", "rm", image], capture_output=True,
                   env={**os.environ, "DOCKER_HOST": ""})
    # --load puts the deploy image in the builder's engine, not in DOCKER_HOST's.
    local = f"sbuild-it/ctx-load-{uuid.uuid4().hex[:8]}:1"
    cp = sbuild(*b, "--stage", "test,deploy", "-t", local, "--load", str(example), env=env)
    assert cp.returncode == 0, cp.stderr[-3000:]
    there = subprocess.run(["docker", "--context", context_builder, "image", "inspect", local], capture_output=True,
                           env={**os.environ, "DOCKER_HOST": ""})
    here = subprocess.run(["docker", "image", "inspect", local], capture_output=True)
    assert there.returncode == 0 and here.returncode != 0
    subprocess.run(["docker", "--context", context_builder, "image", "rm", local], capture_output=True,
                   env={**os.environ, "DOCKER_HOST": ""})
    # warm into a local cache directory through the same builder.
    cp = sbuild("warm", *b, "--cache-dir", str(tmp_path / "cache"), str(example), env=env)
    assert cp.returncode == 0, cp.stderr[-3000:]
    assert (tmp_path / "cache" / "deploy" / "index.json").is_file()
