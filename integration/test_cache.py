"""Cache export and import per stage and branch, on the real engine and a real registry.

These tests empty a builder's cache to prove what comes back from a cache alone: they build on an engine
of their own (the pair's Engine version, started for this module), never pruning the shared one."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REGISTRY, Registry, Runner, load_base_image, report, sbuild

pytestmark = pytest.mark.usefixtures("registry")
_BUILDER: list[Runner] = []


@pytest.fixture(scope="module", autouse=True)
def own_builder(registry: str) -> Iterator[Runner]:
    runner = Runner()
    try:
        load_base_image(runner.host)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DOCKER_HOST", runner.host)
            _BUILDER.append(runner)
            yield runner
            _BUILDER.clear()
    finally:
        runner.close()


def prune_build_cache() -> None:
    _BUILDER[0].prune()  # this module's own builder: no other test's cache


def _touch(example: Path, rel: str = "tests/run.sh") -> None:
    with (example / rel).open("a") as f:
        f.write(f"# changed {time.time_ns()}\n")


def _stages(rep: dict) -> dict[str, dict]:
    return {s["name"]: s for s in rep["stages"]}


def _repo() -> str:
    return f"{REGISTRY}/sbuild-it/cache-{uuid.uuid4().hex[:8]}"


def _build(example: Path, r: Path, *args: str, env: dict | None = None) -> dict:
    cp = sbuild(*args, "--report", str(r), str(example), env={"SBUILD_BRANCH": "feature/cache-test", **(env or {})})
    assert cp.returncode == 0, cp.stderr[-3000:]
    return report(r)


def test_cache_repo_survives_a_pruned_builder(example: Path, tmp_path: Path) -> None:
    repo, r = _repo(), tmp_path / "r.json"
    _touch(example, "src/greet.sh")  # content no earlier build had
    first = _build(example, r, "--stage", "test", "--cache-repo", repo)
    assert first["cache"]["exported_to"] == [f"{repo}:test-feature-cache-test"]
    assert first["cache"]["imported_from"] == []  # a new repository: nothing to import
    prune_build_cache()
    again = _build(example, r, "--stage", "test", "--cache-repo", repo)
    assert again["cache"]["hit_ratio"] == 1.0, again["stages"]
    assert again["cache"]["imported_from"] == [f"type=registry,ref={repo}:test-feature-cache-test"]
    _touch(example)  # only the test stage copies tests/
    prune_build_cache()
    third = _stages(_build(example, r, "--stage", "test", "--cache-repo", repo))
    assert third["base"]["status"] == third["build"]["status"] == "cached"
    assert third["test"]["first_miss"] == "[test 1/2] COPY tests/ ./tests/"


def test_pruned_rebuild_of_several_stages_round_trips_at_one(example: Path, tmp_path: Path) -> None:
    # Several stages that import cache were built in one bake session before; on Engine 28 (BuildKit 0.2x)
    # that came back at 0.625-0.875 after a prune, because BuildKit follows a shared step into one imported
    # cache only. Each stage now imports exactly its own ref, in a session of its own.
    r = tmp_path / "r.json"
    for i in range(3):
        repo = _repo()
        _touch(example, "src/greet.sh")  # content no earlier build had
        _build(example, r, "--stage", "lint,test,deploy", "--cache-repo", repo)
        prune_build_cache()
        rep = _build(example, r, "--stage", "lint,test,deploy", "--cache-repo", repo)
        assert rep["cache"]["hit_ratio"] == 1.0, (i, [(s["name"], s["status"]) for s in rep["stages"]])
        assert rep["cache"]["imported_from"] == [f"type=registry,ref={repo}:{s}-feature-cache-test"
                                                 for s in ("lint", "test", "deploy")]
        assert [s["name"] for s in rep["stages"]] == ["base", "build", "lint", "test", "deploy"]


def test_different_stages_do_not_overwrite_each_other(example: Path, tmp_path: Path) -> None:
    repo, r = _repo(), tmp_path / "r.json"
    _touch(example, "src/greet.sh")
    _build(example, r, "--stage", "lint", "--cache-repo", repo)
    _build(example, r, "--stage", "test", "--cache-repo", repo)
    prune_build_cache()
    assert _build(example, r, "--stage", "lint", "--cache-repo", repo)["cache"]["hit_ratio"] == 1.0
    prune_build_cache()
    assert _build(example, r, "--stage", "test", "--cache-repo", repo)["cache"]["hit_ratio"] == 1.0


def test_feature_branch_falls_back_to_the_default_branch_cache(example: Path, tmp_path: Path) -> None:
    repo, r = _repo(), tmp_path / "r.json"
    _touch(example, "src/greet.sh")
    _build(example, r, "--stage", "test", "--cache-repo", repo, env={"SBUILD_BRANCH": "main"})
    prune_build_cache()
    rep = _build(example, r, "--stage", "test", "--cache-repo", repo, env={"SBUILD_BRANCH": "feature/new"})
    assert rep["cache"]["hit_ratio"] == 1.0  # nothing under feature-new yet: main's cache served


def _size(d: Path) -> int:
    import os

    # os.walk does not follow the stage's symlink: each version is counted once.
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(d) for f in files)


def test_cache_dir_round_trip_and_bounded_size(example: Path, tmp_path: Path) -> None:
    cache, r = tmp_path / "cache", tmp_path / "r.json"
    _touch(example, "src/greet.sh")
    _build(example, r, "--stage", "test", "--cache-dir", str(cache))
    assert (cache / "test" / "index.json").is_file()
    first = _size(cache)
    prune_build_cache()
    assert _build(example, r, "--stage", "test", "--cache-dir", str(cache))["cache"]["hit_ratio"] == 1.0
    sizes = []
    for _ in range(5):
        _touch(example)
        _touch(example, "src/greet.sh")
        _build(example, r, "--stage", "test", "--cache-dir", str(cache))
        sizes.append(_size(cache))
    assert max(sizes) < 2 * first, (first, sizes)
    _one_version(cache)

    # A failed build keeps the old cache.
    index = (cache / "test" / "index.json").read_bytes()
    (example / "tests" / "run.sh").write_text("exit 9\n")
    cp = sbuild("--stage", "test", "--cache-dir", str(cache), str(example))
    assert cp.returncode == 1
    assert (cache / "test" / "index.json").read_bytes() == index
    _one_version(cache)


def _one_version(cache: Path) -> None:
    """No leftovers: the stage's symlink, the version it names, and the lock file."""
    current = (cache / "test").resolve().name
    assert (cache / "test").is_symlink() and current.startswith(".test.v-")
    assert sorted(p.name for p in cache.iterdir()) == sorted([".lock", current, "test"])


