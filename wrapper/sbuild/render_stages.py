"""The `sbuild stages` table. A pure function of the stage graph."""

from __future__ import annotations

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
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join((r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].ljust(widths[2]), r[3])).rstrip()
             for r in rows]
    lines.append(f"* deploy stage{' (the last stage)' if deploy == graph.default.key else ''}: "
                 "gets the tags and outputs")
    lines.append(f"read for {graph.frontend.describe()}")
    return "\n".join(lines) + "\n"
