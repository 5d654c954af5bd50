"""Cache housekeeping for cache-warming jobs: `sbuild cache ls` and `sbuild cache prune`. Off the build path.

A registry keeps no age, commit or original branch name for a tag (and `<stage>-<branch>` tags are made
tag-safe, so `feature/x` and `feature-x` look alike): what sbuild knows of a cache entry it reads from the
history records it pushed beside the cache (history_registry: their annotations carry project, branch,
stages, commit and time). An entry no record speaks of is listed with what the registry says (size,
digest) and is never pruned: sbuild does not guess a branch.

Pruning deletes manifests by digest through the registry API, and never a digest a kept tag still points
to (a branch whose cache equals main's would otherwise take main's with it).
"""

from __future__ import annotations

import fnmatch
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from .cache import tag_safe
from .errors import SbuildError, UsageError

LS_SCHEMA = 1
WORKERS = 8  # registry requests at once


class Entry(NamedTuple):
    ref: str  # repo:tag, or the local directory
    tag: str
    stage: str | None
    branch: str | None  # the original name, from a history record
    commit: str | None
    created: str | None  # ISO 8601, from a history record (a directory: its mtime)
    age_s: float | None
    size: int | None  # bytes: the cache's blobs (a directory: its files)
    digest: str | None


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return time.mktime(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    except ValueError:
        return None


def _manifest_size(doc: dict[str, Any]) -> int:
    """A cache manifest's blobs: BuildKit's registry cache is an index whose entries are the layers (or, with
    image-manifest=true, an image manifest with layers), plus its config."""
    parts = list(doc.get("manifests") or []) + list(doc.get("layers") or [])
    cfg = doc.get("config") or {}
    return sum(int(p.get("size", 0)) for p in parts) + int(cfg.get("size", 0))


def registry_entries(cache_repo: str) -> list[Entry]:
    from .registry import RegistryError, repository

    client, repo = repository(cache_repo)
    try:
        tags = client.tags(repo)
    except RegistryError as e:
        raise SbuildError(f"cache ls: {e}") from None

    def manifest(tag: str) -> tuple[str, dict[str, Any], str | None]:
        got = client.manifest_with_digest(repo, tag)
        if got is None:
            return tag, {}, None
        doc, digest = got
        return tag, doc, digest

    with ThreadPoolExecutor(WORKERS) as pool:
        try:
            docs = list(pool.map(manifest, tags))
        except RegistryError as e:
            raise SbuildError(f"cache ls: {e}") from None
    # What the records say of each cache tag: the newest record that built that stage on that branch.
    known: dict[str, tuple[str, str, str | None, str | None]] = {}
    records = [(doc.get("annotations") or {}) for tag, doc, _ in docs if tag.startswith("_sbuild-history-")]
    for a in sorted(records, key=lambda a: a.get("org.opencontainers.image.created", "")):
        branch = a.get("dev.sbuild.branch") or ""
        for stage in (a.get("dev.sbuild.stages") or "").split(","):
            if stage:
                known[f"{tag_safe(stage)}-{tag_safe(branch)}"] = (stage, branch, a.get("dev.sbuild.commit") or None,
                                                                 a.get("org.opencontainers.image.created"))
    now = time.time()
    out = []
    for tag, doc, digest in docs:
        if tag.startswith("_sbuild-history-"):
            continue
        stage, branch, commit, created = known.get(tag, (None, None, None, None))
        when = _epoch(created)
        out.append(Entry(f"{cache_repo}:{tag}", tag, stage, branch, commit, created,
                         round(now - when, 1) if when is not None else None, _manifest_size(doc) if doc else None,
                         digest))
    return sorted(out, key=lambda e: e.tag)


def _dir_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def dir_entries(cache_dir: str) -> list[Entry]:
    if not os.path.isdir(cache_dir):
        raise UsageError(f"--cache-dir {cache_dir}: no such directory")
    out = []
    now = time.time()
    for name in sorted(os.listdir(cache_dir)):
        path = os.path.join(cache_dir, name)
        if name.startswith(".") or not os.path.isfile(os.path.join(path, "index.json")):
            continue
        real = os.path.realpath(path)
        mtime = os.path.getmtime(real)
        out.append(Entry(path, name, name, None, None, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime)),
                         round(now - mtime, 1), _dir_size(real), None))
    return out


