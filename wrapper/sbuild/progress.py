"""Parse buildx's `--progress=rawjson` stream into a model of steps, attributed to stages. Pure.

buildx writes each solve-status update as a JSON object on stderr (buildx 0.13: indented, `{` and `}`
alone at column 0; newer: one compact object per line), and plain text around them (the Dockerfile
excerpt and the final `ERROR:` line). The `StreamSplitter` cuts that text into objects and text lines;
`BuildModel` folds the objects into `Step`s. Memory stays bounded: each step keeps only the tail of its output.
"""

from __future__ import annotations

import json
import re
from binascii import a2b_base64
from collections import deque

from ._tuple import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from ._tuple import NamedTuple

LOG_TAIL_LINES = 40  # lines of output kept per step (failures show the last 20)
LOG_LINE_MAX = 4096  # characters kept of one output line
TEXT_TAIL_LINES = 200  # non-JSON lines kept (the final error and Dockerfile excerpt)
STATUSES_PER_STEP = 256  # sub-task statuses kept per step (their times make the overhead report)

# "[stage 2/4] RUN ...", "[target stage 2/4] ..." (bake), "[linux/arm64 stage 2/4] ..." (platforms),
# "[2/4] ..." (a Dockerfile with one stage).
_STEP_RE = re.compile(r"^\[(?P<prefix>[^\]]*?)\s*(?P<i>\d+)/(?P<n>\d+)\] (?P<instr>.*)$", re.S)


class StreamSplitter:
    """Incrementally cut the rawjson stream into JSON objects (dicts) and text lines (str).

    Two shapes are in use: BuildKit < 0.14 (buildx 0.13) indents each object over many lines, with `{` and
    `}` alone at column 0; newer buildx writes one compact object per line. Both are read, with any white
    space between objects; text around them (the Dockerfile excerpt, `ERROR:` lines) comes back as lines,
    also when it runs into an object without a newline. Blank lines are dropped."""

    __slots__ = ("_buf", "unread")

    def __init__(self) -> None:
        self._buf = ""
        self.unread = 0  # lines that looked like JSON but were not: evidence of a stream sbuild cannot read

    def feed(self, chunk: str) -> list[dict[str, object] | str]:
        self._buf += chunk
        return self._drain(final=False)

    def close(self) -> list[dict[str, object] | str]:
        out = self._drain(final=True)
        rest = self._buf
        self._buf = ""
        if rest.strip():
            out.append(rest.rstrip("\n"))
        return out

    def _drain(self, final: bool) -> list[dict[str, object] | str]:
        buf = self._buf
        out: list[dict[str, object] | str] = []
        append = out.append
        pos = 0
        size = len(buf)
        scan = _SCAN  # the C scanner: parses in place, no slice, no wrapper frames
        while pos < size:
            c = buf[pos]
            if c == "{":
                if buf.startswith("{\n", pos):
                    # The indented shape: the object ends at the first "}" alone at column 0.
                    end = buf.find("\n}", pos)
                    stop = end + 2 if end >= 0 else -1
                else:
                    # The compact shape: a JSON string holds no raw newline, so the line holds the object.
                    stop = buf.find("\n", pos)
                if stop < 0:  # the object's end has not arrived yet
                    if not final:
                        break
                    stop = size
                try:
                    obj, end = scan(buf, pos)
                except (ValueError, StopIteration):
                    end = -1
                if end < 0 or end > stop:
                    # Not JSON after all: give it back as text, line by line.
                    lines = buf[pos:stop].split("\n")
                    self.unread += 1
                    out.extend(lines)
                    pos = stop + 1
                    continue
                append(obj)
                pos = end
                # White space after an object, up to and including the end of its line.
                while pos < size and buf[pos] in " \t\r":
                    pos += 1
                if pos < size and buf[pos] == "\n":
                    pos += 1
                continue
            if c in " \t\r\n":
                # White space between objects, or an indented/blank line.
                k = pos
                while k < size and buf[k] in " \t\r":
                    k += 1
                if k == size:
                    if final:
                        pos = size
                    break
                if buf[k] == "\n":
                    pos = k + 1
                    continue
                if buf[k] == "{":
                    pos = k
                    continue
            nl = buf.find("\n", pos)
            if nl < 0:
                if not final:
                    break
                nl = size
            line = buf[pos:nl].rstrip("\r")
            if len(line) > 1 and line.endswith("{"):
                # Text without a newline ran into the next indented object ("...text{"): recover.
                append(line[:-1])
                pos = nl - 1
                continue
            k = line.find('{"', 1)
            if k > 0 and _event_at(buf, pos + k, nl):
                append(line[:k])  # ... or into the next compact object
                pos += k
                continue
            append(line)
            pos = nl + 1
        self._buf = buf[pos:]
        return out


