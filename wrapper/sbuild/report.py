"""Roll BuildKit's steps up per stage: the build report. Pure: a BuildModel (+ the plan) in, a Report out.

A stage's steps are the instructions BuildKit executes for it (`[stage i/n] …` vertices). `FROM image`
resolves a source: BuildKit never marks it cached, so its time belongs to the stage but it is not a
step (a build with nothing to redo has a hit ratio of exactly 1.0). Under bake, a stage shared by
several targets is reported once per target (`[target stage i/n]`); those copies are one step.
"""

from __future__ import annotations

from ._tuple import TYPE_CHECKING
from .progress import BuildModel, Step

if TYPE_CHECKING:
    from typing import Any, NamedTuple
else:
    from ._tuple import NamedTuple

SCHEMA_VERSION = 4  # 2: "progress", the "unknown" stage status; 3: "overhead" (internal_s kept as an alias);
# 4: the history: "id", "baseline", "regressions", "image", per stage "baseline_duration_s", "delta_s", "why"
OUTPUT_TAIL = 20  # lines of the failing step's output kept in the report

STATUSES = ("built", "cached", "failed", "canceled", "skipped", "unknown")  # unknown: progress unreadable


class StepReport(NamedTuple):
    name: str  # BuildKit's vertex name, e.g. "[test 2/2] RUN sh tests/run.sh"
    index: int  # type: ignore[assignment]  # shadows tuple.index, which no one calls; the JSON key stays
    started_s: float | None  # seconds since the build started
    duration_s: float
    cached: bool
    error: str | None = None


class PlatformReport(NamedTuple):
    """One platform's part of a stage, when several were built."""

    platform: str
    status: str
    steps: int
    cached_steps: int
    duration_s: float
    first_miss: str | None


class StageReport(NamedTuple):
    name: str
    status: str  # built | cached | failed | canceled | skipped | unknown
    steps: int
    cached_steps: int
    duration_s: float
    first_miss: str | None  # the step where cache stopped (None: all cached, or nothing ran)
    started_s: float | None = None
    timeline: tuple[StepReport, ...] = ()
    platforms: tuple[PlatformReport, ...] = ()  # when more than one platform was built; totals are over all
    baseline_duration_s: float | None = None  # the same stage in the baseline build (compare.py)
    delta_s: float | None = None  # duration_s - baseline_duration_s
    why: dict[str, Any] | None = None  # the first missed step's cause (explain.py); None: every step cached


class Failure(NamedTuple):
    stage: str | None
    step: str
    error: str
    location: str | None  # "Dockerfile:24", as BuildKit names it
    output: tuple[str, ...]  # last lines of the failing step's output


class OverheadReport(NamedTuple):
    category: str  # overhead.CATEGORIES
    duration_s: float  # busy time: the union of its steps' intervals
    steps: int
    bytes: int | None = None  # what BuildKit reported transferring, where it does


class CacheSummary(NamedTuple):
    steps: int
    cached_steps: int
    hit_ratio: float | None
    imported_from: tuple[str, ...] = ()
    exported_to: tuple[str, ...] = ()
    export_errors: tuple[str, ...] = ()


