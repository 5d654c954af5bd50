"""Dockerfile text in, stage graph out, as BuildKit reads it. Pure.

Lines are split by BuildKit's own parser (the `dockerfile` package wraps its Go code: heredocs,
escape directive, continuations, JSON forms). That parser only splits lines; the checks BuildKit makes
next, in its instruction layer (`frontend/dockerfile/instructions`): unknown instructions and flags,
argument counts, stage names, `RUN --mount from=$X`, are re-done here with BuildKit's messages, so a
file BuildKit would reject is refused before any engine is contacted, naming the same line.
"""

from __future__ import annotations

from ._tuple import TYPE_CHECKING
from .errors import DockerfileError
from .frontend import Frontend
from .shell_words import ExpandError, expand

if TYPE_CHECKING:  # (typing and re stay off `sbuild --stage`'s start-up path: ~7 ms)
    import re
    from collections.abc import Iterable, Mapping
    from typing import NamedTuple
else:
    from ._tuple import NamedTuple

_BUILTIN = Frontend("builtin", None, None, False)

SCHEMA_VERSION = 2  # 2: "syntax" and "frontend"

INSTRUCTIONS = ("ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
                "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")

_STR, _BOOL, _MULTI = "string", "bool", "strings"  # flag value types (frontend.FLAGS has each flag's)

AUTOMATIC_PLATFORM_ARGS = ("BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
                           "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT")

# BuildKit's ^[a-z][a-z0-9-_.]*$ (instructions/parse.go), as sets: `re` costs ~4 ms to load.
_STAGE_NAME_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz")
_STAGE_NAME_REST = _STAGE_NAME_FIRST | frozenset("0123456789-_.")
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ALNUM = _LETTERS | frozenset("0123456789")
_heredoc_word: re.Pattern[str] | None = None


def _valid_stage_name(name: str) -> bool:
    return bool(name) and name[0] in _STAGE_NAME_FIRST and _STAGE_NAME_REST.issuperset(name)


def _is_heredoc_word(word: str) -> bool:
    """BuildKit's heredoc marker: ^\\d*<<-?\\s*(["']?)[A-Za-z_][A-Za-z0-9_]*\\1$ (compiled for words with <<)."""
    global _heredoc_word
    if "<<" not in word:
        return False
    if _heredoc_word is None:
        import re

        _heredoc_word = re.compile(r"^\d*<<-?\s*([\"']?)[A-Za-z_][A-Za-z0-9_]*\1$")
    return _heredoc_word.match(word) is not None


def _directive(line: str) -> tuple[str, str] | None:
    """(key, value) of a parser directive line, stripped: BuildKit's ^#\\s*([a-zA-Z][a-zA-Z0-9]*)\\s*=\\s*(.+?)\\s*$"""
    if not line.startswith("#"):
        return None
    rest = line[1:].lstrip()
    end = 0
    while end < len(rest) and rest[end] in _ALNUM:
        end += 1
    key, rest = rest[:end], rest[end:].lstrip()
    if not key or key[0] not in _LETTERS or not rest.startswith("="):
        return None
    value = rest[1:].strip()
    return (key, value) if value and "\n" not in value else None


class Stage(NamedTuple):
    """One stage. (NamedTuple, not a dataclass: `dataclasses` imports `inspect`, ~10 ms on every
    `sbuild --stage` start-up.)"""

    position: int  # 0-based, in file order (`index` would shadow tuple.index)
    name: str | None  # lower-cased, as BuildKit; None for an unnamed stage
    base: str  # the FROM argument as written
    base_expanded: str  # after ARG expansion
    platform: str | None
    description: str
    line: int
    end_line: int
    base_stage: str | None = None  # key of the stage this one is FROM, if any
    needs: tuple[str, ...] = ()  # keys of the stages this one needs (FROM, COPY --from, RUN --mount from)
    images: tuple[str, ...] = ()  # external images it references (FROM, COPY --from, RUN --mount from)
    instructions: tuple[str, ...] = ()  # instruction keywords, in order (FROM excluded)

    @property
    def key(self) -> str:
        """How BuildKit names the stage in progress output: its name, or stage-N."""
        return self.name if self.name is not None else f"stage-{self.position}"


