"""The HTML page as text (the browser tests in integration/test_html.py open it): self-contained, a lane per
stage, every status in words and patterns, the why of a missed stage; and the terminal's two rough edges."""

from __future__ import annotations

import io
import re

from rich.console import Console

from sbuild import render_html, render_report
from sbuild.mask import Masker
from sbuild.progress import load_stream
from sbuild.render_tty import TtyRenderer
from sbuild.report import Report, StageReport, StepReport, build_report

from .helpers import DATA


def _report(name: str, code: int = 0, version: str = "buildx-0.13") -> Report:
    text = (DATA / "streams" / version / f"{name}.rawjson").read_text()
    return build_report(load_stream(text), exit_code=code, stage_order=["base", "build", "lint", "test", "deploy"])


def test_the_page_asks_for_nothing_outside_itself() -> None:
    page = render_html.build_page(_report("pipeline-bake"))
    assert "default-src 'none'" in page  # the browser refuses any fetch the page might attempt
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page)
    assert "<link" not in page and "@import" not in page and "url(http" not in page


def test_a_lane_per_stage_and_a_bar_per_step() -> None:
    r = _report("pipeline-bake")
    page = render_html.build_page(r)
    lanes = re.findall(r'<g class="lane stage-lane" data-stage="([^"]+)"', page)
    assert lanes == [s.name for s in r.stages]
    bars = re.findall(r'<g class="step st-(\w+)" tabindex="0"', page)
    assert len(bars) == sum(1 for s in r.stages for t in s.timeline if t.started_s is not None)
    assert set(bars) <= {"built", "cached"}


def test_failed_steps_are_marked_in_words_and_pattern() -> None:
    r = _report("pipeline-fail-test", code=1)
    page = render_html.build_page(r)
    failed = re.findall(r'<g class="step st-failed"[^>]*><title>([^<]+)</title>', page)
    assert failed and all(": failed," in f for f in failed)
    assert 'fill="url(#p-failed)"' in page and "<b>failed:</b> stage test" in page


def test_the_why_of_a_missed_stage_is_on_its_first_missed_step_and_in_the_table() -> None:
    r = _report("pipeline-cold-test")
    why = {"cause": "file", "step": "x", "detail": "src/app.js changed", "paths": ["src/app.js"], "count": 1}
    r = r._replace(stages=tuple(s._replace(why=why if s.name == "build" else None)
                                            for s in r.stages))
    page = render_html.build_page(r)
    assert page.count("why: file: src/app.js changed") == 1  # the first missed step's title (its name)
    assert '<td class="why">file: src/app.js changed</td>' in page


def _synthetic(steps: int, stages: int = 10) -> Report:
    per = steps // stages
    out = []
    for k in range(stages):
        tl = tuple(StepReport(f"[stage{k} {i + 1}/{per}] RUN step number {i} of stage {k}", i + 1, k * 0.5 + i * 0.01,
                              0.2, i % 3 == 0) for i in range(per))
        out.append(StageReport(f"stage{k}", "built", per, sum(t.cached for t in tl), 3.0, tl[1].name, k * 0.5, tl))
    base = _report("pipeline-bake")
    return base._replace(stages=tuple(out), duration_s=20.0)


def test_a_500_step_build_fits_in_300_kb() -> None:
    page = render_html.build_page(_synthetic(500))
    assert len(page.encode()) <= 300_000, len(page.encode())


def test_the_history_page_has_a_small_multiple_per_stage_linking_each_build() -> None:
    rep = _report("pipeline-bake").to_json()
    records = [{"id": f"b{i}", "branch": "main", "commit": "c" * 40, "finished_at": f"2026-11-2{i}T10:00:00Z",
                "report": rep} for i in range(3)]
    page = render_html.history_page(records, "example.com/app:Dockerfile")
    figures = re.findall(r'<figure data-stage="([^"]+)"', page)
    assert figures == [s["name"] for s in rep["stages"]]
    for i in range(3):  # each point opens that build's summary, embedded once
        assert page.count(f'href="#b-b{i}"') == len(figures)
        assert page.count(f'<section class="build" id="b-b{i}">') == 1


def test_a_build_that_failed_before_any_stage_prints_no_empty_table() -> None:
    r = _report("pipeline-fail-test", code=1)._replace(stages=())
    text = render_report.terminal(r)
    assert "STAGE" not in text and text.startswith("FAILED in ")


def test_the_deploy_image_build_is_one_line_in_the_live_view() -> None:
    model = load_stream((DATA / "streams" / "buildx-0.13" / "pipeline-warm-test.rawjson").read_text())
    out = io.StringIO()
    r = TtyRenderer(out, Masker(), model, ["base", "build", "test", "deploy"], single='deploy image "deploy"')
    r.close()
    console = Console(file=io.StringIO(), width=100)
    console.print(r._render())
    lines = [ln for ln in console.file.getvalue().splitlines() if ln.strip()]  # type: ignore[attr-defined]
    assert len(lines) == 1 and 'deploy image "deploy"' in lines[0] and "done" in lines[0]
    assert "waiting" not in console.file.getvalue()  # type: ignore[attr-defined]
