"""The `sbuild stages` table. A pure function of the stage graph."""

from __future__ import annotations

from .render_report import columns
from .stages import StageGraph


def render_table(graph: StageGraph, deploy: str | None = None) -> str:
    deploy = deploy or graph.default.key
    rows = [("STAGE", "BASE", "NEEDS", "DESCRIPTION")]
    for s in graph.stages:
        name = s.key + (" *" if s.key == deploy else "")
        base = s.base if s.base == s.base_expanded else f"{s.base} = {s.base_expanded}"
        if s.platform:
            base += f" ({s.platform})"
        rows.append((name, base, ", ".join(s.needs) or "-", s.description))
    lines = columns(rows)
    lines.append(f"* deploy stage{' (the last stage)' if deploy == graph.default.key else ''}: "
                 "gets the tags and outputs")
    lines.append(f"read for {graph.frontend.describe()}")
    return "\n".join(lines) + "\n"