class Report(NamedTuple):
    status: str  # success | failed | canceled
    exit_code: int
    duration_s: float
    stages: tuple[StageReport, ...]
    cache: CacheSummary
    attempts: int = 1
    tags: tuple[str, ...] = ()
    pushed: tuple[str, ...] = ()
    internal_s: float = 0.0  # deprecated alias (schema 3 only): span of BuildKit's own steps; see overhead
    failure: Failure | None = None
    warnings: tuple[str, ...] = ()
    retries: tuple[dict[str, Any], ...] = ()
    schema_version: int = SCHEMA_VERSION
    notes: tuple[str, ...] = ()
    progress: str = "ok"  # "unreadable": sbuild could not read buildx's progress stream; stages are unknown
    retry_stop: str | None = None  # why retrying ended: succeeded|count|timeout|permanent|cap; None: interrupted
    overhead: tuple[OverheadReport, ...] = ()  # time outside the stages, by category
    overhead_intervals: tuple[tuple[str, float, float], ...] = ()  # (category, start_s, end_s): trace only
    id: str | None = None  # the history record's id (None: not recorded)
    baseline: dict[str, Any] | None = None  # {id, branch, commit, finished_at, source}
    regressions: tuple[str, ...] = ()  # stages slower than the baseline by >= 20% and >= 2 s
    image: dict[str, Any] | None = None  # the deploy image: {digest, size, layers, baseline_size, size_delta}

    def to_json(self) -> dict[str, Any]:
        d = _plain(self)
        d["cache"]["imported_from"] = list(self.cache.imported_from)
        d["cache"]["exported_to"] = list(self.cache.exported_to)
        d["cache"]["export_errors"] = list(self.cache.export_errors)
        # Stable key order: the schema the tests pin.
        d["overhead"] = [{k: v for k, v in o.items() if v is not None or k != "bytes"} for o in d["overhead"]]
        for st in d["stages"]:  # "platforms" only where several were built
            if not st["platforms"]:
                del st["platforms"]
        d["regressions"] = list(self.regressions)
        keys = ("schema_version", "id", "status", "exit_code", "duration_s", "attempts", "progress", "stages",
                "cache", "tags", "pushed", "image", "baseline", "regressions", "overhead", "internal_s", "failure",
                "warnings", "retries", "retry_stop", "notes")
        return {k: d[k] for k in keys}

    @property
    def largest_overhead(self) -> OverheadReport | None:
        return max(self.overhead, key=lambda o: o.duration_s, default=None)


def _plain(x: Any) -> Any:
    """A report as JSON-ready dicts and lists (a record's own dicts, e.g. why and baseline, copied)."""
    if hasattr(x, "_asdict"):
        return {k: _plain(v) for k, v in x._asdict().items()}
    if isinstance(x, (tuple, list)):
        return [_plain(v) for v in x]
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def _r(x: float) -> float:
    return round(x, 3)


def build_report(model: BuildModel, *, exit_code: int, stage_order: list[str] | None = None,
                 expected: list[str] | None = None, single_stage: str | None = None,
                 started: float | None = None, finished: float | None = None, tags: list[str] | None = None,
                 interrupted: bool = False, attempts: int = 1, cache_imported: list[str] | None = None,
                 cache_exported: list[str] | None = None, cache_errors: list[str] | None = None,
                 notes: list[str] | None = None, retries: list[dict[str, Any]] | None = None,
                 pushed: list[str] | None = None, retry_stop: str | None = "succeeded",
                 finalize: tuple[float, float] | None = None, finalize_steps: int = 0,
                 image_stages: dict[str, str] | None = None) -> Report:
    """Per-stage report of one build.

    stage_order: stage keys in Dockerfile order (for sorting); expected: the stages the build had to run
    (those with no step seen are skipped or cached); single_stage: the stage that `[i/n]` names belong
    to (a Dockerfile with one stage)."""
    # Step offsets are measured on BuildKit's clock (a remote builder's may differ from ours); the
    # total is sbuild's wall time when given.
    t0 = model.first_time if model.first_time is not None else (started or 0.0)
    wall = (finished - started) if (started is not None and finished is not None) else \
        ((model.last_time or t0) - t0)
    # A step is (index, platform, instruction): a multi-platform build runs each step once per platform.
    groups: dict[str, dict[tuple[int, str, str], list[Step]]] = {}
    sources: dict[str, list[Step]] = {}
    internal: list[Step] = []
    for s in model.steps.values():
        if s.internal:
            internal.append(s)
            continue
        key = s.stage or single_stage or "stage-0"
        if s.is_source:
            sources.setdefault(key, []).append(s)
            groups.setdefault(key, {})
        else:
            groups.setdefault(key, {}).setdefault((s.index, s.platform or "", s.instruction), []).append(s)

    failed_build = exit_code != 0
    unreadable = progress_unreadable(model, exit_code)
    order = list(stage_order or [])

    def first_start(k: str) -> float:
        starts = [s.first_started for c in groups[k].values() for s in c] + \
            [s.first_started for s in sources.get(k, [])]
        return min((t for t in starts if t is not None), default=float("inf"))

    # Stages the Dockerfile order does not cover (no graph: stdin, remote context) go by start time.
    for k in sorted(groups, key=first_start) + list(expected or []):
        if k not in order:
            order.append(k)
    stages: list[StageReport] = []
    for key in order:
        if key not in groups:
            if expected is not None and key in expected:
                # Never report what was not seen: with no readable progress, nothing is known of the stage.
                status = "unknown" if unreadable else ("skipped" if (failed_build or interrupted) else "cached")
                stages.append(StageReport(key, status, 0, 0, 0.0, None))
            continue
        stages.append(_stage(key, groups[key], sources.get(key, []), t0, failed_build or interrupted))

    total = sum(s.steps for s in stages)
    cached = sum(s.cached_steps for s in stages)
    internal_time = _span(internal)
    from .overhead import categories

    over = categories(model, finalize, finalize_steps)
    failure = _failure(model, image_stages or {})
    status = "canceled" if interrupted else ("success" if exit_code == 0 else "failed")
    return Report(
        status=status, exit_code=exit_code, duration_s=_r(max(0.0, wall)), stages=tuple(stages),
        cache=CacheSummary(total, cached, _r(cached / total) if total else None, tuple(cache_imported or ()),
                           tuple(cache_exported or ()), tuple(cache_errors or ())),
        attempts=attempts, tags=tuple(tags or ()) if exit_code == 0 else (), internal_s=_r(internal_time),
        failure=failure, warnings=tuple(w.short for w in model.warnings), notes=tuple(notes or ()),
        retries=tuple(retries or ()), pushed=tuple(pushed or ()), progress="unreadable" if unreadable else "ok",
        retry_stop=retry_stop,
        overhead=tuple(OverheadReport(c.category, c.duration_s, c.steps, c.bytes) for c in over),
        overhead_intervals=tuple((c.category, _r(a - t0), _r(b - t0)) for c in over for a, b in c.intervals))


