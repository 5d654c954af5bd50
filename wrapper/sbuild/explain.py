"""Why a stage missed the cache: its first missed step's inputs against the baseline's. Pure: this build's
report and fingerprints and the baseline's in, one cause per stage out. Never a guess: when nothing that
was compared differs, the answer is `cache-unavailable` (inputs equal, the cache did not have it), and
when there is nothing to compare with, `no-baseline`.

Causes (the contract of a stage's `why.cause`): file, build-arg, base-image, instruction, upstream,
cache-unavailable, no-cache, remote-source, frontend, build-context, builder, no-baseline, unknown.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping

from ._tuple import TYPE_CHECKING
from .report import StageReport

if TYPE_CHECKING:
    from typing import Any, NamedTuple
else:
    from ._tuple import NamedTuple

CAUSES = ("file", "build-arg", "base-image", "instruction", "upstream", "cache-unavailable", "no-cache",
          "remote-source", "frontend", "build-context", "builder", "no-baseline", "unknown")
MAX_PATHS = 20
EXPLAIN_SCHEMA = 1


class Side(NamedTuple):
    """What one build tells about its inputs."""

    fingerprints: Mapping[str, Any] | None  # the record's "fingerprints"
    builder: str | None
    platforms: tuple[str, ...]


class Facts(NamedTuple):
    """This build's own facts that explain a miss without a baseline."""

    no_cache: bool
    no_cache_filter: tuple[str, ...]
    imported: tuple[str, ...]  # cache refs imported
    import_errors: tuple[str, ...]
    build_contexts: Mapping[str, str]  # --build-context name=value
    base_build_contexts: Mapping[str, str] | None


def _short(digest: str | None) -> str:
    return (digest or "?").removeprefix("sha256:")[:12]


def _why(cause: str, step: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"cause": cause, "step": step, "detail": detail, **{k: v for k, v in extra.items() if v is not None}}


def changed_paths(now_dirs: Mapping[str, str], now_listing: Callable[[str], dict[str, str] | None],
                  base_dirs: Mapping[str, str], base_listing: Callable[[str], dict[str, str] | None]
                  ) -> tuple[list[str], list[str], list[str], list[str]]:
    """(changed, added, removed, unknown dirs): only directories whose hash differs are walked."""
    changed: list[str] = []
    added: list[str] = []
    removed: list[str] = []
    unknown: list[str] = []

    def files_under(listing_of: Callable[[str], dict[str, str] | None], h: str, prefix: str, out: list[str]) -> None:
        listing = listing_of(h)
        if listing is None:
            out.append(prefix + "/")
            return
        for name, v in listing.items():
            if name == ".":
                continue
            path = f"{prefix}/{name}" if prefix else name
            if v.startswith("d:"):
                files_under(listing_of, v[2:], path, out)
            else:
                out.append(path)

    def walk(d: str, hn: str | None, hb: str | None) -> None:
        if hn == hb:
            return
        ln = now_listing(hn) if hn else {}
        lb = base_listing(hb) if hb else {}
        if ln is None or lb is None:
            unknown.append((d or ".") + "/")
            return
        for name in sorted(set(ln) | set(lb)):
            a, b = ln.get(name), lb.get(name)
            if name == "." or a == b:
                continue
            path = f"{d}/{name}" if d else name
            a_dir, b_dir = bool(a and a.startswith("d:")), bool(b and b.startswith("d:"))
            if a_dir and b_dir:
                walk(path, a[2:], b[2:])  # type: ignore[index]
                continue
            if a_dir:
                files_under(now_listing, a[2:], path, added)  # type: ignore[index]
            elif a is not None:
                (added if b is None or b_dir else changed).append(path)
            if b_dir:
                files_under(base_listing, b[2:], path, removed)  # type: ignore[index]
            elif b is not None and (a is None or a_dir):
                removed.append(path)

    walk("", now_dirs.get(""), base_dirs.get(""))
    return changed, added, removed, unknown


