"""A build against another: the report's baseline fields, regressions, and `sbuild diff`. Pure: records and
reports in, a report or a JSON-able diff out."""

from __future__ import annotations

import re

from ._tuple import TYPE_CHECKING
from .record import Image
from .report import Report

if TYPE_CHECKING:
    from typing import Any

DIFF_SCHEMA = 1
REGRESSION_RATIO = 0.20  # a stage slowed by at least 20% ...
REGRESSION_MIN_S = 2.0  # ... and at least 2 s is a regression


def is_regression(duration_s: float, baseline_s: float) -> bool:
    delta = duration_s - baseline_s
    return delta >= REGRESSION_MIN_S and delta >= REGRESSION_RATIO * baseline_s


def baseline_ref(record: dict[str, Any], source: str) -> dict[str, Any]:
    return {"id": record["id"], "branch": record.get("branch"), "commit": record.get("commit"),
            "finished_at": record.get("finished_at"), "source": source}


def apply_baseline(report: Report, baseline: dict[str, Any] | None, source: str | None, image: Image | None,
                   build_id: str | None) -> Report:
    """The report with its history id, baseline, per-stage deltas, regressions and the image's facts."""
    base_report = (baseline or {}).get("report") or {}
    before = {s["name"]: s for s in base_report.get("stages", [])}
    stages = []
    regressions = []
    for s in report.stages:
        b = before.get(s.name)
        if b is None or baseline is None:
            stages.append(s)
            continue
        bd = float(b["duration_s"])
        delta = round(s.duration_s - bd, 3)
        stages.append(s._replace(baseline_duration_s=bd, delta_s=delta))
        if is_regression(s.duration_s, bd):
            regressions.append(s.name)
    img = None
    if image is not None and (image.digest or image.size is not None):
        base_size = ((baseline or {}).get("image") or {}).get("size")
        img = {"digest": image.digest, "size": image.size, "layers": image.layers, "baseline_size": base_size,
               "size_delta": image.size - base_size if image.size is not None and base_size is not None else None}
    return report._replace(stages=tuple(stages), id=build_id, regressions=tuple(regressions),
                               baseline=baseline_ref(baseline, source or "local") if baseline else None, image=img)


_PREFIX = re.compile(r"^\[[^\]]*\]\s*")


def _steps(stage: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A stage's steps keyed by instruction (the "[stage i/n]" prefix dropped: a step added above another
    renumbers it); a repeated instruction gets "#2"."""
    out: dict[str, dict[str, Any]] = {}
    for st in stage.get("timeline", []):
        key = _PREFIX.sub("", st["name"])
        n, k = 1, key
        while k in out:
            n += 1
            k = f"{key} #{n}"
        out[k] = st
    return out


def _side(record: dict[str, Any]) -> dict[str, Any]:
    r = record.get("report") or {}
    return {"id": record["id"], "branch": record.get("branch"), "commit": record.get("commit"),
            "finished_at": record.get("finished_at"), "status": record.get("status"),
            "duration_s": r.get("duration_s"), "hit_ratio": (r.get("cache") or {}).get("hit_ratio"),
            "image_size": (record.get("image") or {}).get("size")}


def _delta(a: float | None, b: float | None) -> float | None:
    return round(b - a, 3) if a is not None and b is not None else None


def diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """B against A (A: the older, e.g. the baseline): per stage and per step, time and cache."""
    sa = {s["name"]: s for s in (a.get("report") or {}).get("stages", [])}
    sb = {s["name"]: s for s in (b.get("report") or {}).get("stages", [])}
    stages = []
    for name in [*sb, *(n for n in sa if n not in sb)]:
        x, y = sa.get(name), sb.get(name)
        steps = []
        xs, ys = _steps(x or {}), _steps(y or {})
        for key in [*ys, *(k for k in xs if k not in ys)]:
            p, q = xs.get(key), ys.get(key)
            pd, qd = (p["duration_s"] if p else None), (q["duration_s"] if q else None)
            steps.append({"step": key, "a_duration_s": pd, "b_duration_s": qd, "delta_s": _delta(pd, qd),
                          "a_cached": p["cached"] if p else None, "b_cached": q["cached"] if q else None})
        stages.append({
            "name": name,
            "a": {k: x[k] for k in ("status", "duration_s", "steps", "cached_steps")} if x else None,
            "b": {k: y[k] for k in ("status", "duration_s", "steps", "cached_steps")} if y else None,
            "delta_s": _delta(x["duration_s"] if x else None, y["duration_s"] if y else None),
            "regression": bool(x and y and is_regression(y["duration_s"], x["duration_s"])),
            "steps": steps,
        })
    side_a, side_b = _side(a), _side(b)
    return {"schema_version": DIFF_SCHEMA, "a": side_a, "b": side_b,
            "duration_delta_s": _delta(side_a["duration_s"], side_b["duration_s"]),
            "image_size_delta": _delta(side_a["image_size"], side_b["image_size"]),
            "stages": stages}
