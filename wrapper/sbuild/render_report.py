"""Renderers of a build report: pure functions from a Report to text (or a JSON-able dict)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ._tuple import TYPE_CHECKING
from .report import Report

if TYPE_CHECKING:
    from typing import Any


def _secs(x: float) -> str:
    return f"{x:.1f}s" if x < 60 else f"{int(x // 60)}m{x % 60:04.1f}s"


def _ratio(report: Report) -> str:
    c = report.cache
    if c.hit_ratio is None:
        return "cache: no steps"
    return f"cache {c.cached_steps}/{c.steps} steps ({c.hit_ratio:.0%})"


def columns(rows: Sequence[tuple[str, ...]], *, right: tuple[int, ...] = (), width: int | None = None) -> list[str]:
    """Rows as aligned text columns, two spaces apart; `right` ones right-aligned. The last column is not
    padded, and is cut with "…" to fit `width` (keeping at least 20 characters of it)."""
    n = len(rows[0])
    w = [max(len(r[i]) for r in rows) for i in range(n - 1)]
    room = max(20, width - sum(w) - 2 * (n - 1)) if width is not None else None
    out = []
    for r in rows:
        cells = [r[i].rjust(w[i]) if i in right else r[i].ljust(w[i]) for i in range(n - 1)]
        last = r[-1] if room is None or len(r[-1]) <= room else r[-1][: room - 1] + "…"
        out.append("  ".join([*cells, last]).rstrip())
    return out


def terminal(report: Report, width: int = 100) -> str:
    """The end-of-build table (stderr)."""
    whys = any(s.why for s in report.stages)
    rows = [("STAGE", "STATUS", "STEPS", "CACHED", "TIME", "FIRST MISS", *(("WHY",) if whys else ()))]
    slower = set(report.regressions)
    for s in report.stages:
        took = _secs(s.duration_s) + (f" (+{_secs(s.delta_s)})" if s.name in slower and s.delta_s else "")
        miss = s.first_miss or "-"
        if whys:  # the reason goes last (it is the column cut to fit); the step's name is kept short
            miss = miss if len(miss) <= 40 else miss[:39] + "…"
        rows.append((s.name, s.status, str(s.steps), f"{s.cached_steps}/{s.steps}", took, miss,
                     *((why_text(s.why),) if whys else ())))
        for p in s.platforms:  # a row per platform beneath the stage's totals
            rows.append((f"  {p.platform}", p.status, str(p.steps), f"{p.cached_steps}/{p.steps}",
                         _secs(p.duration_s), p.first_miss or "-", *(("",) if whys else ())))
    # A build that failed before any stage ran has no table: no empty header.
    lines = columns(rows, right=(2, 3, 4), width=width) if report.stages else []
    verdict = {"success": "built", "failed": "FAILED", "canceled": "CANCELED"}[report.status]
    top = report.largest_overhead
    lines.append(f"{verdict} in {_secs(report.duration_s)} · {_ratio(report)}"
                 + (f" · {_label(top.category)} {_secs(top.duration_s)}" if top is not None else "")
                 + (f" · attempts {report.attempts}" if report.attempts > 1 else ""))
    if report.overhead:
        lines.append("outside stages: " + overhead_text(report))
    base = baseline_text(report)
    if base:
        lines.append(base)
    f = report.failure
    if f is not None:
        where = f" ({f.location})" if f.location else ""
        lines.append(f"failed: stage {f.stage or '?'} at {f.step}{where}")
    for t in report.tags:
        lines.append(f"tagged: {t}")
    return "\n".join(lines) + "\n"


def why_text(why: dict[str, Any] | None) -> str:
    """"file: src/app.js changed"; "-" when every step was cached."""
    if not why:
        return "-"
    return f"{why['cause']}: {why['detail']}"


def _label(category: str) -> str:
    return category.replace("-", " ")


def _bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return ""  # pragma: no cover


def _signed_bytes(n: int) -> str:
    return ("+" if n >= 0 else "-") + _bytes(abs(n))


def _signed_secs(x: float) -> str:
    if abs(x) < 0.05:  # no "-0.0s"
        return "±0.0s"
    return ("+" if x >= 0 else "-") + _secs(abs(x))


def baseline_text(report: Report) -> str:
    """"vs 3f2a1b0c9d8e (main abc1234): slower test +3.2s · image 5.2 MB (+120.0 kB)"; "" without a baseline
    or image."""
    parts = []
    b = report.baseline
    if b is not None:
        where = " ".join(x for x in (b.get("branch"), (b.get("commit") or "")[:7]) if x)
        head = f"vs {b['id']}" + (f" ({where})" if where else "") + (f" from the {b['source']}"
                                                                        if b.get("source") != "local" else "")
        total = sum(s.delta_s for s in report.stages if s.delta_s is not None)
        slow = [f"{s.name} {_signed_secs(s.delta_s)}" for s in report.stages
                if s.name in report.regressions and s.delta_s is not None]
        parts.append(head + ": " + ("slower " + ", ".join(slow) if slow else f"stages {_signed_secs(total)}"))
    img = report.image
    if img and img.get("size") is not None:
        delta = img.get("size_delta")
        parts.append(f"image {_bytes(img['size'])}" + (f" ({_signed_bytes(delta)})" if delta is not None else ""))
    return " · ".join(parts)


def overhead_text(report: Report) -> str:
    """"cache export 1.3s · cache import 0.4s · context 0.2s (987 B)": largest first."""
    parts = []
    for o in sorted(report.overhead, key=lambda o: -o.duration_s):
        parts.append(f"{_label(o.category)} {_secs(o.duration_s)}" + (f" ({_bytes(o.bytes)})" if o.bytes else ""))
    return " · ".join(parts)


def markdown(report: Report) -> str:
    """For CI summaries ($GITHUB_STEP_SUMMARY)."""
    icon = {"success": "✅", "failed": "❌", "canceled": "⚠️"}[report.status]
    c = report.cache
    hit = f"{c.hit_ratio:.0%} ({c.cached_steps}/{c.steps} steps)" if c.hit_ratio is not None else "no steps"
    vs = report.baseline is not None
    whys = any(s.why for s in report.stages)
    out = [f"### {icon} sbuild: {report.status} in {report.duration_s:.1f} s, cache hit {hit}", "",
           "| Stage | Status | Steps | Cached | Time |" + (" vs baseline |" if vs else "") + " First cache miss |"
           + (" Why |" if whys else ""),
           "|---|---|---:|---:|---:|" + ("---:|" if vs else "") + "---|" + ("---|" if whys else "")]
    for s in report.stages:
        miss = f"`{s.first_miss}`" if s.first_miss else ""
        delta = ""
        if s.delta_s is not None:
            delta = f"{s.delta_s:+.1f} s" + (" ⚠️ slower" if s.name in report.regressions else "")
        why = (" " + why_text(s.why).replace("|", "∣") + " |") if whys and s.why else (" |" if whys else "")
        out.append(f"| {s.name} | {s.status} | {s.steps} | {s.cached_steps} | {s.duration_s:.1f} s | "
                   + (f"{delta} | " if vs else "") + f"{miss.replace('|', '∣')} |" + why)
        for p in s.platforms:
            pmiss = f"`{p.first_miss}`" if p.first_miss else ""
            out.append(f"| ↳ {p.platform} | {p.status} | {p.steps} | {p.cached_steps} | {p.duration_s:.1f} s | "
                       + (" | " if vs else "") + f"{pmiss.replace('|', '∣')} |" + (" |" if whys else ""))
    f = report.failure
    if f is not None:
        out += ["", f"**Failed:** stage `{f.stage}` at `{f.step}`" + (f" ({f.location})" if f.location else ""), "",
                "```", *f.output, "```"]
    if report.overhead:
        out += ["", "**Outside the stages:** " + overhead_text(report)]
    base = baseline_text(report)
    if base:
        out += ["", "**Compared:** " + base]
    if report.tags:
        out += ["", "**Tags:** " + ", ".join(f"`{t}`" for t in report.tags)]
    return "\n".join(out) + "\n"


def trace(report: Report) -> dict[str, Any]:
    """Chrome trace-event JSON: a track per stage, a slice per step, cached steps marked."""
    events: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "sbuild"}},
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 0, "args": {"name": "build"}},
        {"ph": "X", "name": f"build ({report.status})", "pid": 1, "tid": 0, "ts": 0,
         "dur": int(report.duration_s * 1e6), "args": {"exit_code": report.exit_code}},
    ]
    from .progress import classify_name

    tracks: dict[tuple[str, str], int] = {}  # (stage, platform) -> tid: a track per platform of a stage
    for s in report.stages:
        for p in [q.platform for q in s.platforms] or [""]:
            tid = tracks[(s.name, p)] = len(tracks) + 1
            events.append({"ph": "M", "name": "thread_name", "pid": 1, "tid": tid,
                           "args": {"name": f"{s.name} {p}".strip()}})
            events.append({"ph": "M", "name": "thread_sort_index", "pid": 1, "tid": tid, "args": {"sort_index": tid}})
    for s in report.stages:
        for st in s.timeline:
            if st.started_s is None:
                continue
            plat = classify_name(st.name)[3] or "" if s.platforms else ""
            i = tracks.get((s.name, plat), tracks[(s.name, s.platforms[0].platform if s.platforms else "")])
            events.append({
                "ph": "X", "pid": 1, "tid": i, "ts": int(st.started_s * 1e6), "dur": max(1, int(st.duration_s * 1e6)),
                "name": st.name + (" (cached)" if st.cached else ""), "cat": "cached" if st.cached else "step",
                "cname": "good" if st.cached else ("terrible" if st.error else "thread_state_running"),
                "args": {"cached": st.cached, **({"error": st.error} if st.error else {})},
            })
    if report.overhead_intervals:  # one track for the time outside the stages, a slice per busy interval
        tid = len(tracks) + 1
        events.append({"ph": "M", "name": "thread_name", "pid": 1, "tid": tid, "args": {"name": "outside stages"}})
        events.append({"ph": "M", "name": "thread_sort_index", "pid": 1, "tid": tid, "args": {"sort_index": tid}})
        for cat, start, end in report.overhead_intervals:
            events.append({"ph": "X", "pid": 1, "tid": tid, "ts": int(start * 1e6),
                           "dur": max(1, int((end - start) * 1e6)), "name": _label(cat), "cat": "overhead"})
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def json_text(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2) + "\n"