def progress_unreadable(model: BuildModel, exit_code: int) -> bool:
    """No progress event was read although BuildKit ran: a build that succeeded always reports steps, and
    lines that look like JSON but were not read mean a stream shape sbuild does not know."""
    return model.events == 0 and (exit_code == 0 or model.unread > 0)


def _span(steps: list[Step]) -> float:
    starts = [s.first_started for s in steps if s.first_started is not None]
    ends = [s.completed for s in steps if s.completed is not None]
    if not starts or not ends:
        return 0.0
    return max(0.0, max(ends) - min(starts))


def _busy(steps: list[Step]) -> float:
    """The union of the steps' intervals: where a stage's steps overlap (bake's copies, sessions per stage)
    the time counts once, and time between them not at all."""
    from .overhead import interval, length, union

    return length(union(iv for s in steps if (iv := interval(s)) is not None))


def _stage(key: str, steps: dict[tuple[int, str, str], list[Step]], sources: list[Step], t0: float,
           build_failed: bool) -> StageReport:
    timeline: list[StepReport] = []
    n_cached = 0
    first_miss = None
    status = None
    for (index, _platform, _instr), copies in sorted(steps.items()):
        # Under bake a shared step has a copy per target: BuildKit runs one and reports the others cached,
        # or announces them and never starts them. The copies that completed cleanly decide.
        ok = [c for c in copies if c.completed is not None and not c.error]
        errors = [c.error for c in copies if c.error]
        err = next((e for e in errors if "context canceled" not in e), None)
        cached = all(c.cached for c in ok) if ok else not build_failed
        if err:
            status = "failed"
        elif not ok and build_failed and status != "failed":
            status = "canceled"
            err = errors[0] if errors else None
        if cached:
            n_cached += 1
        elif first_miss is None:
            first_miss = copies[0].display
        run = min(ok or copies, key=lambda c: (c.cached, c.first_started or 0.0))  # the copy that did the work
        timeline.append(StepReport(run.display, index, _r(run.first_started - t0) if run.first_started else None,
                                   _r(_span([run])), cached, err))
    every = [c for copies in steps.values() for c in copies] + sources
    if status is None:
        status = "cached" if n_cached == len(steps) else "built"
    starts = [c.first_started for c in every if c.first_started is not None]
    platforms: tuple[PlatformReport, ...] = ()
    names = sorted({p for _, p, _ in steps} | {s.platform or "" for s in sources})
    if len(names) > 1:
        parts = []
        for p in names:
            sub = _stage(key, {k: v for k, v in steps.items() if k[1] == p},
                         [s for s in sources if (s.platform or "") == p], t0, build_failed)
            parts.append(PlatformReport(p or "?", sub.status, sub.steps, sub.cached_steps, sub.duration_s,
                                        sub.first_miss))
        platforms = tuple(parts)
    return StageReport(key, status, len(steps), n_cached, _r(_busy(every)), first_miss,
                       _r(min(starts) - t0) if starts else None, tuple(timeline), platforms)