def _in_sources(path: str, sources: list[str]) -> bool:
    from .fingerprint import select

    return bool(select({path.rstrip("/"): ""}, sources)) or any(
        path.endswith("/") and (posixpath.normpath(s).lstrip("/") + "/").startswith(path) for s in sources)


def _file_detail(changed: list[str], added: list[str], removed: list[str], unknown: list[str]
                 ) -> tuple[str, list[str], int]:
    parts = []
    for label, group in (("changed", changed), ("added", added), ("removed", removed)):
        if group:
            parts.append(f"{group[0]} {label}" if len(group) == 1 else f"{len(group)} files {label}")
    if unknown:
        parts.append(f"changed under {', '.join(unknown[:3])} (the baseline's file list is not here)")
    every = [*changed, *added, *removed, *unknown]
    return "; ".join(parts) or "the files it copies changed", every[:MAX_PATHS], len(every)


def explain(stages: list[StageReport], now: Side, base: Side | None, facts: Facts,
            now_listing: Callable[[str], dict[str, str] | None],
            base_listing: Callable[[str], dict[str, str] | None],
            order: list[str] | None = None) -> dict[str, dict[str, Any] | None]:
    """{stage: why} for every reported stage (None: every step cached)."""
    fp_now = (now.fingerprints or {}).get("stages") or {}
    fp_base = ((base.fingerprints if base else None) or {}).get("stages") if base else None
    by_name = {s.name: s for s in stages}
    keys = [k for k in (order or []) if k in by_name] + [s.name for s in stages if s.name not in (order or [])]
    out: dict[str, dict[str, Any] | None] = {}
    file_cache: dict[str, tuple[list[str], list[str], list[str], list[str]]] = {}

    def files_changed() -> tuple[list[str], list[str], list[str], list[str]]:
        if "x" not in file_cache:
            nd = ((now.fingerprints or {}).get("context") or {}).get("dirs") or {}
            bd = (((base.fingerprints if base else None) or {}).get("context") or {}).get("dirs") or {}
            file_cache["x"] = changed_paths(nd, now_listing, bd, base_listing)
        return file_cache["x"]

    for key in keys:
        s = by_name[key]
        missed = [t for t in sorted(s.timeline, key=lambda t: t.index) if not t.cached]
        if not missed or s.status in ("skipped", "unknown"):
            out[key] = None
            continue
        step = missed[0]
        out[key] = _explain_stage(key, step.index, step.name, fp_now.get(key), fp_base, now, base, facts, out,
                                  files_changed)
    return out