class StageGraph:
    """The stages of a Dockerfile, in file order. Immutable by convention."""

    __slots__ = ("_by_key", "directives", "escape", "file", "frontend", "meta_args", "stages")

    def __init__(self, stages: tuple[Stage, ...], meta_args: tuple[tuple[str, str | None], ...] = (),
                 escape: str = "\\", directives: tuple[tuple[str, str], ...] = (), file: str = "Dockerfile",
                 frontend: Frontend | None = None) -> None:
        self.stages = stages
        self.frontend = frontend or _BUILTIN
        self.meta_args = meta_args
        self.escape = escape
        self.directives = directives
        self.file = file
        self._by_key = {s.key: s for s in stages}

    def __repr__(self) -> str:
        return f"StageGraph({self.file!r}, {self.names})"

    @property
    def default(self) -> Stage:
        return self.stages[-1]

    def find(self, name: str) -> Stage | None:
        """A stage by name (case-insensitive, as BuildKit), by stage-N, or by index."""
        low = name.lower()
        if low in self._by_key:
            return self._by_key[low]
        if low.isdigit() and int(low) < len(self.stages):
            return self.stages[int(low)]
        return None

    @property
    def names(self) -> list[str]:
        return [s.key for s in self.stages]

    def closure(self, keys: Iterable[str]) -> list[Stage]:
        """The stages needed to build `keys`, in file order."""
        seen: set[str] = set()
        todo = list(keys)
        while todo:
            k = todo.pop()
            if k in seen:
                continue
            seen.add(k)
            todo.extend(self._by_key[k].needs)
        return [s for s in self.stages if s.key in seen]

    def dependents(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {s.key: [] for s in self.stages}
        for s in self.stages:
            for n in s.needs:
                out[n].append(s.key)
        return out


# ---------------------------------------------------------------------------------------------------------------
# BuildKit's instruction layer


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def suggest(value: str, options: Iterable[str], *, case_sensitive: bool) -> str | None:
    """BuildKit's util/suggest: the option within distance < 3, matched to the value's case.

    BuildKit walks a Go map, so between options at the same distance its pick is random ("AS" gets
    ARG or ADD); sbuild takes the first in `options` order."""
    val = value if case_sensitive else value.lower()
    best, mindist = None, 3
    for opt in options:
        o = opt if case_sensitive else opt.lower()
        if o == val:
            return None
        d = levenshtein(val, o)
        if d < mindist:
            best, mindist = o, d
    if best is None or case_sensitive:
        return best
    if value == value.lower():
        return best.lower()
    if value == value.upper():
        return best.upper()
    return best


def did_you_mean(value: str, options: Iterable[str]) -> str:
    """sbuild's own hint for a name it does not know (a stage, a config key): `; did you mean "X"?`, by
    BuildKit's rule (suggest: distance < 3, case-insensitive), or "" when nothing is that close. BuildKit's
    own messages keep their own form (_with_suggestion)."""
    best = suggest(value.lower(), [o.lower() for o in options], case_sensitive=True)
    return f'; did you mean "{best}"?' if best else ""


class _InstrError(Exception):
    pass


def _with_suggestion(msg: str, value: str, options: Iterable[str], case_sensitive: bool) -> str:
    s = suggest(value, options, case_sensitive=case_sensitive)
    return f"{msg} (did you mean {s}?)" if s else msg


def _parse_flags(instr: str, raw: Iterable[str], fe: Frontend | None = None) -> dict[str, list[str]]:
    """The flags as BuildKit's parser reads them, for the frontend that will run (frontend.py decides which
    exist), refusing what it refuses."""
    from . import frontend

    fe = fe or _BUILTIN
    used: dict[str, list[str]] = {}
    for arg in raw:
        if not arg.startswith("--"):
            raise _InstrError(f"Arg should start with -- : {arg}")
        if arg == "--":
            break
        name, eq, value = arg[2:].partition("=")
        refusal = frontend.check_flag(fe, instr, name)
        if refusal == "unknown flag":
            raise _InstrError(_with_suggestion(f"unknown flag: {name}", name, frontend.flags_of(fe, instr), True))
        if refusal is not None:
            raise _InstrError(refusal)
        kind = frontend.FLAGS[(instr, name)][0]
        if name in used and kind != _MULTI:
            raise _InstrError(f"Duplicate flag specified: {name}")
        if kind == _BOOL:
            if eq and value == "":
                raise _InstrError(f"Missing a value on flag: {name}")
            low = value.lower()
            if low not in ("", "true", "false"):
                raise _InstrError(f"Expecting boolean value for flag {name}, not: {value}")
            used.setdefault(name, []).append(low or "true")
        else:
            if not eq:
                raise _InstrError(f"Missing a value on flag: {name}")
            used.setdefault(name, []).append(value)
    return used


def _read_flags(instr: str, raw: Iterable[str]) -> dict[str, list[str]]:
    """The flags of a file for someone's own frontend, which judges them itself: read, never refused (the
    stage graph needs --from, --mount and --platform)."""
    from .frontend import FLAGS

    used: dict[str, list[str]] = {}
    for arg in raw:
        if arg == "--":
            break
        if not arg.startswith("--"):
            continue
        name, _, value = arg[2:].partition("=")
        kind = FLAGS[(instr, name)][0] if (instr, name) in FLAGS else _STR
        if name in used and kind != _MULTI:
            continue
        used.setdefault(name, []).append((value.lower() or "true") if kind == _BOOL else value)
    return used


def _csv_fields(value: str) -> list[str]:
    import csv

    try:
        return next(csv.reader([value]))
    except (csv.Error, StopIteration):
        return value.split(",")


def _mount_from(value: str) -> str | None:
    frm = None
    for fieldspec in _csv_fields(value):
        key, _, val = fieldspec.partition("=")
        # Other fields (even `type`) are expanded and checked when BuildKit dispatches, not here.
        if key.strip().lower() == "from":
            if any(val[i + 1] != "\n" for i in range(len(val) - 1) if val[i] == "$"):  # BuildKit's \$.
                raise _InstrError("'from' doesn't support variable expansion, define alias stage instead")
            frm = val
    return frm


def _validate(instr: str, args: list[str], flags: tuple[str, ...], is_json: bool,
              original: str, fe: Frontend | None = None) -> dict[str, list[str]]:
    """Raise _InstrError with BuildKit's message if the frontend that will run would refuse this. Someone's
    own frontend judges its file itself: for it only the flags the stage graph needs are read."""
    if fe is not None and fe.kind == "other":
        return _read_flags(instr, flags)
    def at_least_one() -> None:
        if not args:
            raise _InstrError(f"{instr} requires at least one argument")

    def exactly_one() -> None:
        if len(args) != 1:
            raise _InstrError(f"{instr} requires exactly one argument")

    def kvps() -> None:
        at_least_one()
        if len(args) % 2:
            raise _InstrError(f"Bad input to {instr}, too many arguments")
        if any(not args[j] for j in range(0, len(args), 2)):
            raise _InstrError(f"{instr} names can not be blank")

    if instr in ("ENV", "LABEL"):
        f = _parse_flags(instr, flags, fe)
        kvps()
        return f
    if instr == "MAINTAINER":
        exactly_one()
        return _parse_flags(instr, flags, fe)
    if instr in ("ADD", "COPY"):
        if len(args) < 2:
            raise _InstrError(f"{instr} requires at least two arguments, but only one was provided. "
                              "Destination could not be determined")
        f = _parse_flags(instr, flags, fe)
        if _is_heredoc_word(args[-1]):
            raise _InstrError(f"{instr} cannot accept a heredoc as a destination")
        return f
    if instr == "FROM":
        if len(args) == 3 and args[1].lower() == "as":
            if not _valid_stage_name(args[2].lower()):
                raise _InstrError(f'invalid name for build stage: "{args[2]}", name can\'t start with a number '
                                  "or contain symbols")
        elif len(args) != 1:
            raise _InstrError("FROM requires either one or three arguments")
        return _parse_flags(instr, flags, fe)
    if instr == "ONBUILD":
        at_least_one()
        f = _parse_flags(instr, flags, fe)
        trigger = args[0].strip().upper()
        if trigger == "ONBUILD":
            raise _InstrError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if trigger in ("MAINTAINER", "FROM"):
            raise _InstrError(f"{trigger} isn't allowed as an ONBUILD trigger")
        return f
    if instr == "WORKDIR":
        exactly_one()
        return _parse_flags(instr, flags, fe)
    if instr == "RUN":
        f = _parse_flags(instr, flags, fe)
        for m in f.get("mount", ()):
            _mount_from(m)
        return f
    if instr in ("CMD", "ENTRYPOINT"):
        return _parse_flags(instr, flags, fe)
    if instr == "HEALTHCHECK":
        at_least_one()
        typ = args[0].upper()
        if typ == "NONE":
            if len(args) > 1:
                raise _InstrError("HEALTHCHECK NONE takes no arguments")
            return {}
        f = _parse_flags(instr, flags, fe)
        if typ != "CMD":
            raise _InstrError(f'Unknown type "{typ}" in HEALTHCHECK (try CMD)')
        if len(args) < 2:
            raise _InstrError("Missing command after HEALTHCHECK CMD")
        return f
    if instr in ("EXPOSE", "VOLUME"):
        at_least_one()
        f = _parse_flags(instr, flags, fe)
        if instr == "VOLUME" and any(not a.strip() for a in args):
            raise _InstrError("VOLUME specified can not be an empty string")
        return f
    if instr == "USER":
        exactly_one()
        return _parse_flags(instr, flags, fe)
    if instr == "STOPSIGNAL":
        exactly_one()
        return {}
    if instr == "ARG":
        at_least_one()
        if any(a.startswith("=") for a in args):
            raise _InstrError("ARG names can not be blank")
        return {}
    if instr == "SHELL":
        f = _parse_flags(instr, flags, fe)
        if not args:
            raise _InstrError("SHELL requires at least one argument")
        if not is_json:
            raise _InstrError("SHELL requires the arguments to be in JSON form")
        return f
    raise _InstrError(_with_suggestion(f"unknown instruction: {original}", original, INSTRUCTIONS, False))


# ---------------------------------------------------------------------------------------------------------------
# Reading a Dockerfile


def directives(text: str) -> list[tuple[str, str]]:
    """Parser directives (`# escape=`, `# syntax=`, `# check=`) at the top of the file."""
    out = []
    for line in text.lstrip("\ufeff").splitlines():
        d = _directive(line.strip())
        if d is None:
            break
        out.append((d[0].lower(), d[1]))
    return out


def _go_parse(text: str):  # type: ignore[no-untyped-def]
    import dockerfile

    return dockerfile.parse_string(text)


def _parse_error_line(text: str, message: str) -> int | None:
    """The Go parser's errors carry no line: find the first line where the same error appears."""
    import dockerfile

    lines = text.splitlines(keepends=True)
    for n in range(1, len(lines) + 1):
        try:
            dockerfile.parse_string("".join(lines[:n]) + "\n")
        except dockerfile.GoParseError as e:
            if str(e) == message:
                return n
    return None


def _comments_before(lines: list[str], start: int, stop: int) -> list[str]:
    """BuildKit's PrevComment: comment lines between two instructions; an empty `#` clears them."""
    out: list[str] = []
    for raw in lines[start:stop]:
        if raw.lstrip().startswith("#"):
            c = raw.lstrip()[1:].strip()
            if c:
                out.append(c)
            else:
                out = []
    return out


def _description(comments: list[str], name: str | None) -> str:
    if not name:
        return ""
    for c in comments:
        if c.startswith(name + " "):
            return c[len(name) + 1:]
    return ""


def default_platform() -> str:
    import os

    machine = os.uname().machine.lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
            "armv7l": "arm/v7", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
    return "linux/" + arch.get(machine, machine)


def platform_args(build_platform: str, target_platform: str | None = None) -> dict[str, str]:
    def split(p: str) -> tuple[str, str, str]:
        parts = p.split("/")
        return parts[0], parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else ""

    t = target_platform or build_platform
    bos, barch, bvar = split(build_platform)
    tos, tarch, tvar = split(t)
    return {"BUILDPLATFORM": build_platform, "BUILDOS": bos, "BUILDARCH": barch, "BUILDVARIANT": bvar,
            "TARGETPLATFORM": t, "TARGETOS": tos, "TARGETARCH": tarch, "TARGETVARIANT": tvar}


def parse(text: str, *, build_args: Mapping[str, str] | None = None, file: str = "Dockerfile",
          target_platform: str | None = None, build_platform: str | None = None) -> StageGraph:
    """Read a Dockerfile as BuildKit does. Raises DockerfileError (with the line) where BuildKit would."""
    import dockerfile

    from . import frontend

    build_args = dict(build_args or {})
    dirs = directives(text)
    escape = dict(dirs).get("escape", "\\")
    fe = frontend.of(dict(dirs), build_args)
    try:
        cmds = _go_parse(text)
    except dockerfile.GoParseError as e:
        msg = str(e)
        line = _parse_error_line(text, msg) if msg != "file with no instructions" else None
        raise DockerfileError(_located(msg, line), line=line, file=file) from None

    lines = text.lstrip("\ufeff").split("\n")
    env: dict[str, str] = platform_args(build_platform or default_platform(), target_platform)
    meta_args: list[tuple[str, str | None]] = []
    stages: list[_RawStage] = []
    prev_end = 0
    for c in cmds:
        if not c.cmd:  # a line the parser kept no instruction of (a lone continuation): nothing to run
            continue
        instr = c.cmd.upper()
        args = ([c.sub_cmd] if c.sub_cmd else []) + list(c.value)
        comments = _comments_before(lines, prev_end, c.start_line - 1)
        prev_end = c.end_line
        try:
            flags = _validate(instr, args, c.flags, c.json, c.cmd, fe)
        except _InstrError as e:
            raise DockerfileError(_located(str(e), c.start_line), line=c.start_line, file=file) from None
        if not stages:
            if instr == "ARG":
                for a in args:
                    k, eq, v = a.partition("=")
                    meta_args.append((k, v if eq else None))
                    value = build_args[k] if k in build_args else (_expand(v, env, escape, c.start_line, file)
                                                                    if eq else None)
                    if value is not None:
                        env[k] = value
                continue
            if instr != "FROM":
                raise DockerfileError("no build stage in current context", line=c.start_line, file=file)
        if instr == "FROM":
            name = args[2].lower() if len(args) == 3 else None
            base = args[0]
            stages.append(_RawStage(len(stages), name, base, _expand(base, env, escape, c.start_line, file),
                                    flags.get("platform", [None])[-1], _description(comments, name),
                                    c.start_line, c.end_line))
            continue
        st = stages[-1]
        st.instructions.append(instr)
        senv = st.env
        if instr == "ARG":
            for a in args:
                k, eq, v = a.partition("=")
                if k in build_args:
                    senv[k] = build_args[k]
                elif eq:
                    senv[k] = _expand(v, senv, escape, c.start_line, file)
                elif k in env:
                    senv[k] = env[k]
        elif instr == "ENV":
            for j in range(0, len(args), 2):
                senv[args[j]] = _expand(args[j + 1], senv, escape, c.start_line, file)
        elif instr == "COPY" and "from" in flags:
            st.refs.append(_expand(flags["from"][-1], senv, escape, c.start_line, file))
        elif instr == "RUN":
            for m in flags.get("mount", ()):
                frm = _mount_from(m)
                if frm:
                    st.refs.append(frm)
    if not stages:
        raise DockerfileError("no build stage in current context", file=file)
    return _link(stages, meta_args, escape, dirs, file, fe)


def _located(msg: str, line: int | None) -> str:
    return f"dockerfile parse error on line {line}: {msg}" if line is not None else msg


def _expand(word: str, env: Mapping[str, str], escape: str, line: int, file: str) -> str:
    # BuildKit expands words when it dispatches an instruction, not when it parses the file: a word it
    # cannot expand fails the build there, so the graph keeps it as written.
    try:
        return expand(word, env, escape)
    except ExpandError:
        return word


class _RawStage:
    """A stage as the reader meets it, before the names it refers to are linked (_link)."""

    __slots__ = ("base", "base_expanded", "description", "end_line", "env", "index", "instructions", "line",
                 "name", "platform", "refs")

    def __init__(self, index: int, name: str | None, base: str, base_expanded: str, platform: str | None,
                 description: str, line: int, end_line: int) -> None:
        self.index, self.name, self.base, self.base_expanded = index, name, base, base_expanded
        self.platform, self.description, self.line, self.end_line = platform, description, line, end_line
        self.refs: list[str] = []  # COPY --from and RUN --mount from=, as written (expanded)
        self.instructions: list[str] = []
        self.env: dict[str, str] = {}  # global ARGs enter a stage only via ARG NAME


def _link(raw: list[_RawStage], meta_args: list[tuple[str, str | None]], escape: str,
          dirs: list[tuple[str, str]], file: str, fe: Frontend | None = None) -> StageGraph:
    names = {s.name: s.index for s in raw if s.name}

    def key(i: int) -> str:
        return raw[i].name or f"stage-{i}"

    out = []
    for s in raw:
        idx = s.index
        needs: list[str] = []
        images: list[str] = []
        base_stage = None
        base = s.base_expanded.lower()
        if base in names and names[base] < idx:
            base_stage = key(names[base])
            needs.append(base_stage)
        elif base != "scratch":
            images.append(s.base_expanded)
        for ref in s.refs:
            low = ref.lower()
            if low in names and names[low] != idx:
                dep = key(names[low])
            elif ref.isdigit() and int(ref) < len(raw) and int(ref) != idx:
                dep = key(int(ref))
            else:
                if ref not in images:
                    images.append(ref)
                continue
            if dep not in needs:
                needs.append(dep)
        out.append(Stage(idx, s.name, s.base, s.base_expanded, s.platform, s.description, s.line, s.end_line,
                         base_stage, tuple(needs), tuple(images), tuple(s.instructions)))
    return StageGraph(tuple(out), tuple(meta_args), escape, tuple(dirs), file, fe)


def check_buildable(graph: StageGraph) -> None:
    """What BuildKit refuses when it converts the file (dockerfile2llb), beyond what parsing finds: a
    `--from` stage index out of range ("invalid stage index N") and a cycle through `--from`
    ("circular dependency detected on stage: X", validations.go: the first stage, in file order, whose
    dependencies lead back to a stage on the path). Raises DockerfileError in BuildKit's words."""
    for st in graph.stages:
        refs = st.images[1:] if st.base_stage is None and st.images and st.images[0] == st.base_expanded \
            else st.images
        for ref in refs:
            if ref.isdigit():  # BuildKit reads a numeric --from as an index, never as an image
                raise DockerfileError(f"invalid stage index {ref}", line=st.line, file=graph.file)
    deps = {st.key: st.needs for st in graph.stages}
    visited: set[str] = set()

    def cycle(key: str, path: set[str]) -> bool:
        if key in visited:
            return False
        visited.add(key)
        path.add(key)
        for dep in deps.get(key, ()):
            if dep in path or cycle(dep, path):
                return True
        path.discard(key)
        return False

    for st in graph.stages:
        if cycle(st.key, set()):
            raise DockerfileError(f"circular dependency detected on stage: {st.key}", line=st.line, file=graph.file)


def read(path: str, *, build_args: Mapping[str, str] | None = None, target_platform: str | None = None) -> StageGraph:
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    return parse(text, build_args=build_args, file=path, target_platform=target_platform)


def to_json(graph: StageGraph, deploy: str | None = None) -> dict[str, object]:
    """The stable JSON form (`sbuild stages --json`). Bump SCHEMA_VERSION when keys change."""
    deploy_key = deploy or graph.default.key
    dependents = graph.dependents()
    return {
        "schema_version": SCHEMA_VERSION,
        "file": graph.file,
        "syntax": graph.frontend.ref,  # the `# syntax=` (or BUILDKIT_SYNTAX) it was read for; null: built-in
        "frontend": graph.frontend.to_json(),
        "default": graph.default.key,
        "deploy": deploy_key,
        "args": [{"name": k, "default": v} for k, v in graph.meta_args],
        "stages": [{
            "index": s.position,
            "name": s.name,
            "key": s.key,
            "base": s.base,
            "base_expanded": s.base_expanded,
            "platform": s.platform,
            "description": s.description,
            "line": s.line,
            "needs": list(s.needs),
            "needed_by": dependents[s.key],
            "images": list(s.images),
            "default": s is graph.default,
            "deploy": s.key == deploy_key,
        } for s in graph.stages],
    }


def unknown_stage_message(name: str, graph: StageGraph) -> str:
    names = graph.names
    return f'no stage "{name}" in {graph.file} (stages: {", ".join(names)}){did_you_mean(name, names)}'