_SCAN = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_EVENT_KEYS = ("vertexes", "statuses", "logs", "warnings")


def _event_at(buf: str, pos: int, stop: int) -> bool:
    """Whether a compact progress object starts at pos and ends on this line (text that ran into it)."""
    try:
        obj, end = _SCAN(buf, pos)
    except (ValueError, StopIteration):
        return False
    return end <= stop and isinstance(obj, dict) and any(k in obj for k in _EVENT_KEYS)
_minute_cache: dict[str, float] = {}


def parse_time(ts: str) -> float:
    """RFC 3339 with nanoseconds ("2026-11-28T03:28:55.396913883Z") to epoch seconds, quickly: the
    minute is cached, the seconds are one float()."""
    if ts.endswith("Z") and len(ts) > 20:
        base = _minute_cache.get(ts[:16])
        if base is None:
            base = _minute_cache[ts[:16]] = float(_days_from_civil(int(ts[0:4]), int(ts[5:7]), int(ts[8:10])) * 86400
                                                  + int(ts[11:13]) * 3600 + int(ts[14:16]) * 60)
        return base + float(ts[17:-1])
    return _parse_time_slow(ts)


def _parse_time_slow(ts: str) -> float:
    from datetime import datetime

    whole, _, rest = ts.partition(".")
    frac = ""
    tz = "+00:00"
    if rest:
        k = 0
        while k < len(rest) and rest[k].isdigit():
            k += 1
        frac, tz = rest[:k], rest[k:] or tz
    elif not whole.endswith("Z") and ("+" in whole[19:] or "-" in whole[19:]):
        whole, tz = whole[:19], whole[19:]
    whole = whole.rstrip("Z")
    tz = "+00:00" if tz == "Z" else tz
    return datetime.fromisoformat(whole + tz).timestamp() + (float("0." + frac) if frac else 0.0)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 (H. Hinnant's algorithm); avoids importing calendar/datetime."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


class Step:
    """One BuildKit vertex, as last reported. (A slots class: this module is on every build's
    start-up path, and dataclasses cost ~8 ms to import.)"""

    __slots__ = ("_partial", "cached", "completed", "digest", "error", "first_started", "index", "instruction",
                 "internal", "log_lines", "logs", "name", "order", "platform", "stage", "started", "statuses",
                 "target", "total")

    def __init__(self, digest: str, name: str, order: int, stage: str | None = None, target: str | None = None,
                 platform: str | None = None, index: int = 0, total: int = 0, instruction: str = "",
                 internal: bool = True) -> None:
        self.digest = digest
        self.name = name
        self.order = order
        self.stage = stage  # None: internal work, or a single-stage Dockerfile
        self.target = target  # bake target, when built under bake
        self.platform = platform
        self.index = index
        self.total = total
        self.instruction = instruction
        self.internal = internal
        self.started: float | None = None  # latest start
        self.first_started: float | None = None
        self.completed: float | None = None
        self.cached = False
        self.error: str | None = None
        self.logs: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self.log_lines = 0
        self._partial: dict[int, str] = {}
        # Sub-tasks by their id, bounded (a step may push many layers).
        self.statuses: dict[str, SubStatus] = {}

    def __repr__(self) -> str:
        return f"Step({self.name!r}, cached={self.cached}, error={self.error!r})"

    @property
    def display(self) -> str:
        """The name as a plain build shows it: bake's target word dropped ("[test build 2/2]" -> "[build 2/2]")."""
        if self.internal or self.target is None:
            return self.name
        plat = f"{self.platform} " if self.platform else ""
        return f"[{plat}{self.stage} {self.index}/{self.total}] {self.instruction}"

    @property
    def bare_name(self) -> str:
        """An internal step's name without bake's "[target] " prefix ("[deploy] exporting to image")."""
        if self.name.startswith("[") and not self.name.startswith(("[internal]", "[auth]")):
            end = self.name.find("] ")
            if end > 0:
                return self.name[end + 2:]
        return self.name

    @property
    def is_source(self) -> bool:
        """`FROM image`: resolving a source. Its time counts for the stage, but it is not a step."""
        return self.instruction.startswith("FROM ")

    @property
    def duration(self) -> float:
        if self.first_started is None or self.completed is None:
            return 0.0
        return max(0.0, self.completed - self.first_started)


class SubStatus(NamedTuple):
    """A sub-task BuildKit reports inside a step ("pushing layers", "transferring context:"), as last reported."""

    name: str
    started: str | None  # RFC 3339
    completed: str | None
    current: int  # bytes, where BuildKit counts them
    total: int


class LogLines(NamedTuple):
    """Complete output lines of one log entry."""

    step: Step
    lines: list[str]
    timestamp: str | None  # BuildKit's, RFC 3339

    @property
    def at(self) -> float:
        """Seconds since the step started (computed only by renderers that show it)."""
        if not self.timestamp or self.step.started is None:
            return 0.0
        return max(0.0, parse_time(self.timestamp) - self.step.started)


class Status(NamedTuple):
    step: Step
    id: str
    current: int
    total: int
    done: bool


class Warning_(NamedTuple):
    short: str
    detail: str


class Started(NamedTuple):
    """A step began (or was announced cached)."""

    step: Step


class Finished(NamedTuple):
    """A step completed: done, cached, failed or canceled (its Step says which)."""

    step: Step


class TextLine(NamedTuple):
    """A line of buildx's own text (not a progress object): its errors and closing words."""

    line: str


# What the model tells a renderer, one small typed record per kind of event.
Update = Started | Finished | LogLines | Status | Warning_ | TextLine


def classify_name(name: str) -> tuple[bool, str | None, str | None, str | None, int, int, str]:
    """(internal, stage, target, platform, index, total, instruction) from a vertex name."""
    m = _STEP_RE.match(name)
    if m is None:
        return True, None, None, None, 0, 0, name
    words = m.group("prefix").split()
    platform = next((w for w in words if "/" in w), None)
    words = [w for w in words if "/" not in w]
    stage = words[-1] if words else None
    target = words[-2] if len(words) >= 2 else None
    return False, stage, target, platform, int(m.group("i")), int(m.group("n")), m.group("instr")


class BuildModel:
    """Folds rawjson objects into steps. `apply` returns the updates a renderer needs."""

    def __init__(self) -> None:
        self.steps: dict[str, Step] = {}
        self.warnings: list[Warning_] = []
        self.text: deque[str] = deque(maxlen=TEXT_TAIL_LINES)
        self.events = 0  # vertex, status, log and warning entries seen
        self.unread = 0  # stream lines that looked like JSON but could not be read (StreamSplitter.unread)
        self.session = ""  # prefixes step keys: several buildx sessions feed one model (a session per stage)
        self.first_time: float | None = None
        self.last_time: float | None = None

    def _times(self, t: float) -> None:
        if self.first_time is None or t < self.first_time:
            self.first_time = t
        if self.last_time is None or t > self.last_time:
            self.last_time = t

    def apply_text(self, line: str) -> list[Update]:
        self.text.append(line)
        return [TextLine(line)]

    def apply(self, obj: dict[str, object]) -> list[Update]:
        """One progress object's updates. An object that parses as JSON but not as BuildKit's (a cut or
        garbled stream) is counted unread, never fatal: the report then says what it could not see."""
        try:
            return self._apply(obj)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError):
            self.unread += 1
            return []

    def _apply(self, obj: dict[str, object]) -> list[Update]:
        updates: list[Update] = []
        steps = self.steps
        session = self.session
        logs = obj.get("logs")
        if logs:  # the bulk of a long build's stream: keep this path short
            self.events += len(logs)  # type: ignore[arg-type]
            for lg in logs:  # type: ignore[attr-defined]
                step = steps.get(session + lg.get("vertex", "") if session else lg.get("vertex", ""))
                if step is None:
                    continue
                lines = _split_log(step, lg.get("stream", 1), a2b_base64(lg.get("data", "")).decode("utf-8", "replace"))
                if lines:
                    updates.append(LogLines(step, lines, lg.get("timestamp")))
            if len(obj) == 1:
                return updates
        for v in obj.get("vertexes") or ():  # type: ignore[attr-defined]
            self.events += 1
            digest = session + v["digest"] if session else v["digest"]
            step = steps.get(digest)
            if step is None:
                name = v.get("name", "")
                internal, stage, target, platform, i, n, instr = classify_name(name)
                step = Step(digest, name, len(steps), stage, target, platform, i, n, instr, internal)
                steps[digest] = step
            started = v.get("started")
            completed = v.get("completed")
            if started:
                t = parse_time(started)
                if step.first_started is None or t < step.first_started:
                    step.first_started = t
                if t != step.started:
                    # A new start time without a completion is a (re)start of the vertex.
                    step.started = t
                    self._times(t)
                    if not completed:
                        step.completed = None
                        updates.append(Started(step))
            if v.get("cached"):
                step.cached = True
            err = v.get("error")
            if err:
                step.error = err
            if completed:
                t = parse_time(completed)
                if step.completed != t:
                    step.completed = t
                    self._times(t)
                    if step.first_started is None:
                        step.first_started = step.started = t
                    updates.append(Finished(step))
        for s in obj.get("statuses") or ():  # type: ignore[attr-defined]
            self.events += 1
            step = steps.get(session + s.get("vertex", "") if session else s.get("vertex", ""))
            if step is not None:
                sid = s.get("id", "")
                if sid in step.statuses or len(step.statuses) < STATUSES_PER_STEP:
                    step.statuses[sid] = SubStatus(s.get("name", ""), s.get("started"), s.get("completed"),
                                                   s.get("current", 0) or 0, s.get("total", 0) or 0)
                updates.append(Status(step, s.get("id", ""), s.get("current", 0) or 0, s.get("total", 0) or 0,
                                      bool(s.get("completed"))))
        for w in obj.get("warnings") or ():  # type: ignore[attr-defined]
            self.events += 1
            short = a2b_base64(w.get("short", "")).decode("utf-8", "replace")  # (base64.b64decode's own call)
            detail = "\n".join(a2b_base64(d).decode("utf-8", "replace") for d in (w.get("detail") or ()))
            warning = Warning_(short, detail)
            self.warnings.append(warning)
            updates.append(warning)
        return updates

    def failed_steps(self) -> list[Step]:
        """Steps whose error failed the build: BuildKit's own steps first; a missing cache to import
        is only a warning to BuildKit, and a canceled step is a consequence."""
        errs = [s for s in self.steps.values()
                if s.error and "context canceled" not in s.error and not s.bare_name.startswith("importing cache")]
        real = [s for s in errs if not s.internal]
        return real or errs

    def finish_logs(self) -> None:
        """Flush partial last lines (output that did not end with a newline)."""
        for step in self.steps.values():
            for stream, rest in list(step._partial.items()):
                if rest:
                    _keep(step, rest)
                del step._partial[stream]


