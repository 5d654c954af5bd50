"""Cache import/export settings per stage and branch. Pure: options, git facts and what exists in, buildx
args out.

`--cache-repo REF`: each built stage exports to its own registry ref, `REF:<stage>-<branch>` (mode=max),
so jobs building different stages never overwrite each other's cache.

Each stage imports exactly ONE cache: its own ref on the branch when that exists, else the default
branch's. BuildKit combines several imported caches per step by taking the cache key of whichever cache
answers first (solver/combinedcache.go: goroutines over a map) and then looks up the next step in that
cache only, so two imports that share steps (every stage shares its base stages) lose steps at random:
measured on Engine 28.5.2 (BuildKit 0.2x), a pruned rebuild of lint,test,deploy importing every stage's ref
came back at hit ratio 0.625-0.875. For the same reason several stages with imports are built one session
per stage (build.py), not in one bake session whose targets share steps: 1.0 in every try, both engines.

`--cache-dir DIR`: one local cache per stage, `DIR/<stage>`. BuildKit's local exporter never deletes
old blobs, so sbuild exports to a fresh directory and swaps it in only after the build succeeded: the
directory stays the size of one build's cache, and a failed build keeps the old one.

Builds may share a DIR at once (two CI jobs on one runner). `DIR/<stage>` is a symlink to a version
directory `DIR/.<stage>.v-<run>`; a swap replaces the symlink in one rename, so a build never reads a
half-swapped cache. Each build holds a shared lock on `DIR/.lock` while it runs (the kernel drops it when
the process ends, however it ends); old versions are removed only by a build that can take that lock
exclusively, i.e. when no other build is reading one of them.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from typing import NamedTuple

_TAG_BAD = re.compile(r"[^A-Za-z0-9_.-]+")
MAX_TAG = 128


def tag_safe(name: str) -> str:
    """A string made into a valid Docker tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}): feature/x -> feature-x."""
    t = _TAG_BAD.sub("-", name).strip("-.")
    if not t or not (t[0].isalnum() or t[0] == "_"):
        t = "_" + t
    if len(t) > MAX_TAG:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        t = t[: MAX_TAG - 9].rstrip("-.") + "-" + digest
    return t


class StageCache(NamedTuple):
    stage: str
    cache_from: tuple[str, ...]  # buildx --cache-from values: at most one, see the module doc
    cache_to: tuple[str, ...]  # buildx --cache-to values (a temp dir for --cache-dir)
    swap: tuple[tuple[str, str], ...] = ()  # (fresh dir, final dir) to swap in after success


class CacheSettings(NamedTuple):
    per_stage: dict[str, StageCache]

    @property
    def imports(self) -> list[str]:
        """Every stage's import, for the report."""
        return [c for sc in self.per_stage.values() for c in sc.cache_from]

    @property
    def exported_to(self) -> list[str]:
        out = []
        for sc in self.per_stage.values():
            for spec in sc.cache_to:
                out.append(_describe(spec, sc))
        return out


def _describe(spec: str, sc: StageCache) -> str:
    fields = dict(p.split("=", 1) for p in spec.split(",") if "=" in p)
    if fields.get("type") == "local":
        final = dict(sc.swap).get(fields.get("dest", ""), fields.get("dest", ""))
        return f"local:{final}"
    return fields.get("ref", spec)


def registry_refs(repo: str, stage: str, branch: str | None, default_branch: str) -> list[str]:
    """The stage's refs, most specific first: the branch's, then the default branch's."""
    branches = [tag_safe(branch)] if branch else []
    if tag_safe(default_branch) not in branches:
        branches.append(tag_safe(default_branch))
    return [f"{repo}:{tag_safe(stage)}-{b}" for b in branches]


