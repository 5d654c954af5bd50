"""The per-stage report against the real engine."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from .conftest import BASE_IMAGE, report, sbuild, sbuild_cmd

pytestmark = pytest.mark.usefixtures("engine")


def _stages(report: dict) -> dict[str, dict]:
    return {s["name"]: s for s in report["stages"]}


def test_cached_then_one_changed_file(example: Path, tmp_path: Path) -> None:
    r = tmp_path / "r.json"
    for _ in range(2):
        cp = sbuild("--stage", "test", "--report", str(r), str(example))
        assert cp.returncode == 0, cp.stderr[-2000:]
    second = json.loads(r.read_text())
    assert second["status"] == "success" and second["exit_code"] == 0
    assert set(_stages(second)) == {"base", "build", "test"}
    assert all(s["status"] == "cached" and s["steps"] == s["cached_steps"] > 0 for s in second["stages"]), second
    assert second["cache"]["hit_ratio"] == 1.0
    assert "100%" in cp.stderr  # the end-of-build table

    with (example / "tests" / "run.sh").open("a") as f:
        f.write(f"# changed {time.time()}\n")  # a file only the test stage copies
    cp = sbuild("--stage", "test", "--report", str(r), str(example))
    assert cp.returncode == 0, cp.stderr[-2000:]
    third = _stages(json.loads(r.read_text()))
    assert third["base"]["status"] == third["build"]["status"] == "cached"
    assert third["test"]["status"] == "built"
    assert third["test"]["first_miss"] == "[test 1/2] COPY tests/ ./tests/"
    assert third["test"]["cached_steps"] == 0


def test_failing_stage_report_and_exit_code(example: Path, tmp_path: Path) -> None:
    (example / "tests" / "run.sh").write_text("echo 'FAIL - broken on purpose'\nexit 4\n")
    r, s = tmp_path / "r.json", tmp_path / "summary.md"
    gh = tmp_path / "gh-summary.md"
    gh.write_text("earlier step\n")
    cp = sbuild("--stage", "lint,test", "--report", str(r), "--summary", str(s), str(example),
                env={"GITHUB_STEP_SUMMARY": str(gh)})
    assert cp.returncode == 1
    rep = json.loads(r.read_text())
    assert rep["status"] == "failed" and rep["exit_code"] == 1
    assert rep["failure"]["stage"] == "test"
    assert rep["failure"]["step"] == "[test 2/2] RUN sh tests/run.sh dist/app"
    assert rep["failure"]["location"].endswith(":22")
    assert rep["failure"]["output"][-1] == "FAIL - broken on purpose"
    assert _stages(rep)["test"]["status"] == "failed"
    assert "failed: stage test at [test 2/2] RUN sh tests/run.sh dist/app" in cp.stderr
    assert s.read_text().startswith("### ❌ sbuild: failed")
    assert gh.read_text().startswith("earlier step\n### ❌ sbuild: failed")  # appended, not replaced


def test_interrupted_build_still_writes_a_whole_report(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE_IMAGE} AS slow\nRUN echo started-slow && sleep 60\n")
    r = tmp_path / "r.json"
    proc = subprocess.Popen([*sbuild_cmd(), "--no-cache", "--progress=plain", "--report", str(r), str(tmp_path)],
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "started-slow" in line and "RUN" not in line:
            break
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    rep = json.loads(r.read_text())
    assert rep["status"] == "canceled" and rep["exit_code"] == 130
    assert _stages(rep)["slow"]["status"] == "canceled"


def test_trace_file(tmp_path: Path) -> None:
    t = tmp_path / "trace.json"
    cp = sbuild("--stage", "lint,test", "--trace", str(t), str(Path(__file__).parents[1] / "examples/pipeline"))
    assert cp.returncode == 0
    events = json.loads(t.read_text())["traceEvents"]
    tracks = {e["args"]["name"] for e in events if e.get("name") == "thread_name"}
    assert {"base", "build", "lint", "test"} <= tracks


def test_live_view_on_a_terminal(example: Path) -> None:
    """The TTY renderer end to end, under a real pseudo-terminal (util-linux `script`)."""
    import os
    import shlex
    import shutil

    if shutil.which("script") is None:
        pytest.fail("`script` (util-linux) is needed to give sbuild a terminal")
    (example / "tests" / "run.sh").write_text("echo 'visible on the terminal'; exit 6\n")
    inner = shlex.join([*sbuild_cmd(), "--stage", "lint,test", str(example)])
    cp = subprocess.run(["script", "-qec", inner, "/dev/null"], capture_output=True, text=True, timeout=120,
                        env={**os.environ, "TERM": "xterm", "COLUMNS": "120"})
    assert cp.returncode == 1, cp.stdout[-2000:]
    out = cp.stdout
    assert "Traceback" not in out
    assert "✘" in out and "test" in out  # the live stage lines
    assert "visible on the terminal" in out  # the failing step's output
    assert "failed: stage test at [test 2/2] RUN sh tests/run.sh dist/app" in out


def test_time_outside_the_stages_on_a_real_push(example: Path, tmp_path: Path) -> None:
    from .conftest import REGISTRY

    r = tmp_path / "r.json"
    name = f"{REGISTRY}/sbuild-it/overhead-{uuid.uuid4().hex[:8]}"
    with (example / "src" / "greet.sh").open("a") as f:
        f.write(f"# {uuid.uuid4().hex}\n")  # something to build and push
    cp = sbuild("--stage", "test,deploy", "--push", "-t", f"{name}:1", "--cache-to",
                f"type=registry,ref={name}:cache,mode=max", "--report", str(r), str(example))
    assert cp.returncode == 0, cp.stderr[-2000:]
    rep = report(r)
    by = {o["category"]: o for o in rep["overhead"]}
    # The stages ran in one bake session; deploy's image was made and pushed by sbuild's second build.
    assert {"definition", "context", "cache-export", "finalize"} <= set(by), by
    assert by["finalize"]["steps"] >= 1 and by["finalize"]["duration_s"] > 0
    assert by["context"]["bytes"] > 0
    assert all(o["duration_s"] <= rep["duration_s"] for o in rep["overhead"])
    largest = max(rep["overhead"], key=lambda o: o["duration_s"])
    assert f"· {largest['category'].replace('-', ' ')} " in cp.stderr


def test_live_view_shows_a_row_per_platform(example: Path) -> None:
    import os
    import re
    import shlex

    from .conftest import REGISTRY

    inner = shlex.join([*sbuild_cmd(), "--platform", "linux/amd64,linux/386", "--build-arg",
                        f"BASE_IMAGE={REGISTRY}/sbuild/busybox-multi:latest", "--stage", "test", "--no-cache",
                        str(example)])
    cp = subprocess.run(["script", "-qec", inner, "/dev/null"], capture_output=True, text=True, timeout=180,
                        env={**os.environ, "TERM": "xterm", "COLUMNS": "140"})
    assert cp.returncode == 0, cp.stdout[-2000:]
    # The live rows say "N/M cached" (the final table does not): one beneath the stage for each platform.
    out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", cp.stdout)
    for plat in ("linux/amd64", "linux/386"):
        assert re.search(rf"{plat}\s+(running|built|cached)\s+\d+/\d+ cached", out), plat