def _keep(step: Step, line: str) -> None:
    step.logs.append(line if len(line) <= LOG_LINE_MAX else line[:LOG_LINE_MAX] + "…")
    step.log_lines += 1


def _split_log(step: Step, stream: int, text: str) -> list[str]:
    """Complete lines of a log entry, kept in the step's bounded tail; a partial last line waits."""
    partial = step._partial
    if stream in partial:
        text = partial.pop(stream) + text
    lines = text.split("\n")
    rest = lines.pop()
    if rest:
        # Bound a partial line too: a step printing without newlines must not grow memory.
        partial[stream] = rest[-LOG_LINE_MAX:]
    if not lines:
        return lines
    if "\r" in text:
        lines = [ln.rstrip("\r") for ln in lines]
    if max(map(len, lines)) > LOG_LINE_MAX:
        lines = [ln if len(ln) <= LOG_LINE_MAX else ln[:LOG_LINE_MAX] + "…" for ln in lines]
    step.logs.extend(lines)  # a deque with maxlen: only the tail stays
    step.log_lines += len(lines)
    return lines


def load_stream(text: str) -> BuildModel:
    model, splitter = BuildModel(), StreamSplitter()
    for item in [*splitter.feed(text), *splitter.close()]:
        if isinstance(item, str):
            model.apply_text(item)
        else:
            model.apply(item)
    model.unread += splitter.unread
    model.finish_logs()
    return model


