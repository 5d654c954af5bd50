"""`sbuild history` and `sbuild diff` as text and JSON. Pure functions of store rows and records."""

from __future__ import annotations

import time
from typing import Any

from .history import Row
from .record import _iso
from .render_report import _bytes, _secs, _signed_secs, columns

HISTORY_SCHEMA = 1


def when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def history_json(rows: list[Row], project: str | None) -> dict[str, Any]:
    """The contract of `sbuild history --json`."""
    return {"schema_version": HISTORY_SCHEMA, "project": project, "builds": [
        {"id": r.id, "project": r.project, "finished_at": _iso(r.finished_at),
         "branch": r.branch, "commit": r.commit, "status": r.status, "duration_s": r.duration_s,
         "hit_ratio": r.hit_ratio, "stages_asked": r.stages.split(",") if r.stages else [], "stages": r.stage_times,
         "source": r.source} for r in rows]}


def history_table(rows: list[Row], width: int = 120) -> str:
    out = [("ID", "WHEN", "BRANCH", "COMMIT", "STATUS", "TIME", "CACHE", "STAGES")]
    for r in rows:
        out.append((r.id, when(r.finished_at), r.branch or "-", (r.commit or "-")[:7], r.status,
                    _secs(r.duration_s or 0.0), f"{r.hit_ratio:.0%}" if r.hit_ratio is not None else "-",
                    " ".join(f"{k} {_secs(v)}" for k, v in r.stage_times.items()) or "-"))
    return "\n".join(columns(out, right=(5, 6), width=width)) + "\n"


def record_text(record: dict[str, Any]) -> str:
    """`sbuild history show ID`: where and what, then the build's own table."""
    from .render_report import terminal
    from .report import report_from_json

    b = record.get("builder") or {}
    lines = [f"build {record['id']} · {record['status']} · finished {record.get('finished_at')}",
             f"project: {record['project']['id']}",
             f"branch {record.get('branch') or '-'} · commit {(record.get('commit') or '-')[:12]}"
             + (" (dirty)" if record.get("dirty") else "")
             + f" · builder {b.get('name') or '?'} ({b.get('driver') or '?'})"
             + (f" · platforms {', '.join(record['platforms'])}" if record.get("platforms") else ""),
             f"stages asked: {', '.join(record.get('stages') or []) or '(default)'}"]
    if record.get("build_args"):
        lines.append("build args: " + ", ".join(f"{k}={v}" for k, v in record["build_args"].items()))
    img = record.get("image")
    if img and img.get("digest"):
        lines.append(f"image {img['digest'][:19]}" + (f" · {_bytes(img['size'])}" if img.get("size") else "")
                     + (f" · {img['layers']} layers" if img.get("layers") else ""))
    return "\n".join(lines) + "\n\n" + terminal(report_from_json(record["report"]))


def explain_json(record: dict[str, Any]) -> dict[str, Any]:
    """The contract of `sbuild explain --json`: per stage that missed, its missed steps and why, with the
    chain of upstream stages back to the first cause."""
    from .explain import EXPLAIN_SCHEMA, chain

    report = record.get("report") or {}
    whys = {s["name"]: s.get("why") for s in report.get("stages", [])}
    stages = []
    for s in report.get("stages", []):
        missed = [t["name"] for t in sorted(s.get("timeline", []), key=lambda t: t["index"]) if not t["cached"]]
        if not missed:
            continue
        stages.append({"name": s["name"], "missed": missed, "why": s.get("why"), "chain": chain(s["name"], whys)})
    return {"schema_version": EXPLAIN_SCHEMA, "id": record["id"], "status": record.get("status"),
            "baseline": report.get("baseline"), "stages": stages}


def explain_text(d: dict[str, Any]) -> str:
    b = d.get("baseline")
    head = f"build {d['id']} ({d.get('status')})" + (f" against {b['id']} ({b.get('branch') or '-'} "
                                                       f"{(b.get('commit') or '')[:7]}, {b.get('source')})" if b
                                                       else ", no baseline")
    lines = [head]
    if not d["stages"]:
        lines.append("every step came from the cache")
    for s in d["stages"]:
        why = s.get("why") or {}
        lines.append("")
        lines.append(f"{s['name']}: {why.get('cause', 'unknown')}: {why.get('detail', 'not explained')}")
        if len(s["chain"]) > 1:
            lines.append("  chain: " + " ← ".join(s["chain"]))
        for p in why.get("paths") or []:
            lines.append(f"  {p}")
        if (why.get("count") or 0) > len(why.get("paths") or []):
            lines.append(f"  … {why['count'] - len(why['paths'])} more")
        for i, step in enumerate(s["missed"]):
            lines.append(f"  {'first miss' if i == 0 else 'then':10s} {step}")
    return "\n".join(lines) + "\n"


def diff_text(d: dict[str, Any], width: int = 120) -> str:
    a, b = d["a"], d["b"]
    head = [f"A {a['id']} ({a.get('branch') or '-'} {(a.get('commit') or '')[:7]}) {a['status']} "
            f"{_secs(a['duration_s'] or 0.0)}",
            f"B {b['id']} ({b.get('branch') or '-'} {(b.get('commit') or '')[:7]}) {b['status']} "
            f"{_secs(b['duration_s'] or 0.0)}"]
    rows = [("STAGE / STEP", "A", "B", "DELTA", "CACHED A→B")]
    for s in d["stages"]:
        x, y = s["a"], s["b"]
        rows.append((s["name"] + (" (slower)" if s["regression"] else ""),
                     _secs(x["duration_s"]) if x else "-", _secs(y["duration_s"]) if y else "-",
                     _signed_secs(s["delta_s"]) if s["delta_s"] is not None else "-",
                     (f"{x['cached_steps']}/{x['steps']}" if x else "-") + " → "
                     + (f"{y['cached_steps']}/{y['steps']}" if y else "-")))
        for st in s["steps"]:
            changed = st["a_cached"] != st["b_cached"]
            if not changed and (st["delta_s"] is None or abs(st["delta_s"]) < 0.1):
                continue  # the steps that tell the story: cache changed, or time moved
            mark = {True: "cached", False: "built", None: "-"}
            rows.append((f"  {st['step']}", _secs(st["a_duration_s"]) if st["a_duration_s"] is not None else "-",
                         _secs(st["b_duration_s"]) if st["b_duration_s"] is not None else "-",
                         _signed_secs(st["delta_s"]) if st["delta_s"] is not None else "-",
                         f"{mark[st['a_cached']]} → {mark[st['b_cached']]}"))
    # The step column goes first, so it is the one cut to fit: move it last for columns().
    lines = columns([(*r[1:], r[0]) for r in rows], right=(0, 1, 2), width=width)
    tail = []
    if d.get("duration_delta_s") is not None:
        tail.append(f"total {_signed_secs(d['duration_delta_s'])}")
    if d.get("image_size_delta") is not None:
        n = d["image_size_delta"]
        tail.append(f"image {'+' if n >= 0 else '-'}{_bytes(abs(n))}")
    return "\n".join(head + [""] + lines + ([" · ".join(tail)] if tail else [])) + "\n"