def test_registry_down_during_export_does_not_fail_a_good_build(example: Path, tmp_path: Path,
                                                                   private_registry: Registry) -> None:
    repo, r = f"{private_registry.addr}/app", tmp_path / "r.json"
    iid = tmp_path / "iid"
    _build(example, r, "--stage", "test", "--cache-repo", repo)
    private_registry.stop()
    _touch(example)
    cp = sbuild("--stage", "test,deploy", "--cache-repo", repo, "--report", str(r), "--iidfile", str(iid),
                str(example))
    assert cp.returncode == 0, cp.stderr[-3000:]
    assert "warning: cache export failed; the build itself succeeded" in cp.stderr
    rep = report(r)
    assert rep["status"] == "success"
    assert rep["cache"]["exported_to"] == []
    assert rep["cache"]["export_errors"] and "exporting cache" in rep["cache"]["export_errors"][0]
    assert iid.read_text().startswith("sha256:")  # buildx's outputs are still there
    cp = sbuild("--stage", "test", "--cache-repo", repo, "--cache-required", str(example))
    assert cp.returncode != 0
    assert "--cache-required" in cp.stderr


def test_warm_then_pruned_stage_build_is_all_cached(example: Path, tmp_path: Path) -> None:
    repo, r = _repo(), tmp_path / "r.json"
    _touch(example, "src/greet.sh")
    cp = sbuild("warm", "--cache-repo", repo, "--report", str(r), str(example))
    assert cp.returncode == 0, cp.stderr[-3000:]
    warm = report(r)
    assert {s["name"] for s in warm["stages"]} == {"base", "build", "lint", "test", "static-analysis", "deploy"}
    assert len(warm["cache"]["exported_to"]) == 6
    assert warm["tags"] == []
    prune_build_cache()
    assert _build(example, r, "--stage", "test", "--cache-repo", repo)["cache"]["hit_ratio"] == 1.0


def test_warm_needs_a_cache_destination(example: Path) -> None:
    cp = sbuild("warm", str(example))
    assert cp.returncode == 2 and "needs somewhere to put the cache" in cp.stderr


def test_builder_that_cannot_export_cache(example: Path, tmp_path: Path, classic_daemon: str) -> None:
    r = tmp_path / "r.json"
    env = {"DOCKER_HOST": classic_daemon}
    rep = _build(example, r, "--stage", "test", "--network=none", "--cache-repo", _repo(), env=env)
    assert rep["status"] == "success" and rep["cache"]["exported_to"] == []
    assert "cannot export cache" in rep["cache"]["export_errors"][0]
    cp = sbuild("--stage", "test", "--network=none", "--cache-repo", _repo(), "--cache-required", str(example),
                env=env)
    assert cp.returncode == 1
    assert cp.stderr.strip().splitlines()[-1].startswith("error: this builder cannot export cache")


def test_registry_failing_only_during_export(example: Path, tmp_path: Path) -> None:
    """The cache registry answers the import, then fails every export request (connection reset)."""
    from .faultproxy import FaultProxy

    def export_request(method: str, path: str) -> bool:
        return (method == "HEAD" and "/blobs/" in path) or method in ("POST", "PUT", "PATCH")

    proxy = FaultProxy(REGISTRY, "reset", 10**6, export_request)
    try:
        repo, r = f"{proxy.addr}/sbuild-it/export-down-{uuid.uuid4().hex[:8]}", tmp_path / "r.json"
        _touch(example)
        cp = sbuild("--stage", "test", "--cache-repo", repo, "--retries", "1", "--retry-wait", "0.05",
                    "--report", str(r), str(example))
        assert cp.returncode == 0, cp.stderr[-3000:]
        rep = report(r)
        assert rep["status"] == "success" and rep["cache"]["exported_to"] == []
        assert "exporting cache" in rep["cache"]["export_errors"][0]
        assert rep["attempts"] == 2  # transient: retried once (--retries 1), then given up as a warning
        assert proxy.injected and all(m != "GET" for m, _ in proxy.injected)
    finally:
        proxy.close()