# The image an export step made, as BuildKit names it in the step's sub-statuses: the index (with
# attestations or several platforms), else the manifest, else (classic image store) the config.
_EXPORTED = ("exporting manifest list sha256:", "exporting manifest sha256:", "exporting config sha256:")


def exported_digest(model: BuildModel) -> str | None:
    """The digest of the image the build exported, or None (nothing exported, or not reported)."""
    found: dict[str, str] = {}
    for step in model.steps.values():
        if step.internal:
            for sid in step.statuses:
                for prefix in _EXPORTED:
                    if sid.startswith(prefix):
                        found.setdefault(prefix, sid[len(prefix) - len("sha256:"):].split()[0])
    return next((found[p] for p in _EXPORTED if p in found), None)


def finished_export(model: BuildModel, updates: list[Update] | None = None) -> str | None:
    """The exported image's digest once its export step has completed (the image is in the engine, while
    other stages may still run), else None. Given the updates the last object made, only a step they
    finished is looked at: the stream is read in small pieces, and most finish nothing."""
    steps = model.steps.values() if updates is None else [u.step for u in updates if type(u) is Finished]
    for step in steps:
        if step.internal and step.completed is not None and step.statuses and any(
                sid.startswith(_EXPORTED) for sid in step.statuses):
            return exported_digest(model)
    return None


def stages_built(model: BuildModel, stages: frozenset[str]) -> bool:
    """Whether the stream shows every one of `stages` built: the stage's last step ("[stage n/n]", its
    result) completed, and no step failed or is still running. BuildKit numbers only the instructions that
    make a step, so n/n is the last one; a stage with none of its own never shows as built here."""
    built = set()
    for step in model.steps.values():
        if step.error or step.completed is None:
            return False
        if not step.internal and step.index == step.total and step.stage in stages:
            built.add(step.stage)
    return len(built) == len(stages)


def base_digests(model: BuildModel, single_stage: str | None = None) -> dict[str, str]:
    """{stage: digest} of the images the stages start FROM, as BuildKit names the step:
    "[base 1/3] FROM docker.io/library/busybox:latest@sha256:…" ("[1/2] FROM …" in a one-stage file)."""
    out: dict[str, str] = {}
    for step in model.steps.values():
        stage = step.stage or single_stage
        if stage and step.is_source and "@sha256:" in step.name:
            out.setdefault(stage, "sha256:" + step.name.rsplit("@sha256:", 1)[1].split()[0])
    return out