def normalize_image(ref: str) -> str:
    """Docker's familiar names made whole, as BuildKit prints them: busybox -> docker.io/library/busybox:latest."""
    name, _, digest = ref.partition("@")
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}"
    if ":" not in name.rsplit("/", 1)[-1] and not digest:
        name += ":latest"
    return name + (f"@{digest}" if digest else "")


def _failure(model: BuildModel, image_stages: dict[str, str]) -> Failure | None:
    failed = model.failed_steps()
    if not failed:
        return None
    step = min(failed, key=lambda s: s.completed or 0.0)
    stage = step.stage
    if stage is None and "load metadata for " in step.name:
        # BuildKit loads a FROM image's metadata as an [internal] step: name the stage that needs the image.
        ref = step.name.split("load metadata for ", 1)[1].split()[0]
        stage = image_stages.get(normalize_image(ref))
    location = None
    text = list(model.text)
    for i, line in enumerate(text):
        # BuildKit's excerpt: "Dockerfile:24" then a line of dashes
        if i + 1 < len(text) and text[i + 1].startswith("-----") and ":" in line and line.rsplit(":", 1)[1].isdigit():
            location = line.strip()
            break
    return Failure(stage, step.display, step.error or "", location, tuple(list(step.logs)[-OUTPUT_TAIL:]))


def report_from_json(d: dict[str, Any]) -> Report:
    """A Report back from its JSON (a history record's), for the renderers. Keys a schema lacked default."""
    def stage(s: dict[str, Any]) -> StageReport:
        return StageReport(
            s["name"], s["status"], s["steps"], s["cached_steps"], s["duration_s"], s.get("first_miss"),
            s.get("started_s"), tuple(StepReport(t["name"], t["index"], t.get("started_s"), t["duration_s"],
                                                 t["cached"], t.get("error")) for t in s.get("timeline", [])),
            tuple(PlatformReport(**p) for p in s.get("platforms", [])), s.get("baseline_duration_s"), s.get("delta_s"),
            s.get("why"))

    c = d.get("cache") or {}
    f = d.get("failure")
    return Report(
        status=d["status"], exit_code=d["exit_code"], duration_s=d["duration_s"],
        stages=tuple(stage(s) for s in d.get("stages", [])),
        cache=CacheSummary(c.get("steps", 0), c.get("cached_steps", 0), c.get("hit_ratio"),
                           tuple(c.get("imported_from", ())), tuple(c.get("exported_to", ())),
                           tuple(c.get("export_errors", ()))),
        attempts=d.get("attempts", 1), tags=tuple(d.get("tags", ())), pushed=tuple(d.get("pushed", ())),
        internal_s=d.get("internal_s", 0.0),
        failure=Failure(f.get("stage"), f["step"], f.get("error", ""), f.get("location"), tuple(f.get("output", ())))
        if f else None,
        warnings=tuple(d.get("warnings", ())), retries=tuple(d.get("retries", ())),
        schema_version=d.get("schema_version", SCHEMA_VERSION), notes=tuple(d.get("notes", ())),
        progress=d.get("progress", "ok"), retry_stop=d.get("retry_stop"),
        overhead=tuple(OverheadReport(o["category"], o["duration_s"], o["steps"], o.get("bytes"))
                       for o in d.get("overhead", [])),
        id=d.get("id"), baseline=d.get("baseline"), regressions=tuple(d.get("regressions", ())), image=d.get("image"))