def _explain_stage(key: str, index: int, name: str, mine: Mapping[str, Any] | None,
                   fp_base: Mapping[str, Any] | None, now: Side, base: Side | None, facts: Facts,
                   known: Mapping[str, dict[str, Any] | None],
                   files_changed: Callable[[], tuple[list[str], list[str], list[str], list[str]]]
                   ) -> dict[str, Any]:
    if facts.no_cache or key in facts.no_cache_filter:
        return _why("no-cache", name, "--no-cache" if facts.no_cache else f"--no-cache-filter {key}")
    if base is None or fp_base is None:
        return _why("no-baseline", name, "nothing to compare with: no earlier good build of these stages")
    if (now.builder, now.platforms) != (base.builder, base.platforms):
        return _why("builder", name, f"the baseline ran on builder {base.builder or '?'}"
                    f" ({', '.join(base.platforms) or 'its platform'}), this build on {now.builder or '?'}"
                    f" ({', '.join(now.platforms) or 'its platform'})")
    syn_now = (now.fingerprints or {}).get("syntax")
    syn_base = (base.fingerprints or {}).get("syntax")
    if syn_now != syn_base:
        return _why("frontend", name, f"# syntax= changed: {syn_base or '(built-in)'} → {syn_now or '(built-in)'}")
    theirs = fp_base.get(key)
    if mine is None or theirs is None:
        return _why("no-baseline", name, f"stage {key} is not in the baseline" if mine else "not read")
    frm, bfrm = mine.get("from") or {}, theirs.get("from") or {}
    if frm.get("stage"):
        up = known.get(frm["stage"])
        if up is not None:
            return _why("upstream", name, f"after {frm['stage']}: {up['detail']}", stage=frm["stage"])
    elif frm.get("image") != bfrm.get("image"):
        return _why("base-image", name, f"FROM changed: {bfrm.get('image') or bfrm.get('stage')} → {frm.get('image')}")
    elif frm.get("digest") and bfrm.get("digest") and frm["digest"] != bfrm["digest"]:
        return _why("base-image", name, f"{frm.get('image')} now {_short(frm['digest'])} (was "
                    f"{_short(bfrm['digest'])})")
    steps = {st["index"]: st for st in mine.get("steps", [])}
    bsteps = {st["index"]: st for st in theirs.get("steps", [])}
    cur, old = steps.get(index), bsteps.get(index)
    if cur is None:
        return _why("unknown", name, "this step is not one sbuild read in the Dockerfile")
    if old is None or old.get("text") != cur.get("text"):
        where = f"Dockerfile:{cur.get('line')}"
        before = old.get("text") if old else "(no such step)"
        return _why("instruction", name, f"{where} changed: {before} → {cur.get('text')}")
    if cur.get("remote"):
        return _why("remote-source", name, "ADD of a remote source: BuildKit fetches and checks it again each build")
    args = sorted(k for k in set(cur.get("args", {})) | set(old.get("args", {}))
                  if _arg_differs(cur.get("args", {}).get(k), old.get("args", {}).get(k)))
    if args:
        return _why("build-arg", name, f"build arg{'s' if len(args) > 1 else ''} {', '.join(args)} changed",
                    args=args)
    if cur.get("files") != old.get("files"):
        changed, added, removed, unknown = files_changed()
        srcs = cur.get("sources") or ["."]
        keep = [[p for p in g if _in_sources(p, srcs)] for g in (changed, added, removed, unknown)]
        detail, paths, count = _file_detail(*keep)
        return _why("file", name, detail, paths=paths, count=count)
    src = cur.get("from_stage")
    if src:
        up = known.get(src)
        if up is not None:
            return _why("upstream", name, f"after {src}: {up['detail']}", stage=src)
    if facts.base_build_contexts is not None and dict(facts.build_contexts) != dict(facts.base_build_contexts):
        return _why("build-context", name, "a --build-context source changed")
    return _unavailable(name, facts)


def _arg_differs(a: str | None, b: str | None) -> bool:
    if a == b:
        return False
    # Secret-named args: "set", or HMACs made with different keys, cannot be compared: never a cause.
    for x, y in ((a, b), (b, a)):
        if x == "set" and y is not None and y != "unset":
            return False
    keyed_apart = bool(a and b and a.startswith("hmac:") and b.startswith("hmac:")
                       and a.split(":")[1] != b.split(":")[1])
    return not keyed_apart


def _unavailable(name: str, facts: Facts) -> dict[str, Any]:
    if facts.import_errors:
        what = f"the cache import failed ({facts.import_errors[0]})"
    elif facts.imported:
        what = f"the imported cache ({', '.join(facts.imported)}) did not hold it"
    else:
        what = "no cache was imported"
    return _why("cache-unavailable", name, f"inputs equal the baseline's, but the builder no longer had this step "
                f"and {what}")


def chain(key: str, whys: Mapping[str, dict[str, Any] | None]) -> list[str]:
    """test ← build ← (file: src/app.js changed): the upstream stages back to the first cause."""
    out = [key]
    seen = {key}
    w = whys.get(key)
    while w is not None and w.get("cause") == "upstream" and w.get("stage") not in seen:
        out.append(w["stage"])
        seen.add(w["stage"])
        w = whys.get(w["stage"])
    return out
