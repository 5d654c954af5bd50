"""The per-stage report on real recorded streams (tests/data/streams, see scripts/record-streams).

Expectations are computed here straight from the recorded vertices (their timestamps and `cached`
flags), independently of sbuild's stream parser."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from sbuild import render_report
from sbuild.progress import LOG_TAIL_LINES, BuildModel, StreamSplitter, load_stream
from sbuild.report import build_report

from .helpers import json_objects

STREAMS = Path(__file__).parent / "data" / "streams"
# One directory per buildx version of the support matrix: 0.13.1 writes indented JSON objects, 0.29.1 one
# compact object per line. Every report test runs on both.
VERSIONS = ["buildx-0.13", "buildx-0.29"]
NAME = re.compile(r"^\[(?:(?P<target>\S+(?: \S+)?) )?(?P<stage>[^\s\]]+) (?P<i>\d+)/(?P<n>\d+)\] (?P<instr>.*)$", re.S)
SINGLE = re.compile(r"^\[(?P<i>\d+)/(?P<n>\d+)\] (?P<instr>.*)$", re.S)


def _ts(s: str) -> float:
    whole, _, frac = s.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole + "+00:00").timestamp() + float("0." + (frac or "0"))


def _vertices(text: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for obj in json_objects(text):
        for v in obj.get("vertexes") or ():
            d = out.setdefault(v["digest"], {"name": v["name"], "starts": [], "completed": None, "cached": False})
            if v.get("started"):
                d["starts"].append(_ts(v["started"]))
            if v.get("completed"):
                d["completed"] = _ts(v["completed"])
            d["cached"] |= bool(v.get("cached"))
    return out


def _expected(text: str, single: str) -> dict[str, dict]:
    stages: dict[str, dict] = {}
    for v in _vertices(text).values():
        m = NAME.match(v["name"]) or SINGLE.match(v["name"])
        if not m:
            continue
        stage = m.groupdict().get("stage") or single
        words = (m.groupdict().get("target") or "").split()
        platform = next((w for w in words if "/" in w), "")  # "[linux/386 base 2/3]": a step per platform
        st = stages.setdefault(stage, {"steps": {}, "spans": []})
        if v["completed"] is not None and v["starts"]:
            st["spans"].append((min(v["starts"]), v["completed"]))
        if not m.group("instr").startswith("FROM "):
            key = (platform, int(m.group("i")), m.group("instr"))
            st["steps"].setdefault(key, True)
            if v["completed"] is not None:  # copies bake announced but never ran do not count
                st["steps"][key] = st["steps"][key] and v["cached"]
    return {k: {"steps": len(s["steps"]), "cached_steps": sum(s["steps"].values()),
                "duration_s": round(_busy(s["spans"]), 3)} for k, s in stages.items()}


def _busy(spans: list[tuple[float, float]]) -> float:
    """Busy time: the length of the union of the intervals (a sweep over their ends)."""
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda e: (e[0], -e[1]))
    busy, depth, since = 0.0, 0, 0.0
    for t, d in events:
        if depth == 0 and d == 1:
            since = t
        depth += d
        if depth == 0:
            busy += t - since
    return busy


CASES = ["pipeline-cold-test", "pipeline-warm-test", "pipeline-bake", "pipeline-bake-all", "pipeline-warm-registry",
         "pipeline-fail-test", "single-stage", "pipeline-2platform-test", "pipeline-push-cache"]


ORDER = ["base", "build", "lint", "test", "static-analysis", "deploy"]  # examples/pipeline


def _report(name: str, version: str = "buildx-0.13"):
    text = (STREAMS / version / f"{name}.rawjson").read_text()
    code = int(re.search(r"# exit code: (\d+)", (STREAMS / version / f"{name}.cmd").read_text()).group(1))
    order = ORDER if name.startswith("pipeline") else None
    return text, code, build_report(load_stream(text), exit_code=code, single_stage="stage-0", stage_order=order)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", CASES)
def test_stage_numbers_equal_the_recorded_vertices(name: str, version: str) -> None:
    text, _, report = _report(name, version)
    assert report.progress == "ok" and report.cache.steps > 0
    expected = _expected(text, "stage-0")
    got = {s.name: {"steps": s.steps, "cached_steps": s.cached_steps, "duration_s": s.duration_s}
           for s in report.stages}
    assert got == expected
    assert report.cache.steps == sum(e["steps"] for e in expected.values())
    assert report.cache.cached_steps == sum(e["cached_steps"] for e in expected.values())


@pytest.mark.parametrize("version", VERSIONS)
def test_warm_build_is_all_cached_with_hit_ratio_exactly_one(version: str) -> None:
    _, _, r = _report("pipeline-warm-test", version)
    assert [s.name for s in r.stages] == ["base", "build", "test"]
    assert all(s.status == "cached" and s.first_miss is None for s in r.stages)
    assert r.cache.hit_ratio == 1.0


@pytest.mark.parametrize("version", VERSIONS)
def test_cold_build_first_miss_and_status(version: str) -> None:
    _, _, r = _report("pipeline-cold-test", version)
    by = {s.name: s for s in r.stages}
    assert by["test"].status == "built"
    assert by["test"].first_miss == "[test 1/2] COPY tests/ ./tests/"
    assert by["build"].first_miss == "[build 1/2] COPY src/ ./src/"


@pytest.mark.parametrize("version", VERSIONS)
def test_bake_merges_the_copies_of_shared_stages(version: str) -> None:
    _, _, r = _report("pipeline-bake", version)
    by = {s.name: s for s in r.stages}
    assert set(by) == {"base", "build", "lint", "test", "deploy"}
    assert by["build"].steps == 2  # reported under three targets, two steps
    assert by["build"].first_miss == "[build 1/2] COPY src/ ./src/"  # without the bake target word


def test_bake_copies_never_started_do_not_make_a_stage_canceled() -> None:
    # Whether bake leaves copies unstarted is a race; the 0.13 recording shows it.
    text, _, r = _report("pipeline-warm-registry")
    assert "[build build 1/2]" in text  # the build target's own copies: announced ...
    unstarted = [v for v in _vertices(text).values() if v["name"].startswith("[build build") and not v["starts"]]
    assert unstarted  # ... and never started
    assert {s.name: s.status for s in r.stages}["build"] in ("cached", "built")
    assert all(s.status in ("cached", "built") for s in r.stages)


@pytest.mark.parametrize("version", VERSIONS)
def test_failure_names_stage_step_line_and_output(version: str) -> None:
    _, code, r = _report("pipeline-fail-test", version)
    assert code == 1 and r.status == "failed" and r.exit_code == 1
    assert {s.name: s.status for s in r.stages}["test"] == "failed"
    assert r.failure is not None
    assert r.failure.stage == "test"
    assert r.failure.step == "[test 2/2] RUN sh tests/run.sh dist/app"
    assert r.failure.location == "Dockerfile:22"
    assert r.failure.output == ("running tests", "FAIL - greeting is wrong")
    assert "exit code: 4" in r.failure.error
    assert r.tags == ()


@pytest.mark.parametrize("version", VERSIONS)
def test_single_stage_dockerfile_names_have_no_stage(version: str) -> None:
    _, _, r = _report("single-stage", version)
    assert [(s.name, s.steps) for s in r.stages] == [("stage-0", 1)]


def test_expected_stages_with_no_steps_are_skipped_on_failure() -> None:
    text = (STREAMS / "buildx-0.13" / "pipeline-fail-test.rawjson").read_text()
    r = build_report(load_stream(text), exit_code=1, expected=["base", "build", "test", "deploy"])
    assert {s.name: s.status for s in r.stages}["deploy"] == "skipped"


def test_json_report_keys_are_pinned() -> None:
    _, _, r = _report("pipeline-fail-test")
    js = r.to_json()
    assert list(js) == ["schema_version", "id", "status", "exit_code", "duration_s", "attempts", "progress",
                        "stages", "cache", "tags", "pushed", "image", "baseline", "regressions", "overhead",
                        "internal_s", "failure", "warnings", "retries", "retry_stop", "notes"]
    assert js["schema_version"] == 4
    assert (js["id"], js["image"], js["baseline"], js["regressions"]) == (None, None, None, [])  # not compared
    assert [o["category"] for o in js["overhead"]] == ["definition", "context"]  # it failed before any export
    assert list(js["overhead"][0]) == ["category", "duration_s", "steps", "bytes"]
    assert js["progress"] == "ok"
    assert list(js["stages"][0]) == ["name", "status", "steps", "cached_steps", "duration_s", "first_miss",
                                     "started_s", "timeline", "baseline_duration_s", "delta_s", "why"]
    assert list(js["cache"]) == ["steps", "cached_steps", "hit_ratio", "imported_from", "exported_to",
                                 "export_errors"]
    assert list(js["failure"]) == ["stage", "step", "error", "location", "output"]
    json.loads(render_report.json_text(r))


@pytest.mark.parametrize("version", VERSIONS)
def test_markdown_and_trace(version: str) -> None:
    _, _, r = _report("pipeline-bake", version)
    md = render_report.markdown(r)
    assert md.startswith("### ✅ sbuild: success")
    assert "| build | built | 2 |" in md
    tr = render_report.trace(r)
    slices = [e for e in tr["traceEvents"] if e["ph"] == "X" and e["tid"] > 0 and e.get("cat") != "overhead"]
    assert len(slices) == sum(s.steps for s in r.stages)
    outside = [e for e in tr["traceEvents"] if e.get("cat") == "overhead"]
    assert {e["name"] for e in outside} == {o.category.replace("-", " ") for o in r.overhead}
    assert any(e["cat"] == "cached" and e["name"].endswith("(cached)") for e in slices)
    tracks = {e["args"]["name"] for e in tr["traceEvents"] if e.get("name") == "thread_name"}
    assert tracks >= {"base", "build", "lint", "test", "deploy", "outside stages"}
    assert "**Outside the stages:** " in md


@pytest.mark.parametrize("version", VERSIONS)
def test_streaming_in_small_chunks_gives_the_same_model(version: str) -> None:
    text = (STREAMS / version / "pipeline-bake.rawjson").read_text()
    whole = load_stream(text)
    model, splitter = BuildModel(), StreamSplitter()
    for i in range(0, len(text), 7):
        for item in splitter.feed(text[i:i + 7]):
            model.apply_text(item) if isinstance(item, str) else model.apply(item)
    for item in splitter.close():
        model.apply_text(item) if isinstance(item, str) else model.apply(item)
    assert model.events == whole.events
    assert [(s.name, s.cached, s.completed) for s in model.steps.values()] == \
        [(s.name, s.cached, s.completed) for s in whole.steps.values()]


def test_log_memory_is_bounded() -> None:
    digest = "sha256:" + "a" * 64
    model = BuildModel()
    model.apply({"vertexes": [{"digest": digest, "name": "[x 1/1] RUN yes", "started": "2026-01-01T00:00:00Z"}]})
    import base64

    chunk = base64.b64encode(b"y\n" * 1000).decode()
    for _ in range(200):
        model.apply({"logs": [{"vertex": digest, "stream": 1, "data": chunk, "timestamp": "2026-01-01T00:00:01Z"}]})
    model.apply({"logs": [{"vertex": digest, "stream": 1, "data": base64.b64encode(b"z" * 100000).decode()}]})
    step = model.steps[digest]
    assert step.log_lines == 200_000
    assert len(step.logs) == LOG_TAIL_LINES
    assert len(step._partial[1]) <= 4096


@pytest.mark.parametrize("name", ["pipeline-cold-test", "pipeline-warm-test", "pipeline-bake", "single-stage",
                                  "pipeline-2platform-test"])
def test_the_same_build_gives_the_same_report_on_both_pairs(name: str) -> None:
    # The same command on Engine 26.1.5 + buildx 0.13.1 and on Engine 28.5.2 + buildx 0.29.1 (the .cmd files),
    # where the command fixes what is cached (--no-cache, or the rebuild right after it). The others depend on
    # what the engine had cached when they were recorded.
    def shape(version: str) -> list[tuple[str, str, int, int, str | None]]:
        return [(s.name, s.status, s.steps, s.cached_steps, s.first_miss) for s in _report(name, version)[2].stages]

    assert shape("buildx-0.13") == shape("buildx-0.29")


@pytest.mark.parametrize("shape", ["indented", "compact", "spaced"])
def test_both_stream_shapes_and_any_white_space_between_objects(shape: str) -> None:
    objs = json_objects((STREAMS / "buildx-0.13" / "pipeline-cold-test.rawjson").read_text())
    sep = {"indented": None, "compact": "\n", "spaced": " \r\n\n  "}[shape]
    if sep is None:
        text = "".join(json.dumps(o, indent=2) + "\n" for o in objs)
    else:
        text = sep.join(json.dumps(o, separators=(",", ":")) for o in objs) + "\n"
    text = "#0 building with \"default\" instance\n" + text + "ERROR: done\n"
    model = load_stream(text)
    assert model.events == load_stream((STREAMS / "buildx-0.13" / "pipeline-cold-test.rawjson").read_text()).events
    assert list(model.text) == ['#0 building with "default" instance', "ERROR: done"]
    assert model.unread == 0


def test_text_that_runs_into_a_compact_object_is_recovered() -> None:
    obj = {"vertexes": [{"digest": "sha256:1", "name": "[a 1/1] RUN x", "started": "2026-01-01T00:00:00Z"}]}
    model = load_stream("some text" + json.dumps(obj) + "\n")
    assert list(model.text) == ["some text"] and "sha256:1" in model.steps


def test_a_stream_sbuild_cannot_read_reports_unknown_never_cached() -> None:
    # A shape sbuild does not know: JSON-looking lines it cannot read. The build succeeded.
    text = "".join('{"vertexes"; [' + str(i) + "]}\n" for i in range(20))
    model = load_stream(text)
    assert model.events == 0 and model.unread == 20
    r = build_report(model, exit_code=0, expected=["base", "build", "test"])
    assert r.progress == "unreadable"
    assert [(s.name, s.status) for s in r.stages] == [("base", "unknown"), ("build", "unknown"), ("test", "unknown")]
    assert r.cache.hit_ratio is None
    assert r.to_json()["progress"] == "unreadable"


def test_a_build_that_failed_before_any_progress_is_not_unreadable() -> None:
    model = load_stream("unknown flag: --bogus\nSee 'docker buildx build --help'.\n")
    r = build_report(model, exit_code=125, expected=["test"])
    assert r.progress == "ok" and [(s.name, s.status) for s in r.stages] == [("test", "skipped")]


def _status_spans(text: str) -> dict[str, list[tuple[str, float, float, int]]]:
    """vertex name -> [(status id, started, completed, current)], as last reported, from the raw objects."""
    names: dict[str, str] = {}
    last: dict[tuple[str, str], dict] = {}
    for obj in json_objects(text):
        for v in obj.get("vertexes") or ():
            names[v["digest"]] = v["name"]
        for st in obj.get("statuses") or ():
            last[(st["vertex"], st["id"])] = st
    out: dict[str, list[tuple[str, float, float, int]]] = {}
    for (vx, sid), st in last.items():
        if st.get("started") and st.get("completed"):
            out.setdefault(names[vx], []).append((sid, _ts(st["started"]), _ts(st["completed"]), st.get("current", 0)))
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_time_outside_the_stages_by_category_checked_against_the_step_list(version: str) -> None:
    # A build that imports cache, rebuilds after a source change, exports the image, pushes it and exports
    # its cache (mode=max) to the local registry; see the recording's .cmd.
    text, _, r = _report("pipeline-push-cache", version)
    vertices = {v["name"]: v for v in _vertices(text).values()}
    spans = _status_spans(text)

    def step_time(prefix: str) -> float:
        return sum(v["completed"] - min(v["starts"]) for n, v in vertices.items() if n.startswith(prefix))

    by = {o.category: o for o in r.overhead}
    assert set(by) == {"definition", "context", "cache-import", "cache-export", "export", "push"}
    assert by["definition"].steps == 3  # load build definition, load metadata, load .dockerignore
    assert by["context"].steps == 1 and by["cache-import"].steps == 1 and by["cache-export"].steps == 1
    assert by["cache-import"].duration_s == pytest.approx(step_time("importing cache manifest"), abs=0.002)
    assert by["cache-export"].duration_s == pytest.approx(step_time("exporting cache"), abs=0.002)
    # Pushing is statuses inside "exporting to image" ("pushing layers", "pushing manifest for …"): their time
    # is push, the rest of the step export. Engine 26 also has a step "pushing <ref>" of its own.
    inside = _busy([(a, b) for sid, a, b, _ in spans["exporting to image"] if sid.startswith("pushing ")])
    own = [(min(v["starts"]), v["completed"]) for n, v in vertices.items() if n.startswith("pushing ")]
    pushes = [(a, b) for sid, a, b, _ in spans["exporting to image"] if sid.startswith("pushing ")] + own
    assert inside > 0 or own
    assert by["push"].duration_s == pytest.approx(_busy(pushes), abs=0.002)
    assert by["push"].steps == (1 if inside else 0) + len(own)
    assert by["export"].duration_s == pytest.approx(step_time("exporting to image") - inside, abs=0.002)
    # The bytes BuildKit reports: the context it transferred.
    sent = sum(cur for sid, _, _, cur in spans["[internal] load build context"] if sid == "transferring context:")
    assert by["context"].bytes == sent > 0
    assert by["push"].bytes is None  # BuildKit reported no byte counts for this push (current 0)
    line = render_report.terminal(r).splitlines()
    largest = max(r.overhead, key=lambda o: o.duration_s)
    assert line[-2].endswith(f"· {largest.category.replace('-', ' ')} {largest.duration_s:.1f}s")
    assert line[-1].startswith("outside stages: " + largest.category.replace("-", " "))


def test_overlapping_steps_of_one_category_count_once() -> None:
    from sbuild.overhead import length, subtract, union

    assert union([(0, 2), (1, 3), (5, 6), (6, 7)]) == [(0, 3), (5, 7)]
    assert length(union([(0, 2), (1, 3), (5, 6)])) == 4
    assert subtract([(0, 10)], [(2, 3), (5, 6)]) == [(0, 2), (3, 5), (6, 10)]
    assert subtract([(0, 3)], [(0, 3)]) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_every_stage_is_reported_for_every_platform(version: str) -> None:
    # examples/pipeline for linux/amd64 and linux/386 (the recording's .cmd): BuildKit runs each step once per
    # platform, so the report counts both, and gives each stage a row per platform.
    text, _, r = _report("pipeline-2platform-test", version)
    ran = {v["name"] for v in _vertices(text).values() if NAME.match(v["name"]) and " FROM " not in v["name"]
           and not NAME.match(v["name"]).group("instr").startswith("FROM ")}
    assert len(ran) == 12 and r.cache.steps == 12  # BuildKit's own step list: 6 steps x 2 platforms
    for st in r.stages:
        assert [p.platform for p in st.platforms] == ["linux/386", "linux/amd64"]
        assert sum(p.steps for p in st.platforms) == st.steps
        assert sum(p.cached_steps for p in st.platforms) == st.cached_steps
        for p in st.platforms:  # a platform's first miss is one of its own steps
            assert p.first_miss is None or p.first_miss.startswith(f"[{p.platform} {st.name} ")
    js = r.to_json()
    assert list(js["stages"][0]["platforms"][0]) == ["platform", "status", "steps", "cached_steps", "duration_s",
                                                    "first_miss"]
    table = render_report.terminal(r).splitlines()
    assert table[1].startswith("base ") and table[2].lstrip().startswith("linux/386") and \
        table[3].lstrip().startswith("linux/amd64")
    assert "| ↳ linux/386 |" in render_report.markdown(r)
    tracks = {e["args"]["name"] for e in render_report.trace(r)["traceEvents"] if e.get("name") == "thread_name"}
    assert {"test linux/386", "test linux/amd64", "base linux/386"} <= tracks


def test_a_single_platform_build_has_no_platforms_key() -> None:
    _, _, r = _report("pipeline-cold-test")
    assert all(st.platforms == () for st in r.stages)
    assert all("platforms" not in st for st in r.to_json()["stages"])


@pytest.mark.parametrize("version", VERSIONS)
def test_every_stage_shows_built_once_each_last_step_completed_and_never_in_a_failed_build(version: str) -> None:
    # sbuild names the deploy image while bake winds down once this is true (build._name_early): not before
    # the last of the targets' final steps completed, not while any step still runs, never after a failure.
    from sbuild.progress import stages_built

    objects = json_objects((STREAMS / version / "pipeline-bake.rawjson").read_text())  # lint, test, deploy
    finals = {"[lint lint 1/1]", "[test test 2/2]", "[deploy deploy 1/1]"}
    completions = [(i, " ".join(v["name"].split()[:3])) for i, o in enumerate(objects)
                   for v in o.get("vertexes") or () if v.get("completed")]
    model = BuildModel()
    every, some = [], []
    for o in objects:
        model.apply(o)
        every.append(stages_built(model, frozenset({"lint", "test", "deploy"})))
        some.append(stages_built(model, frozenset({"lint", "deploy"})))
    assert every.index(True) == max(i for i, name in completions if name in finals)
    # lint and deploy are built before test's last step ends: still running, so not yet
    assert max(i for i, name in completions if name in finals - {"[test test 2/2]"}) < some.index(True)
    assert some.index(True) == completions[-1][0]
    assert not stages_built(model, frozenset({"lint", "test", "deploy", "static-analysis"}))  # not in this bake
    failed = load_stream((STREAMS / version / "pipeline-fail-test.rawjson").read_text())
    assert any(s.error and s.stage == "test" and s.index == s.total for s in failed.steps.values())
    assert not stages_built(failed, frozenset({"test"}))  # test's last step completed, with an error
    assert not stages_built(failed, frozenset({"build"}))  # build passed, but a step of the session failed
