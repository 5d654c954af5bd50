from __future__ import annotations

import re
from pathlib import Path

import pytest

from sbuild import cache, cachectl

_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@pytest.mark.parametrize(("name", "tag"), [
    ("main", "main"), ("feature/x", "feature-x"), ("Fix Bug #12", "Fix-Bug-12"), ("-lead", "lead"),
    ("dependabot/npm_and_yarn/lodash-4.17.21", "dependabot-npm_and_yarn-lodash-4.17.21"), (".hidden", "hidden"),
    ("ünïcode", "n-code"), ("///", "_"),
])
def test_tag_safe(name: str, tag: str) -> None:
    assert cache.tag_safe(name) == tag
    assert _TAG.match(cache.tag_safe(name))


def test_long_branch_names_stay_unique_and_valid() -> None:
    a, b = cache.tag_safe("x" * 200 + "a"), cache.tag_safe("x" * 200 + "b")
    assert a != b and len(a) <= 128 and _TAG.match(a)


def test_registry_refs_per_stage_and_branch_one_import_each() -> None:
    there = {"reg:5000/app:test-feature-x", "reg:5000/app:lint-main"}
    s = cache.settings(stages=["lint", "test"], repo="reg:5000/app", cache_dir=None, branch="feature/x",
                       default_branch="main", run_id="1", exists=lambda ref: ref in there)
    assert s is not None
    assert s.per_stage["test"].cache_to == ("type=registry,ref=reg:5000/app:test-feature-x,mode=max",)
    # Exactly one import per stage: the branch's own ref where it exists, else the default branch's.
    assert s.per_stage["test"].cache_from == ("type=registry,ref=reg:5000/app:test-feature-x",)
    assert s.per_stage["lint"].cache_from == ("type=registry,ref=reg:5000/app:lint-main",)
    assert s.imports == ["type=registry,ref=reg:5000/app:lint-main", "type=registry,ref=reg:5000/app:test-feature-x"]
    assert s.exported_to == ["reg:5000/app:lint-feature-x", "reg:5000/app:test-feature-x"]


def test_nothing_in_the_registry_imports_nothing_and_an_unknown_registry_imports_the_branch() -> None:
    none = cache.settings(stages=["test"], repo="r/app", cache_dir=None, branch="b", default_branch="main",
                          run_id="1", exists=lambda ref: False)
    assert none is not None and none.per_stage["test"].cache_from == ()
    unknown = cache.settings(stages=["test"], repo="r/app", cache_dir=None, branch="b", default_branch="main",
                             run_id="1", exists=lambda ref: None)
    assert unknown is not None and unknown.per_stage["test"].cache_from == ("type=registry,ref=r/app:test-b",)


def test_on_the_default_branch_there_is_one_ref() -> None:
    asked: list[str] = []
    s = cache.settings(stages=["test"], repo="r/app", cache_dir=None, branch="main", default_branch="main",
                       run_id="1", exists=lambda ref: asked.append(ref) or True)
    assert s is not None and s.per_stage["test"].cache_from == ("type=registry,ref=r/app:test-main",)
    assert asked == ["r/app:test-main"]


def test_a_local_cache_dir_is_imported_instead_of_the_registry(tmp_path: Path) -> None:
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "index.json").write_text("{}")
    s = cache.settings(stages=["test"], repo="r/app", cache_dir=str(tmp_path), branch="main", default_branch="main",
                       run_id="1", exists=lambda ref: True)
    assert s is not None and s.per_stage["test"].cache_from == (f"type=local,src={tmp_path / 'test'}",)


