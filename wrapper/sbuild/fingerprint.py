"""Step inputs as BuildKit's cache keys see them, so a miss can be explained without a second build.

For every stage's steps (the instructions that make a BuildKit vertex: RUN, COPY, ADD, WORKDIR; FROM is
step 1): the instruction text and line, the build args in its scope (a hash of each value, as in the
record), what it copies from the context (a hash of the selected files), the stage it copies or mounts
from, whether it fetches a remote source. The context is hashed the way BuildKit's content checksum
compares files: content, mode, owner and symlink target, never mtime; files `.dockerignore` excludes are
not sent, so they are not hashed either (ignore.py). Per-directory hashes let a later build find the
changed files by walking only the directories whose hash differs; each directory's listing is kept once
(by its hash) in the history store.

Runs beside buildx (record.Recorder's thread). A stat cache (path, size, mtime, inode, mode, owner ->
hash) in $SBUILD_HOME keeps unchanged files from being read again.
"""

from __future__ import annotations

import json
import marshal
import os
import re
import stat
from collections.abc import Mapping

from ._tuple import TYPE_CHECKING
from .mask import is_secret_name

if TYPE_CHECKING:
    from typing import Any

SCHEMA = 1
STEP_INSTRUCTIONS = ("RUN", "COPY", "ADD", "WORKDIR")  # each makes a vertex; so does a FROM of an image
_REF = re.compile(r"\$(?:\{(\w+)[^}]*\}|(\w+))")
_WILDCARD = re.compile(r"[*?\[]")
_REMOTE = re.compile(r"^(https?://|git@|git://|ssh://)|\.git(#.*)?$")
CHUNK = 1 << 20
# Files are hashed by the built-in sha256 below (no OpenSSL to load) up to this many bytes in all, then by
# hashlib's OpenSSL one, 6x faster per byte: loading it (~3.5 ms) pays off from ~1 MiB.
BUILTIN_BYTES = 1 << 20
_builtin_left = [BUILTIN_BYTES]

if TYPE_CHECKING:
    from hashlib import sha256 as sha256
else:
    try:  # CPython's own sha256: hashlib loads OpenSSL, ~3.5 ms of CPU beside every build (3.12+: _sha2)
        from _sha256 import sha256
    except ImportError:  # pragma: no cover  (which one exists depends on the Python version)
        try:
            from _sha2 import sha256
        except ImportError:
            from hashlib import sha256


def arg_hash(name: str, value: str | None, key: str | None) -> str:
    """A value as the record keeps it: sha256 of it, or for a secret-named arg an HMAC with the shared key
    ($SBUILD_HASH_KEY) or this machine's own, tagged with which key so that hashes made with two different
    keys are never compared."""
    if value is None:
        return "unset"
    if is_secret_name(name):
        if not key:
            return "set"
        import hmac  # only with a key to hash secrets by (~1.5 ms of CPU on every build otherwise)

        kid = sha256(key.encode()).hexdigest()[:6]
        return f"hmac:{kid}:" + hmac.new(key.encode(), value.encode(), "sha256").hexdigest()[:16]
    return "sha256:" + sha256(value.encode()).hexdigest()[:16]


def _mount_fields(flag: str) -> dict[str, str]:
    out = {}
    for part in flag.split(","):
        k, _, v = part.partition("=")
        out[k.strip().lower()] = v.strip()
    return out


