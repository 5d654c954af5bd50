"""Parse buildx's `--progress=rawjson` stream into a model of steps, attributed to stages. Pure.

buildx writes each solve-status update as an indented JSON object on stderr (`{` and `}` alone at
column 0), and plain text around them (the Dockerfile excerpt and the final `ERROR:` line). The
`StreamSplitter` cuts that text into objects and text lines; `BuildModel` folds the objects into
`Step`s. Memory stays bounded: each step keeps only the tail of its output.
"""

from __future__ import annotations

import base64
import json
import re
from collections import deque
from collections.abc import Iterator
from typing import NamedTuple

LOG_TAIL_LINES = 40  # lines of output kept per step (failures show the last 20)
LOG_LINE_MAX = 4096  # characters kept of one output line
TEXT_TAIL_LINES = 200  # non-JSON lines kept (the final error and Dockerfile excerpt)

# "[stage 2/4] RUN ...", "[target stage 2/4] ..." (bake), "[linux/arm64 stage 2/4] ..." (platforms),
# "[2/4] ..." (a Dockerfile with one stage).
_STEP_RE = re.compile(r"^\[(?P<prefix>[^\]]*?)\s*(?P<i>\d+)/(?P<n>\d+)\] (?P<instr>.*)$", re.S)


class StreamSplitter:
    """Incrementally cut the rawjson stream into JSON objects (dicts) and text lines (str)."""

    def __init__(self) -> None:
        self._buf = ""

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
        pos = 0
        size = len(buf)
        loads = json.loads
        while pos < size:
            if buf.startswith("{}", pos):  # bake sends empty objects
                if pos + 2 == size and not final:
                    break
                out.append({})
                pos += 3 if buf.startswith("\n", pos + 2) else 2
                continue
            if buf.startswith("{\n", pos):
                end = buf.find("\n}", pos)
                if end < 0:
                    break
                stop = end + 2
                if stop == size and not final:
                    break  # "}" might be followed by more on the same line; wait for it
                try:
                    out.append(loads(buf[pos:stop]))
                except ValueError:
                    # Not JSON after all: give it back as text, line by line.
                    out.extend(buf[pos:stop].split("\n"))
                pos = stop + 1 if buf.startswith("\n", stop) else stop
            else:
                nl = buf.find("\n", pos)
                if nl < 0:
                    if not final:
                        break
                    out.append(buf[pos:])
                    pos = size
                    break
                line = buf[pos:nl]
                if len(line) > 1 and line.endswith("{"):
                    # Text without a newline ran into the next object ("…text{"): recover.
                    out.append(line[:-1])
                    pos = nl - 1
                    continue
                out.append(line)
                pos = nl + 1
        self._buf = buf[pos:]
        return out


_day_cache: dict[str, int] = {}


def parse_time(ts: str) -> float:
    """RFC 3339 with nanoseconds ("2026-11-28T03:28:55.396913883Z") to epoch seconds, quickly."""
    day = _day_cache.get(ts[:10])
    if day is None:
        day = _days_from_civil(int(ts[0:4]), int(ts[5:7]), int(ts[8:10])) * 86400
        _day_cache[ts[:10]] = day
    secs = day + int(ts[11:13]) * 3600 + int(ts[14:16]) * 60 + int(ts[17:19])
    rest = ts[19:]
    frac = 0.0
    if rest.startswith("."):
        k = 1
        while k < len(rest) and rest[k].isdigit():
            k += 1
        frac = float("0" + rest[:k])
        rest = rest[k:]
    if rest and rest != "Z":
        sign = -1 if rest[0] == "+" else 1  # "+01:00" means UTC is an hour earlier
        secs += sign * (int(rest[1:3]) * 3600 + int(rest[4:6]) * 60)
    return secs + frac


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
                 "internal", "log_lines", "logs", "name", "order", "platform", "stage", "started", "target",
                 "total")

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
    def is_source(self) -> bool:
        """`FROM image`: resolving a source. Its time counts for the stage, but it is not a step."""
        return self.instruction.startswith("FROM ")

    @property
    def duration(self) -> float:
        if self.first_started is None or self.completed is None:
            return 0.0
        return max(0.0, self.completed - self.first_started)


class LogLine(NamedTuple):
    step: Step
    text: str
    at: float  # seconds since the step started


class Status(NamedTuple):
    step: Step
    id: str
    current: int
    total: int
    done: bool


class Warning_(NamedTuple):
    short: str
    detail: str


Update = tuple[str, object]  # ("start", Step) | ("done", Step) | ("log", LogLine) | ("status", Status) | ...


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
        self.first_time: float | None = None
        self.last_time: float | None = None

    def _times(self, t: float) -> None:
        if self.first_time is None or t < self.first_time:
            self.first_time = t
        if self.last_time is None or t > self.last_time:
            self.last_time = t

    def apply_text(self, line: str) -> list[Update]:
        self.text.append(line)
        return [("text", line)]

    def apply(self, obj: dict[str, object]) -> list[Update]:
        updates: list[Update] = []
        steps = self.steps
        for v in obj.get("vertexes") or ():  # type: ignore[attr-defined]
            self.events += 1
            digest = v["digest"]
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
                        updates.append(("start", step))
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
                    updates.append(("done", step))
        for s in obj.get("statuses") or ():  # type: ignore[attr-defined]
            self.events += 1
            step = steps.get(s.get("vertex", ""))
            if step is not None:
                updates.append(("status", Status(step, s.get("id", ""), s.get("current", 0) or 0,
                                                 s.get("total", 0) or 0, bool(s.get("completed")))))
        for lg in obj.get("logs") or ():  # type: ignore[attr-defined]
            self.events += 1
            step = steps.get(lg.get("vertex", ""))
            if step is None:
                continue
            data = base64.b64decode(lg.get("data", ""))
            at = 0.0
            ts = lg.get("timestamp")
            if ts and step.started is not None:
                at = max(0.0, parse_time(ts) - step.started)
            for text in _split_log(step, lg.get("stream", 1), data.decode("utf-8", "replace")):
                updates.append(("log", LogLine(step, text, at)))
        for w in obj.get("warnings") or ():  # type: ignore[attr-defined]
            self.events += 1
            short = base64.b64decode(w.get("short", "")).decode("utf-8", "replace")
            detail = "\n".join(base64.b64decode(d).decode("utf-8", "replace") for d in (w.get("detail") or ()))
            warning = Warning_(short, detail)
            self.warnings.append(warning)
            updates.append(("warning", warning))
        return updates

    def failed_steps(self) -> list[Step]:
        return [s for s in self.steps.values() if s.error and "context canceled" not in s.error]

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


def _split_log(step: Step, stream: int, text: str) -> Iterator[str]:
    text = step._partial.pop(stream, "") + text
    *lines, rest = text.split("\n")
    if rest:
        # Bound a partial line too: a step printing without newlines must not grow memory.
        step._partial[stream] = rest[-LOG_LINE_MAX:]
    for line in lines:
        line = line.rstrip("\r")
        _keep(step, line)
        yield line


def iter_stream(text: str) -> Iterator[dict[str, object] | str]:
    """Split a whole recorded stream (tests, benchmarks)."""
    splitter = StreamSplitter()
    yield from splitter.feed(text)
    yield from splitter.close()


def load_stream(text: str) -> BuildModel:
    model = BuildModel()
    for item in iter_stream(text):
        if isinstance(item, str):
            model.apply_text(item)
        else:
            model.apply(item)
    model.finish_logs()
    return model
