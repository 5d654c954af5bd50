"""`sbuild cache ls` and `sbuild cache prune` against the real registry: entries with what the history records
say of them, gone branches pruned by digest, a digest a kept tag shares never deleted, a registry that
refuses deletes left whole."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from .conftest import REGISTRY, Registry, sbuild

pytestmark = [pytest.mark.usefixtures("registry"), pytest.mark.one_pair]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture
def repo(example: Path, tmp_path: Path) -> Path:
    """The pipeline as a clone of a (local, bare) origin that has main only."""
    tag = uuid.uuid4().hex
    (example / "src" / "build.sh").write_text((example / "src" / "build.sh").read_text() + f"\n# {tag}\n")
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    _git(example, "init", "-q", "-b", "main")
    _git(example, "remote", "add", "origin", str(origin))
    _git(example, "add", ".")
    _git(example, "commit", "-qm", "one")
    _git(example, "push", "-q", "origin", "main")
    return example


def _ls(cache: str, cwd: Path) -> list[dict]:
    cp = sbuild("cache", "ls", "--cache-repo", cache, "--json", cwd=cwd)
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)["entries"]


def test_ls_and_prune_of_a_gone_branch_by_digest(repo: Path) -> None:
    cache = f"{REGISTRY}/sbuild-it/keep-{uuid.uuid4().hex[:10]}"
    assert sbuild("--stage", "test", "--cache-repo", cache, str(repo)).returncode == 0  # main
    _git(repo, "checkout", "-qb", "feature/gone")
    assert sbuild("--stage", "test", "--cache-repo", cache, str(repo)).returncode == 0  # the same cache as main's
    (repo / "tests" / "run.sh").write_text((repo / "tests" / "run.sh").read_text() + "\n# feature\n")
    _git(repo, "checkout", "-qb", "feature/other")
    assert sbuild("--stage", "test", "--cache-repo", cache, "--branch", "feature/other", str(repo)).returncode == 0
    entries = {e["tag"]: e for e in _ls(cache, repo)}
    assert {"test-main", "test-feature-gone", "test-feature-other"} <= set(entries)
    assert entries["test-feature-gone"]["branch"] == "feature/gone"  # the original name, from the record
    assert entries["test-main"]["commit"] and entries["test-main"]["size"] > 0
    assert entries["test-feature-gone"]["digest"] == entries["test-main"]["digest"]  # nothing new on the branch
    # Dry run: what would go; nothing goes.
    cp = sbuild("cache", "prune", "--cache-repo", cache, "--gone-branches", "--keep", "main", "--dry-run", "--json",
                cwd=repo)
    assert cp.returncode == 0, cp.stderr
    dry = json.loads(cp.stdout)
    would = {e["tag"] for e in dry["would_delete"]}
    assert "test-feature-other" in would and "test-main" not in would
    assert "test-feature-gone" not in would  # its digest is main's: deleting it would take main's cache
    assert set(entries) <= {e["tag"] for e in _ls(cache, repo)}
    cp = sbuild("cache", "prune", "--cache-repo", cache, "--gone-branches", "--keep", "main", cwd=repo)
    assert cp.returncode == 0, cp.stderr
    after = {e["tag"] for e in _ls(cache, repo)}
    assert "test-main" in after and "test-feature-other" not in after


def test_a_registry_that_refuses_deletes_is_left_whole(repo: Path, private_registry: Registry) -> None:
    # The private registry runs without storage.delete.enabled: every DELETE is refused.
    base = f"{REGISTRY}/sbuild/busybox:latest"
    cache = f"{private_registry.addr}/sbuild-it/refuse"
    _git(repo, "checkout", "-qb", "feature/refused")
    cp = sbuild("--stage", "test", "--cache-repo", cache, "--build-arg", f"BASE_IMAGE={base}", str(repo))
    assert cp.returncode == 0, cp.stderr[-2000:]
    before = _ls(cache, repo)
    cp = sbuild("cache", "prune", "--cache-repo", cache, "--gone-branches", "--keep", "main", cwd=repo)
    assert cp.returncode == 1
    assert "refused to delete" in cp.stderr and "0 of 1 deleted before it" in cp.stderr
    assert cp.stderr.count("\n") == 1
    assert [(e["tag"], e["digest"]) for e in _ls(cache, repo)] == [(e["tag"], e["digest"]) for e in before]