def settings(*, stages: list[str], repo: str | None, cache_dir: str | None, branch: str | None,
             default_branch: str, run_id: str, exists: Callable[[str], bool | None] = lambda ref: None,
             ) -> CacheSettings | None:
    """Cache settings for the stages a build exports (its targets). `exists(ref)` says whether a registry ref
    is there (None: could not tell); each stage imports the first of its refs that exists, its local cache
    directory before any registry ref."""
    if not repo and not cache_dir:
        return None
    per: dict[str, StageCache] = {}
    for stage in stages:
        cfrom: list[str] = []
        cto: list[str] = []
        swap: list[tuple[str, str]] = []
        if cache_dir:
            final = os.path.join(os.path.abspath(cache_dir), tag_safe(stage))
            if os.path.isfile(os.path.join(final, "index.json")):
                # The version the symlink names now: a swap by another build cannot change what this one reads.
                cfrom.append(f"type=local,src={os.path.realpath(final)}")
            fresh = os.path.join(os.path.abspath(cache_dir), f".{tag_safe(stage)}.v-{run_id}")
            cto.append(f"type=local,dest={fresh},mode=max")
            swap.append((fresh, final))
        if repo:
            refs = registry_refs(repo, stage, branch, default_branch)
            if not cfrom:
                found = [exists(r) for r in refs]
                # The first ref that exists; when the registry could not say, the branch's own.
                pick = next((r for r, ok in zip(refs, found, strict=True) if ok), None)
                if pick is None and any(ok is None for ok in found):
                    pick = refs[0]
                if pick is not None:
                    cfrom.append(f"type=registry,ref={pick}")
            cto.append(f"type=registry,ref={refs[0]},mode=max")
        per[stage] = StageCache(stage, tuple(cfrom), tuple(cto), tuple(swap))
    return CacheSettings(per)


def hold(cache_dir: str) -> int | None:
    """A shared lock on DIR/.lock for this build's whole run (None: the directory cannot be locked)."""
    import fcntl

    try:
        os.makedirs(cache_dir, exist_ok=True)
        fd = os.open(os.path.join(cache_dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError:
        return None
    return fd


def swap_in(pairs: list[tuple[str, str]], lock: int | None = None) -> None:
    """After a good build: point each stage's cache at its fresh export (one atomic rename), then remove
    old versions if no other build holds the directory."""
    import time

    for fresh, final in pairs:
        if not os.path.isdir(fresh):
            continue
        link = f"{final}.link-{os.getpid()}"
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(os.path.basename(fresh), link)
        if os.path.isdir(final) and not os.path.islink(final):  # a real directory (an older sbuild): keep it
            os.rename(final, os.path.join(os.path.dirname(final),
                                          f".{os.path.basename(final)}.v-legacy-{time.time_ns()}"))
        os.replace(link, final)
    if lock is not None:
        collect(pairs, lock)


def collect(pairs: list[tuple[str, str]], lock: int) -> None:
    """Remove versions no symlink names, when this build can hold the directory alone."""
    import fcntl
    import shutil

    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another build is running and may be reading an old version: it collects later
    try:
        for _, final in pairs:
            d, name = os.path.dirname(final), os.path.basename(final)
            current = os.path.basename(os.path.realpath(final))
            for entry in os.listdir(d):
                if entry.startswith((f".{name}.v-", f".{name}.new-")) and entry != current:
                    shutil.rmtree(os.path.join(d, entry), ignore_errors=True)
    finally:
        fcntl.flock(lock, fcntl.LOCK_SH)


def discard(pairs: list[tuple[str, str]]) -> None:
    """After a failed build: drop the fresh exports, keep the old cache."""
    import shutil

    for fresh, _ in pairs:
        shutil.rmtree(fresh, ignore_errors=True)


# What buildx says when the builder cannot export cache at all (docker driver, classic image store).
EXPORT_UNSUPPORTED = re.compile(r"cache export (feature )?is (currently )?not supported for (the )?docker driver",
                                re.I)


def is_export_step(name: str) -> bool:
    return name.startswith(("exporting cache", "writing cache"))
