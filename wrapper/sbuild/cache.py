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
                cfrom.append(f"type=local,src={final}")
            fresh = os.path.join(os.path.abspath(cache_dir), f".{tag_safe(stage)}.new-{run_id}")
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


def swap_in(pairs: list[tuple[str, str]]) -> None:
    """After a good build: replace each stage's cache dir by the fresh export."""
    import shutil

    for fresh, final in pairs:
        if not os.path.isdir(fresh):
            continue
        old = final + ".old"
        shutil.rmtree(old, ignore_errors=True)
        if os.path.exists(final):
            os.rename(final, old)
        os.rename(fresh, final)
        shutil.rmtree(old, ignore_errors=True)


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
