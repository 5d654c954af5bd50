"""Live progress on a terminal: one line per stage and the tail of the running steps' output.

rich is imported only here, i.e. only when stderr is a terminal (it costs ~30 ms to import).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .mask import Masker
from .progress import BuildModel, Step, TextLine, Update
from .render_plain import failure_box

TAIL = 6  # lines of running output shown under the stages
_SPIN = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class TtyRenderer:
    def __init__(self, out: TextIO, masker: Masker, model: BuildModel, stages: list[str],
                 baseline: Callable[[], dict[str, float] | None] | None = None, single: str | None = None) -> None:
        self.model = model
        self.single = single  # one line for the whole build under this label (the deploy image's build)
        self.baseline = baseline  # the baseline's stage times, once the history found them
        self.mask = masker.text
        self.stages = list(stages)
        self.console = Console(file=out, highlight=False)
        self.t0 = time.monotonic()
        self.text: list[str] = []
        self.live = Live(console=self.console, refresh_per_second=8, transient=False,
                         get_renderable=self._render, redirect_stdout=False, redirect_stderr=False)
        self.live.start()

    def update(self, u: Update) -> None:
        if isinstance(u, TextLine):  # the rest is read from the model when the view redraws
            self.text.append(u.line)

    def _render(self) -> RenderableType:
        steps = list(self.model.steps.values())  # a snapshot: the stream is read on another thread
        if self.single is not None:
            return self._single(steps)
        by_stage: dict[str, list[Step]] = {}
        for s in steps:
            if not s.internal:
                by_stage.setdefault(s.stage or (self.stages[0] if len(self.stages) == 1 else "?"), []).append(s)
        keys = self.stages + [k for k in by_stage if k not in self.stages]
        table = Table.grid(padding=(0, 1))
        spin = _SPIN[int(time.monotonic() * 10) % len(_SPIN)]
        running: list[Step] = []
        now = time.time()
        base = self.baseline() if self.baseline is not None else None
        for key in keys:
            ss = by_stage.get(key, [])
            running += self._row(table, key, ss, spin, now, bold=True, baseline_s=(base or {}).get(key))
            platforms = sorted({s.platform for s in ss if s.platform})
            if len(platforms) > 1:  # a row per platform beneath the stage
                for p in platforms:
                    self._row(table, f"  {p}", [s for s in ss if s.platform == p], spin, now, bold=False)
        parts: list[RenderableType] = [table]
        if running:
            lines = [ln for s in running for ln in list(s.logs)[-TAIL:]][-TAIL:]
            if lines:
                parts.append(Text("\n".join(self.mask(ln) for ln in lines), style="dim", overflow="ellipsis",
                                  no_wrap=True))
        return Group(*parts)

    def _single(self, steps: list[Step]) -> RenderableType:
        """One line: the label, its state, and the step BuildKit is on (export, push, naming...)."""
        table = Table.grid(padding=(0, 1))
        spin = _SPIN[int(time.monotonic() * 10) % len(_SPIN)]
        active = [s for s in steps if s.started is not None and s.completed is None]
        failed = [s for s in steps if s.error and "context canceled" not in s.error]
        icon, state, style = ("✘", "failed", "red") if failed else ((spin, "running", "cyan") if active or not steps
                                                                     else ("✔", "done", "green"))
        starts = [s.first_started for s in steps if s.first_started]
        took = (max(s.completed or time.time() for s in steps) - min(starts)) if starts else None
        current = active[-1].display if active else (failed[0].display if failed else "")
        table.add_row(Text(icon, style=style), Text(self.single or "", style="bold"), Text(state, style=style),
                      Text(f"{took:.1f}s" if took is not None else ""),
                      Text(self.mask(current), style="dim", overflow="ellipsis", no_wrap=True))
        return table

    def _row(self, table: Table, label: str, ss: list[Step], spin: str, now: float, bold: bool,
             baseline_s: float | None = None) -> list[Step]:
        """One line of the live table for these steps (a stage's, or one platform's of it); its running steps."""
        real: dict[tuple[int, str, str], bool] = {}  # bake reports a shared step once per target
        for s in ss:
            if not s.is_source:  # ... and a multi-platform build runs it once per platform
                k = (s.index, s.platform or "", s.instruction)
                real[k] = real.get(k, True) and s.cached
        cached = sum(real.values())
        active = [s for s in ss if s.started is not None and s.completed is None]
        failed = [s for s in ss if s.error and "context canceled" not in s.error]
        if failed:
            icon, state, style = "✘", "failed", "red"
        elif active:
            icon, state, style = spin, "running", "cyan"
        elif not any(s.started is not None for s in ss):
            icon, state, style = "·", "waiting", "dim"
        elif real and cached == len(real):
            icon, state, style = "✔", "cached", "green"
        else:
            icon, state, style = "✔", "built", "green"
        starts = [s.first_started for s in ss if s.first_started]
        ends = [s.completed or now for s in ss]
        took = max(ends) - min(starts) if starts and ends else None
        elapsed = Text(f"{took:.1f}s" if took is not None else "")
        if took is not None and baseline_s is not None and state in ("built", "cached"):
            from .compare import is_regression

            if is_regression(took, baseline_s):  # slower than the baseline: say by how much, beside it
                elapsed.append(f" +{took - baseline_s:.1f}s", style="yellow")
        current = active[-1].display if active else (failed[0].display if failed else "")
        table.add_row(Text(icon, style=style), Text(label, style="bold" if bold else ""), Text(state, style=style),
                      Text(f"{cached}/{len(real)} cached" if real else "", style="dim"),
                      elapsed, Text(self.mask(current), style="dim", overflow="ellipsis", no_wrap=True))
        return active

    def close(self) -> None:
        if self.live.is_started:
            self.live.stop()

    def finish(self, model: BuildModel) -> None:
        self.close()
        for step in model.failed_steps():
            box = failure_box(step, self.mask)
            self.console.print(Text("\n".join(box[:2]), style="red"))
            for line in box[2:-1]:
                self.console.print(Text(line))
            self.console.print(Text(box[-1], style="red"))
        for line in self.text:
            self.console.print(Text(self.mask(line)))
