"""The whole command, in-process, against a fake `docker` on PATH (tests/fakedocker/docker) that records
each call and replays a stream recorded from the real engine. Real command-line shapes from the drop-in
issue: contexts named like commands, a lower-case dockerfile, buildx's exit codes, the summary opt-out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sbuild import cli, installed

from .helpers import DATA, Fake, _pipeline

# -- contexts named like commands ---------------------------------------------------------------------

@pytest.mark.parametrize("word", cli.COMMANDS)
def test_a_directory_named_like_a_command_is_the_build_context(word: str, fake: Fake,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    # `docker build build -t emu` (a repository that keeps build/Dockerfile) must mean the same under sbuild.
    _pipeline(Path(word))
    assert cli.main([word, "--target", "test"]) == 0
    [call] = fake.builds()
    assert call["argv"][-2:] == ["--", word]
    assert "--target=test" in call["argv"]


@pytest.mark.parametrize("word", cli.COMMANDS)
def test_sbuildctl_reaches_every_command_whatever_directories_are_here(word: str, fake: Fake,
                                                                        capsys: pytest.CaptureFixture[str],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for w in cli.COMMANDS:
        Path(w).mkdir()
    _pipeline(Path("app"))
    args = {"build": ["build", "--target", "test", "app"], "stages": ["stages", "app"], "version": ["version"],
            "warm": ["warm", "--cache-dir", "cache", "app"], "history": ["history", "--all", "--json"],
            "diff": ["diff", "-f", "app/Dockerfile", "--json"],
            "explain": ["explain", "-f", "app/Dockerfile", "--json"],
            "cache": ["cache", "ls", "--cache-dir", "app", "--json"], "doctor": ["doctor", "--json", "app"]}[word]
    if word == "doctor":  # no engine for the fast tests: doctor says so, and exits 1
        monkeypatch.setenv("DOCKER_HOST", f"unix://{Path.cwd()}/no-engine.sock")
    if word == "warm":
        fake.stream("buildx-0.13/pipeline-bake-all")
    if word in ("diff", "explain"):  # two builds of the test stage: the second is compared with the first
        for _ in range(2):
            assert cli.ctl_main(["build", "--target", "test", "app"]) == 0
        capsys.readouterr()
    assert cli.ctl_main(args) == (1 if word == "doctor" else 0), capsys.readouterr().err
    out = capsys.readouterr().out
    builds = fake.builds()
    if word == "stages":
        assert out.startswith("STAGE") and "static-analysis" in out and builds == []
    elif word == "version":
        assert out.startswith("sbuild ") and builds == []
    elif word == "build":
        assert [c["argv"][-1] for c in builds] == ["app"]
    elif word == "history":
        assert json.loads(out) == {"schema_version": 1, "project": None, "builds": []} and builds == []
    elif word == "cache":
        assert json.loads(out)["entries"] == [] and builds == []
    elif word == "doctor":
        d = json.loads(out)
        failed = [c["name"] for c in d["checks"] if not c["ok"]]
        assert d["ok"] is False and "engine" in failed and builds == []
    elif word == "explain":
        d = json.loads(out)
        assert list(d) == ["schema_version", "id", "status", "baseline", "stages"] and len(builds) == 2
    elif word == "diff":
        d = json.loads(out)
        assert [s["name"] for s in d["stages"]] == ["base", "build", "test"] and len(builds) == 2
        assert d["a"]["id"] != d["b"]["id"] and all(s["delta_s"] == 0.0 for s in d["stages"])
    else:
        assert builds and all("--progress=rawjson" in c["argv"] for c in builds)


def test_without_such_a_directory_the_word_is_the_command(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    _pipeline(Path("app"))
    assert cli.main(["stages", "app"]) == 0
    assert capsys.readouterr().out.startswith("STAGE")
    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out.startswith("sbuild ")
    assert cli.main(["build", "--target", "test", "app"]) == 0
    assert [c["argv"][-1] for c in fake.builds()] == ["app"]


def test_sbuildctl_refuses_an_unknown_command(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.ctl_main(["bogus"]) == 2
    assert capsys.readouterr().err == ('error: unknown command "bogus": use one of build, cache, diff, doctor, '
                                       'explain, history, stages, version, warm\n')


# -- the Dockerfile buildx would read -----------------------------------------------------------------

def test_a_lower_case_dockerfile_is_read_as_buildx_reads_it(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = _pipeline(Path("app"))
    (ctx / "Dockerfile").rename(ctx / "dockerfile")
    fake.stream("buildx-0.13/pipeline-bake")
    assert cli.main(["--stage", "lint,test", "app"]) == 0, capsys.readouterr().err
    [call] = fake.builds()
    targets = call["bake"]["target"]
    assert {t["dockerfile"] for t in targets.values()} == {str((ctx / "dockerfile").resolve())}
    assert cli.main(["stages", "app"]) == 0
    assert "static-analysis" in capsys.readouterr().out


def test_a_capitalised_dockerfile_wins_over_a_lower_case_one(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = _pipeline(Path("app"))
    (ctx / "dockerfile").write_text("FROM scratch AS only\n")
    assert cli.main(["stages", "app", "--json"]) == 0
    names = [s["name"] for s in json.loads(capsys.readouterr().out)["stages"]]
    assert "static-analysis" in names and "only" not in names


# -- exit codes: buildx's for what buildx refuses, sbuild's 2 for its own -------------------------------

@pytest.mark.parametrize(("argv", "code", "first_line"), [
    # buildx 0.13.1 and 0.29.1, measured: `docker buildx build ARGV` (see integration/test_dropin.py).
    (["nope"], 1, 'ERROR: unable to prepare context: path "nope" not found'),
    (["-f", "app/Nope", "app"], 1, "ERROR: failed to read dockerfile: open app/Nope: no such file or directory"),
    (["app", "app"], 1, 'ERROR: "sbuild" requires at most 1 argument (PATH | URL | -), got 2: app app'),
    (["--progress=bogus", "app"], 1, "ERROR: invalid progress mode bogus"),
    (["-t", "", "app"], 1, 'ERROR: invalid tag "": repository name must have at least one component'),
    (["-t", "App:1", "app"], 1, 'ERROR: invalid tag "App:1": repository name must be lowercase'),
    (["--bogus", "app"], 125, "unknown flag: --bogus"),
    (["--pull=maybe", "app"], 125, 'invalid argument "maybe" for "--pull" flag: strconv.ParseBool: parsing "maybe": '
                                   "invalid syntax"),
    (["--call=check", "app"], 125, "unknown flag: --call"),  # buildx 0.13 has no --call
    (["--stage", "tset", "app"], 2, 'error: no stage "tset"'),
    (["--stage", "test", "--target", "lint", "app"], 2, "error: --stage and --target cannot be used together"),
    (["--retry-timeout", "soon", "app"], 2, 'error: invalid --retry-timeout "soon"'),
    (["--stage"], 2, "error: flag needs an argument: --stage"),
])
def test_usage_errors_exit_as_buildx_would_before_anything_runs(
        argv: list[str], code: int, first_line: str, fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    _pipeline(Path("app"))
    assert cli.main(argv) == code
    assert capsys.readouterr().err.splitlines()[0].startswith(first_line)
    assert fake.builds() == []


def test_newer_flags_pass_through_where_the_installed_buildx_has_them(fake: Fake,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _pipeline(Path("app"))
    fake.buildx("0.29")
    fake.stream("buildx-0.29/pipeline-check")  # recorded: docker buildx build --call=check (see its .cmd)
    assert cli.main(["--call=check", "-D", "app"]) == 0, capsys.readouterr().err
    [call] = fake.builds()
    assert "--call=check" in call["argv"] and "--debug" in call["argv"]
    assert "STAGE" not in capsys.readouterr().err  # an evaluation: no stage table
    helps = [c for c in fake.calls() if "--help" in c["argv"]]
    assert len(helps) == 1
    installed._memo = None  # a new sbuild process: the flag set comes from the cache, no --help again
    assert cli.main(["--call=check", "app"]) == 0
    assert len([c for c in fake.calls() if "--help" in c["argv"]]) == 1


def test_the_build_exit_code_is_buildx_s(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    _pipeline(Path("app"))
    fake.stream("buildx-0.13/pipeline-fail-test")
    assert cli.main(["--target", "test", "app"]) == 1
    err = capsys.readouterr().err
    assert "failed: stage test at [test 2/2] RUN sh tests/run.sh dist/app (Dockerfile:22)" in err
    fake.stream("buildx-0.13/pipeline-warm-test", exit_code=17)
    assert cli.main(["--target", "test", "app"]) == 17


# -- the GitHub step summary -------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "written"), [({}, True), ({"DOCKER_BUILD_SUMMARY": "false"}, False),
                                              ({"SBUILD_SUMMARY": "false"}, False), ({"SBUILD_SUMMARY": "0"}, False),
                                              ({"DOCKER_BUILD_SUMMARY": "true"}, True)])
def test_the_step_summary_has_the_opt_out_of_build_push_action(env: dict[str, str], written: bool, fake: Fake,
                                                               tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    _pipeline(Path("app"))
    summary = tmp_path / "step-summary.md"
    fake.mp.setenv("GITHUB_STEP_SUMMARY", str(summary))
    for k, v in env.items():
        fake.mp.setenv(k, v)
    assert cli.main(["--target", "test", "app"]) == 0
    assert summary.exists() == written
    if written:
        assert summary.read_text().startswith("### ✅ sbuild: success")


def test_recorded_help_is_what_the_fake_answers() -> None:
    # The fake's answers are the real recordings, not texts of its own.
    assert (DATA / "buildx-0.29-build-help.txt").read_text().count("--call") == 2


def test_a_progress_stream_sbuild_cannot_read_is_said_and_reported_never_cached(
        fake: Fake, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A future buildx with another envelope: the recorded 0.29 stream, each event nested under a new key.
    recorded = DATA / "streams" / "buildx-0.29" / "pipeline-warm-test"
    framed = tmp_path / "framed"
    lines = recorded.with_name(recorded.name + ".rawjson").read_text().splitlines()
    framed.with_name("framed.rawjson").write_text(
        "".join(json.dumps({"type": "progress", "data": json.loads(ln)}) + "\n" for ln in lines))
    shutil.copy(recorded.with_name(recorded.name + ".cmd"), framed.with_name("framed.cmd"))
    fake.stream(str(framed))
    _pipeline(Path("app"))
    r = tmp_path / "r.json"
    assert cli.main(["--target", "test", "--report", str(r), "app"]) == 0  # buildx's exit code, kept
    err = capsys.readouterr().err
    assert err.count("sbuild: warning: could not read buildx's progress stream") == 1
    rep = json.loads(r.read_text())
    assert rep["progress"] == "unreadable"
    assert [(s["name"], s["status"]) for s in rep["stages"]] == [("base", "unknown"), ("build", "unknown"),
                                                                 ("test", "unknown")]
    assert rep["cache"]["hit_ratio"] is None


# -- the build paths, whole ---------------------------------------------------------------------------

def test_several_stages_with_deploy_then_the_image_and_every_output_file(fake: Fake, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    # One bake session for the stages, deploy's image in it unnamed; no engine here to name it afterwards,
    # so a second, cached build makes the named image: the two calls.
    _pipeline(Path("app"))
    fake.stream("buildx-0.13/pipeline-bake,buildx-0.13/pipeline-warm-test")
    out = {k: tmp_path / f"out.{k}" for k in ("json", "md", "trace")}
    secret = "hunter2-" + "x" * 8
    argv = ["--stage", "lint,test,deploy", "-t", "app:1", "--build-arg", f"GITHUB_TOKEN={secret}",
            "--report", str(out["json"]), "--summary", str(out["md"]), "--trace", str(out["trace"]), "app"]
    fake.mp.setenv("SBUILD_LOG", "debug")
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    bake, final = fake.builds()
    assert bake["argv"][:2] == ["buildx", "bake"] and set(bake["bake"]["target"]) == {"lint", "test", "deploy"}
    assert bake["via"] == final["via"] == "plugin"  # buildx run standalone, not through the docker CLI
    outputs = {n: t["output"] for n, t in bake["bake"]["target"].items()}
    assert outputs == {"lint": ["type=cacheonly"], "test": ["type=cacheonly"], "deploy": ["type=docker"]}
    assert not any("tags" in t for t in bake["bake"]["target"].values())  # no name before every stage passed
    assert final["argv"][:2] == ["buildx", "build"] and "--tag=app:1" in final["argv"]
    assert "--target=deploy" in final["argv"]
    assert 'every stage passed: now the deploy stage "deploy" image (tags, push)' in err
    rep = json.loads(out["json"].read_text())
    assert rep["tags"] == ["app:1"] and rep["status"] == "success"
    assert out["md"].read_text().startswith("### ✅ sbuild: success")
    assert json.loads(out["trace"].read_text())["traceEvents"]
    # The secret reached buildx (it must) but none of sbuild's own outputs, the debug log included.
    assert secret in " ".join(bake["bake"]["target"]["lint"]["args"].values())
    for text in (err, *(p.read_text() for p in out.values())):
        assert secret not in text
    assert "run: " in err and "GITHUB_TOKEN=****" in err


def test_a_transient_failure_is_retried_then_succeeds(fake: Fake, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # Two real recordings: a pull that met a 503 (pull-503), then a good build.
    _pipeline(Path("app"))
    fake.stream("buildx-0.13/pull-503,buildx-0.13/pipeline-warm-test")
    r = tmp_path / "r.json"
    assert cli.main(["--target", "test", "--retry-wait", "0.01", "--report", str(r), "app"]) == 0
    rep = json.loads(r.read_text())
    assert rep["attempts"] == 2 and rep["retry_stop"] == "succeeded"
    assert rep["retries"][0]["phase"] == "metadata" and rep["retries"][0]["reason"].startswith("server error")
    assert "sbuild: attempt 1 of 4 failed (metadata: server error" in capsys.readouterr().err


def test_the_live_view_on_a_terminal_mode(fake: Fake, capsys: pytest.CaptureFixture[str]) -> None:
    _pipeline(Path("app"))
    fake.stream("buildx-0.13/pipeline-fail-test")
    assert cli.main(["--progress=tty", "--target", "test", "app"]) == 1
    err = capsys.readouterr().err
    assert "FAIL - greeting is wrong" in err  # the failing step's output, shown after the live view
    assert "failed: stage test at [test 2/2] RUN sh tests/run.sh dist/app" in err


def test_no_docker_cli_is_127(fake: Fake, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _pipeline(Path("app"))
    fake.mp.setenv("PATH", str(tmp_path / "nothing"))
    assert cli.main(["app"]) == 127
    assert capsys.readouterr().err.startswith("error: docker CLI not found on PATH")


@pytest.mark.parametrize(("sig", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_during_the_build_stops_buildx_and_exits_128_plus_it(sig: str, code: int, fake: Fake, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import os
    import signal
    import threading

    _pipeline(Path("app"))
    fake.mp.setenv("FAKE_DOCKER_SLEEP", "10")  # buildx still running when the signal comes
    r = tmp_path / "r.json"
    stop = threading.Event()

    def signal_once_buildx_runs() -> None:
        # Only once the fake runs and sbuild forwards signals to it (its handler is installed): a SIGTERM that
        # found no handler would end the test process itself.
        signum = getattr(signal, sig)
        while not stop.wait(0.02):
            handler = signal.getsignal(signum)
            if fake.builds() and callable(handler) and getattr(handler, "__name__", "") == "forward":
                os.kill(os.getpid(), signum)
                return

    sender = threading.Thread(target=signal_once_buildx_runs, daemon=True)
    sender.start()
    try:
        assert cli.main(["--target", "test", "--report", str(r), "app"]) == code
    finally:
        stop.set()
        sender.join(timeout=5)
    assert json.loads(r.read_text())["status"] == "canceled"  # the report is whole
    assert f"interrupted by {sig}" in capsys.readouterr().err


def test_a_closed_output_pipe_is_141(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    class Closed:
        def write(self, _: str) -> int:
            raise BrokenPipeError

        def flush(self) -> None:
            raise BrokenPipeError

    monkeypatch.setattr("sys.stdout", Closed())
    assert cli.main(["version"]) == 141
