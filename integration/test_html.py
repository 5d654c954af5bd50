"""The HTML page in a real browser (Debian's Chromium, headless): opened from file://, its DOM checked, a
1280x800 screenshot taken, and any console error or network request fails the test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import browser
from .conftest import _missing, report, sbuild

pytestmark = [pytest.mark.usefixtures("registry"), pytest.mark.one_pair]


@pytest.fixture
def page(tmp_path: Path) -> Iterator[browser.Page]:
    missing = browser.available()
    if missing:
        _missing(missing)
    with browser.chromium(tmp_path) as p:
        yield p
        assert p.console_errors() == []
        assert p.requests() == []  # nothing left the page


def _css(p: browser.Page, selector: str) -> list:
    return p.driver.find_elements("css selector", selector)


def test_a_failed_build_with_a_miss_explained(example: Path, tmp_path: Path, page: browser.Page) -> None:
    tag = uuid.uuid4().hex
    (example / "src" / "build.sh").write_text((example / "src" / "build.sh").read_text() + f"\n# {tag}\n")
    assert sbuild("--stage", "lint,test", str(example)).returncode == 0  # the baseline
    (example / "src" / "build.sh").write_text((example / "src" / "build.sh").read_text() + "\n# changed\n")
    (example / "tests" / "run.sh").write_text("echo failing on purpose >&2; exit 1\n")
    out = tmp_path / "report.html"
    cp = sbuild("--stage", "lint,test", "--html", str(out), "--report", str(tmp_path / "r.json"), str(example))
    assert cp.returncode == 1 and out.exists(), cp.stderr[-2000:]
    rep = report(tmp_path / "r.json")
    page.open(out)
    lanes = [e.get_attribute("data-stage") for e in _css(page, "g.stage-lane")]
    assert lanes == [s["name"] for s in rep["stages"]]
    failed = _css(page, 'g.stage-lane[data-stage="test"] g.step.st-failed')
    title = page.driver.execute_script("return arguments[0].querySelector('title').textContent", failed[0])
    assert len(failed) == 1 and title.startswith("[test 2/2] RUN sh tests/run.sh") and ": failed," in title
    assert "file: src/build.sh changed" in page.driver.find_element("css selector", "table").text
    # The keyboard reaches the steps, and a focused step shows its details (and why it missed).
    first = _css(page, 'g.stage-lane[data-stage="build"] g.step')[0]
    page.driver.execute_script("arguments[0].focus()", first)
    detail = page.driver.find_element("id", "detail").text
    assert detail.startswith("[build 1/2] COPY src/ ./src/") and "why: file: src/build.sh changed" in detail
    from selenium.webdriver.common.keys import Keys

    first.send_keys(Keys.ARROW_RIGHT)
    assert page.driver.find_element("id", "detail").text.startswith("[build 2/2] RUN")
    shot = tmp_path / "report.png"
    assert page.driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_the_history_page_opens_each_build(example: Path, tmp_path: Path, page: browser.Page) -> None:
    for _ in range(3):
        assert sbuild("--stage", "test", str(example)).returncode == 0
    out = tmp_path / "history.html"
    cp = sbuild("history", "--html", str(out), cwd=example)
    assert cp.returncode == 0 and out.exists(), cp.stderr
    page.open(out)
    figures = [e.get_attribute("data-stage") for e in _css(page, "figure")]
    assert figures == ["base", "build", "test"]
    points = _css(page, 'figure[data-stage="test"] a')
    assert len(points) == 3
    sections = _css(page, "section.build")
    assert len(sections) == 3 and not any(s.is_displayed() for s in sections)
    target = page.driver.execute_script("return arguments[0].getAttribute('href')", points[-1]).lstrip("#")
    points[-1].click()
    shown = [s.get_attribute("id") for s in sections if s.is_displayed()]
    assert shown == [target]
    page.driver.save_screenshot(str(tmp_path / "history.png"))