def _flags(c: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in c.flags:
        name, _, value = f.lstrip("-").partition("=")
        out.setdefault(name.lower(), []).append(value)
    return out


def dockerfile_steps(text: str, build_args: Mapping[str, str], stage_keys: list[str],
                     hash_key: str | None) -> dict[str, dict[str, Any]]:
    """{stage key: {"from": {"image": ...} | {"stage": key}, "steps": [step, ...]}} for a Dockerfile.
    stage_keys: the graph's keys in file order (a stage's position names it when it has no name)."""
    import dockerfile

    commands = dockerfile.parse_string(text)
    meta: dict[str, str | None] = {}
    stages: dict[str, dict[str, Any]] = {}
    names: dict[str, str] = {}  # as written (lower) -> key
    current: dict[str, Any] | None = None
    scope: dict[str, str | None] = {}
    position = -1
    index = 1
    for c in commands:
        cmd = c.cmd.upper()
        if cmd == "ARG":
            for kv in c.value:
                k, eq, v = kv.partition("=")
                value = build_args.get(k, v if eq else (meta.get(k) if current is not None else None))
                if current is None:
                    meta[k] = build_args.get(k, v if eq else None)
                else:
                    scope[k] = value
            continue
        if cmd == "FROM":
            position += 1
            key = stage_keys[position] if position < len(stage_keys) else f"stage-{position}"
            base = c.value[0] if c.value else ""
            expanded = _REF.sub(lambda m: str(meta.get(m.group(1) or m.group(2)) or ""), base)
            if len(c.value) >= 3 and c.value[1].lower() == "as":
                names[c.value[2].lower()] = key
            names[str(position)] = key
            frm: dict[str, Any] = {"stage": names[expanded.lower()]} if expanded.lower() in names else \
                {"image": expanded}
            current = stages[key] = {"from": frm, "line": c.start_line, "steps": []}
            scope = {}
            # BuildKit numbers "[stage i/n]" from the FROM only when it pulls an image (convert.go: cmdTotal)
            index = 1 if "image" in frm and expanded.lower() != "scratch" else 0
            continue
        if current is None or cmd not in STEP_INSTRUCTIONS:
            continue
        index += 1
        flags = _flags(c)
        if cmd == "RUN":
            used = list(scope)  # every ARG in scope is in a RUN's environment: all of them key its cache
        else:
            used = [m.group(1) or m.group(2) for m in _REF.finditer(c.original)]
            used = [u for u in dict.fromkeys(used) if u in scope]
        step: dict[str, Any] = {"index": index, "line": c.start_line, "text": c.original.strip(),
                                "args": {k: arg_hash(k, scope.get(k), hash_key) for k in used}}
        sources: list[str] = []
        from_stage = None
        remote = False
        if cmd in ("COPY", "ADD") and not c.heredocs:
            frm_flag = (flags.get("from") or [""])[-1]
            srcs = list(c.value[:-1])
            if frm_flag:
                from_stage = names.get(frm_flag.lower())
            elif cmd == "ADD" and any(_REMOTE.search(s) for s in srcs):
                remote = True
            else:
                sources = srcs
        elif cmd == "RUN":
            for m in flags.get("mount", []):
                f = _mount_fields(m)
                if f.get("type", "bind") != "bind":
                    continue
                src = f.get("from")
                if src:
                    from_stage = names.get(src.lower(), from_stage)
                else:
                    sources.append(f.get("source") or f.get("src") or ".")
        if sources:
            step["sources"] = sources
        if from_stage:
            step["from_stage"] = from_stage
        if remote:
            step["remote"] = True
        current["steps"].append(step)
    return stages


# -- the context --------------------------------------------------------------------------------

def _file_hash(path: str, st: os.stat_result) -> str:
    if st.st_size < _builtin_left[0]:
        _builtin_left[0] -= st.st_size
        h = sha256()
    else:
        import hashlib

        _builtin_left[0] = 0
        h = hashlib.sha256()
    h.update(f"{stat.S_IMODE(st.st_mode):o} {stat.S_IFMT(st.st_mode):o} {st.st_uid} {st.st_gid}\0".encode())
    if stat.S_ISLNK(st.st_mode):
        h.update(os.readlink(path).encode())
    elif stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
    return h.hexdigest()[:16]


class Context:
    """The context's files as BuildKit receives them: {path: hash} and per-directory hashes."""

    def __init__(self, files: dict[str, str], dirs: dict[str, str], listings: dict[str, dict[str, str]]) -> None:
        self.files = files  # "src/app.js" -> hash
        self.dirs = dirs  # "src" -> hash ("" is the root)
        self.listings = listings  # dir hash -> {name: file hash, or "d:" + dir hash}


def hash_context(root: str, matcher: Any, cache_path: str | None) -> Context:
    """Walk the context (what .dockerignore leaves), hash each file (stat cache first), then each directory."""
    # path -> "size mtime_ns ino mode uid gid " + hash: strings load 5x faster than tuples, and
    # marshal.loads on the bytes 5x faster than marshal.load on the file.
    cache: dict[str, str] = {}
    if cache_path:
        try:
            with open(cache_path, "rb") as f:
                cache = marshal.loads(f.read())
            if not isinstance(cache, dict):
                cache = {}
        except (OSError, EOFError, ValueError, TypeError):
            cache = {}
    fresh: dict[str, str] = {}
    files: dict[str, str] = {}
    dir_modes: dict[str, str] = {"": ""}
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            entries = list(os.scandir(os.path.join(root, rel_dir) if rel_dir else root))
        except OSError:
            continue
        for e in entries:
            rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
            if matcher.patterns and matcher.excluded(rel) and \
                    (not matcher.exclusions or not e.is_dir(follow_symlinks=False)):
                continue  # with "!" rules an excluded directory may hold included files
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                dir_modes[rel] = f"{stat.S_IMODE(st.st_mode):o} {st.st_uid} {st.st_gid}"
                stack.append(rel)
                continue
            key = f"{st.st_size} {st.st_mtime_ns} {st.st_ino} {st.st_mode} {st.st_uid} {st.st_gid} "
            hit = cache.get(rel)
            if hit is not None and hit[:-16] == key:
                h = hit[-16:]
            else:
                try:
                    h = _file_hash(e.path, st)
                except OSError:
                    continue
            fresh[rel] = key + h
            files[rel] = h
    if cache_path and fresh != cache:  # nothing changed: nothing to write
        try:
            os.makedirs(os.path.dirname(cache_path), exist_ok=True)
            tmp = f"{cache_path}.{os.getpid()}"
            with open(tmp, "wb") as f:
                marshal.dump(fresh, f)
            os.replace(tmp, cache_path)
        except OSError:
            pass
    # Directories bottom-up: a listing of names -> hashes, hashed.
    children: dict[str, dict[str, str]] = {d: {} for d in dir_modes}
    for rel, h in files.items():
        parent, _, name = rel.rpartition("/")
        children.setdefault(parent, {})[name] = h
    dirs: dict[str, str] = {}
    listings: dict[str, dict[str, str]] = {}
    for d in sorted(children, key=lambda x: -x.count("/") - (1 if x else 0)):
        listing = dict(sorted(children[d].items()))
        listing["."] = dir_modes.get(d, "")
        h = sha256(json.dumps(listing, separators=(",", ":")).encode()).hexdigest()[:16]
        dirs[d] = h
        listings[h] = listing
        if d:
            parent, _, name = d.rpartition("/")
            children.setdefault(parent, {})[name] = "d:" + h
    return Context(files, dirs, listings)


def _glob_component(pattern: str, name: str) -> bool:
    """Go's filepath.Match for one path component."""
    import fnmatch

    return fnmatch.fnmatchcase(name, pattern.replace("[^", "[!"))


def select(files: Mapping[str, str], sources: list[str]) -> list[str]:
    """The context files a COPY/ADD/bind mount reads: each source a path (its whole subtree) or a
    wildcard pattern (matched component by component, then the matches' subtrees)."""
    out: set[str] = set()
    for src in sources:
        p = os.path.normpath(src.lstrip("/")).replace(os.sep, "/")
        if p in (".", ""):
            return sorted(files)
        if not _WILDCARD.search(p):
            prefix = p + "/"
            out.update(f for f in files if f == p or f.startswith(prefix))
            continue
        parts = p.split("/")
        for f in files:
            fp = f.split("/")
            head = fp[: len(parts)]
            if len(head) == len(parts) and all(_glob_component(a, b) for a, b in zip(parts, head, strict=True)):
                out.add(f)
    return sorted(out)


def selection_hash(files: Mapping[str, str], selected: list[str]) -> str:
    h = sha256()
    for f in selected:
        h.update(f"{f}\0{files[f]}\n".encode())
    return h.hexdigest()[:16]


def _sources_hash(ctx: Context, sources: list[str]) -> str:
    """What a step reads, as one hash: plain directory sources by their directory hashes (no walk over
    their files), a single file by its hash, wildcards by the files they select."""
    parts = []
    for src in sources:
        p = os.path.normpath(src.lstrip("/")).replace(os.sep, "/")
        p = "" if p == "." else p
        if _WILDCARD.search(p):
            sel = select(ctx.files, [p])
            parts.append(f"{p}={selection_hash(ctx.files, sel)}")
        elif p in ctx.dirs:
            parts.append(f"{p}=d:{ctx.dirs[p]}")
        else:
            parts.append(f"{p}={ctx.files.get(p, '-')}")
    return sha256("\n".join(parts).encode()).hexdigest()[:16]


def fingerprints(dockerfile_text: str, context: str | None, matcher: Any, build_args: Mapping[str, str],
                 stage_keys: list[str], hash_key: str | None, syntax: str | None, cache_path: str | None
                 ) -> tuple[dict[str, Any], Context | None]:
    """The fingerprint record of a build (the record's "fingerprints") and the hashed context."""
    stages = dockerfile_steps(dockerfile_text, build_args, stage_keys, hash_key)
    ctx = None
    if context is not None and any("sources" in s for st in stages.values() for s in st["steps"]):
        ctx = hash_context(context, matcher, cache_path)
        for st in stages.values():
            for s in st["steps"]:
                if "sources" in s:
                    s["files"] = _sources_hash(ctx, s["sources"])
    return {"schema": SCHEMA, "syntax": syntax, "stages": stages,
            "context": {"dirs": ctx.dirs} if ctx is not None else None}, ctx