def ls_json(entries: list[Entry], source: str, where: str) -> dict[str, Any]:
    """The contract of `sbuild cache ls --json`."""
    return {"schema_version": LS_SCHEMA, "source": source, "location": where,
            "entries": [e._asdict() for e in entries]}


class Plan(NamedTuple):
    delete: list[Entry]
    keep: list[Entry]
    why: dict[str, str]  # tag -> why it goes


def plan_prune(entries: list[Entry], *, keep: list[str], remote: set[str] | None, older_than: float | None) -> Plan:
    """Which entries go. Pure. An entry goes when its branch is not kept and it is of a branch gone from the
    remote or older than the limit; an entry whose branch or age sbuild does not know stays."""
    delete, stay, why = [], [], {}
    for e in entries:
        reason = None
        kept = e.branch is not None and any(fnmatch.fnmatchcase(e.branch, p) for p in keep)
        if not kept:
            if remote is not None and e.branch is not None and e.branch not in remote:
                reason = f"branch {e.branch} is gone from the remote"
            elif older_than is not None and e.age_s is not None and e.age_s > older_than:
                reason = f"{e.age_s / 86400:.1f} days old"
        if reason:
            delete.append(e)
            why[e.tag] = reason
        else:
            stay.append(e)
    # A digest a kept tag points to stays, whatever else points to it.
    kept_digests = {e.digest for e in stay if e.digest}
    for e in list(delete):
        if e.digest in kept_digests:
            delete.remove(e)
            stay.append(e)
            why.pop(e.tag, None)
    return Plan(delete, stay, why)


def delete_registry(cache_repo: str, plan: Plan) -> list[Entry]:
    """Delete the plan's manifests; the first refusal stops everything (nothing half-done past it)."""
    from .registry import RegistryError, repository

    client, repo = repository(cache_repo)
    done: list[Entry] = []
    for e in plan.delete:
        if e.digest is None:
            continue
        try:
            client.delete_manifest(repo, e.digest)
        except RegistryError as err:
            text = str(err)
            hint = " (docker-registry: set storage.delete.enabled: true)" if "405" in text or "UNSUPPORTED" in \
                text.upper() else ""
            raise SbuildError(f"cache prune: the registry refused to delete {e.ref}: {text}{hint}; "
                              f"{len(done)} of {len(plan.delete)} deleted before it") from None
        done.append(e)
    return done


def delete_dirs(plan: Plan) -> list[Entry]:
    import shutil

    done: list[Entry] = []
    for e in plan.delete:
        real = os.path.realpath(e.ref)
        os.unlink(e.ref) if os.path.islink(e.ref) else shutil.rmtree(e.ref)
        if real != e.ref:
            shutil.rmtree(real, ignore_errors=True)
        done.append(e)
    return done


def remote_branches(where: str) -> set[str]:
    from .process import git

    out = git(["ls-remote", "--heads", "origin"], where)
    if out is None:
        raise SbuildError("cache prune --gone-branches: `git ls-remote --heads origin` failed here: run it in the "
                          "repository whose branches the cache follows")
    return {line.split("refs/heads/", 1)[1] for line in out.splitlines() if "refs/heads/" in line}


def prune_json(plan: Plan, deleted: list[Entry], dry_run: bool) -> dict[str, Any]:
    return {"schema_version": LS_SCHEMA, "dry_run": dry_run,
            "deleted": [{**e._asdict(), "why": plan.why.get(e.tag)} for e in deleted],
            "would_delete": [{**e._asdict(), "why": plan.why.get(e.tag)} for e in plan.delete] if dry_run else [],
            "kept": [e.tag for e in plan.keep]}


def dump(d: dict[str, Any]) -> str:
    return json.dumps(d, indent=2)