def test_cache_dir_exports_fresh_and_swaps(tmp_path: Path) -> None:
    s = cache.settings(stages=["test"], repo=None, cache_dir=str(tmp_path), branch=None, default_branch="main",
                       run_id="42")
    assert s is not None
    sc = s.per_stage["test"]
    assert sc.cache_from == ()  # nothing to import yet
    fresh, final = sc.swap[0]
    assert sc.cache_to == (f"type=local,dest={fresh},mode=max",)
    Path(fresh).mkdir()
    (Path(fresh) / "index.json").write_text("{}")
    lock = cache.hold(str(tmp_path))
    assert lock is not None
    cache.swap_in(list(sc.swap), lock)
    assert (Path(final) / "index.json").is_file() and Path(final).resolve() == Path(fresh)
    s2 = cache.settings(stages=["test"], repo=None, cache_dir=str(tmp_path), branch=None, default_branch="main",
                        run_id="43")
    assert s2 is not None and s2.per_stage["test"].cache_from == (f"type=local,src={fresh}",)  # the version
    assert s2.exported_to == [f"local:{final}"]
    fresh2 = s2.per_stage["test"].swap[0][0]
    Path(fresh2).mkdir()
    (Path(fresh2) / "index.json").write_text("{}")
    cache.swap_in(list(s2.per_stage["test"].swap), lock)
    assert Path(final).resolve() == Path(fresh2) and not Path(fresh).exists()  # the old version collected


def test_a_version_another_build_reads_is_kept_until_it_ends(tmp_path: Path) -> None:
    import subprocess
    import sys

    mine = cache.hold(str(tmp_path))
    other = subprocess.Popen([sys.executable, "-c", "import fcntl,os,sys,time; fd=os.open(sys.argv[1], os.O_RDWR); "
                              "fcntl.flock(fd, fcntl.LOCK_SH); print('held', flush=True); time.sleep(30)",
                              str(tmp_path / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and _line(other.stdout) == "held"
        pairs = []
        for run in ("1", "2"):
            s = cache.settings(stages=["test"], repo=None, cache_dir=str(tmp_path), branch=None,
                               default_branch="main", run_id=run)
            assert s is not None
            fresh, final = s.per_stage["test"].swap[0]
            Path(fresh).mkdir()
            (Path(fresh) / "index.json").write_text(run)
            pairs.append((fresh, final))
            assert mine is not None
            cache.swap_in([pairs[-1]], mine)
        # The other build may still read version 1: it stays; the symlink names version 2.
        assert Path(pairs[0][0]).is_dir() and (Path(final) / "index.json").read_text() == "2"
    finally:
        other.kill()
        other.wait()
    assert mine is not None
    cache.collect(pairs[-1:], mine)  # alone now: the old version goes
    assert not Path(pairs[0][0]).exists() and (Path(final) / "index.json").read_text() == "2"


def test_export_unsupported_matches_buildx_message() -> None:
    # buildx 0.13.1, docker driver without the containerd image store (seen in integration/test_cache.py)
    assert cache.EXPORT_UNSUPPORTED.search("ERROR: Cache export is not supported for the docker driver.")


def _entry(tag: str, branch: str | None, digest: str, age_days: float | None = 1.0) -> cachectl.Entry:


    return cachectl.Entry(f"r/c:{tag}", tag, "test", branch, "c" * 40, None,
                          age_days * 86400 if age_days is not None else None, 10, digest)


def test_prune_takes_gone_or_old_branches_never_kept_ones_nor_a_shared_digest() -> None:


    entries = [_entry("test-main", "main", "sha256:m", 90), _entry("test-release-1", "release/1", "sha256:r", 90),
               _entry("test-gone", "gone", "sha256:g"), _entry("test-same", "same", "sha256:m"),
               _entry("test-old", "old", "sha256:o", 40), _entry("test-unknown", None, "sha256:u", None)]
    plan = cachectl.plan_prune(entries, keep=["main", "release/*"], remote={"main", "release/1", "old"},
                               older_than=30 * 86400)
    assert sorted(e.tag for e in plan.delete) == ["test-gone", "test-old"]
    assert plan.why == {"test-gone": "branch gone is gone from the remote", "test-old": "40.0 days old"}
    # "same" is gone too, but its digest is main's: deleting it would delete main's cache.
    assert "test-same" in {e.tag for e in plan.keep} and "test-unknown" in {e.tag for e in plan.keep}
    assert cachectl.plan_prune(entries, keep=["*"], remote=set(), older_than=0).delete == []


def _line(pipe: object, timeout: float = 30.0) -> str:
    """A line from a child's pipe, or "" when none comes within the deadline."""
    import select

    ready, _, _ = select.select([pipe], [], [], timeout)
    return pipe.readline().strip() if ready else ""  # type: ignore[attr-defined]
