"""The git facts sbuild keys caches (and tags) on: current branch, default branch, commit, tags.

CI checkouts are often a detached HEAD, so the CI's own variables come first.
"""

from __future__ import annotations

import os

from . import process
from ._tuple import TYPE_CHECKING

if TYPE_CHECKING:
    from .tags import GitFacts

# Checked in order; the first set one names the branch being built.
BRANCH_ENV = ("SBUILD_BRANCH", "GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "BUILDKITE_BRANCH",
              "BRANCH_NAME", "GIT_BRANCH")


def current_branch(cwd: str) -> str | None:
    for var in BRANCH_ENV:
        v = os.environ.get(var)
        if v:
            return v.removeprefix("origin/")
    name = process.git(["rev-parse", "--abbrev-ref", "HEAD"], cwd)
    return name if name and name != "HEAD" else None


def default_branch(cwd: str) -> str:
    v = os.environ.get("SBUILD_DEFAULT_BRANCH")
    if v:
        return v
    ref = process.git(["symbolic-ref", "--short", "refs/remotes/origin/HEAD"], cwd)
    if ref:
        return ref.split("/", 1)[-1]
    for name in ("main", "master"):
        if process.git(["rev-parse", "--verify", "--quiet", f"refs/heads/{name}"], cwd) is not None:
            return name
    return "main"


def facts(cwd: str, branch: str | None = None, default: str | None = None) -> GitFacts:
    from .tags import GitFacts

    sha = os.environ.get("SBUILD_SHA") or process.git(["rev-parse", "HEAD"], cwd)
    tags_at_head = process.git(["tag", "--points-at", "HEAD"], cwd)
    return GitFacts(sha, branch or current_branch(cwd), default or default_branch(cwd),
                    tuple((tags_at_head or "").split()))
