"""process: diagnose on what docker really prints when it cannot build (messages seen on this machine), and
run_build against a real child process."""

from __future__ import annotations

import os

import pytest

from sbuild import process
from sbuild.errors import BuildxMissing, DaemonUnreachable


def test_buildx_plugin_missing() -> None:
    # docker 28.2.2 without the buildx plugin (this machine before scripts/setup-engine)
    err = process.diagnose(1, "docker: unknown command: docker buildx\n\nRun 'docker --help' for more information")
    assert isinstance(err, BuildxMissing) and err.exit_code == 127
    assert "scripts/setup-engine" in err.message
    # older clients
    assert isinstance(process.diagnose(1, "docker: 'buildx' is not a docker command."), BuildxMissing)


def test_daemon_unreachable_names_the_address(monkeypatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/x.sock")
    err = process.diagnose(1, "ERROR: Cannot connect to the Docker daemon at unix:///tmp/x.sock. Is the docker "
                              "daemon running?")
    assert isinstance(err, DaemonUnreachable)
    assert "unix:///tmp/x.sock" in err.message and "DOCKER_HOST" in err.message


def test_other_failures_are_the_builds_own() -> None:
    assert process.diagnose(1, 'ERROR: failed to solve: process "/bin/sh -c false" did not complete') is None


# run_build against a real child: a shell script standing in for the buildx plugin, found where the docker
# CLI finds it, and run standalone (what it does is the test's). The `docker` beside it must not be run.

def _docker(tmp_path, monkeypatch, script: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    _exe(bin_dir / "docker", "echo 'the docker CLI ran' >&2; exit 99\n")
    config = tmp_path / "docker-config"
    _exe(config / "cli-plugins" / "docker-buildx", script)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("DOCKER_CONFIG", str(config))


def _exe(path, script: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return path


def _run(on_chunk=None):
    from sbuild.mask import Masker

    got: list[str] = []

    def spawned():
        def on_output(chunk: str) -> None:
            got.append(chunk)
            if on_chunk is not None:
                on_chunk("".join(got))
        return on_output

    return process.run_build(["x"], spawned, masker=Masker()), "".join(got)


def test_run_build_streams_stderr_and_keeps_the_exit_code(tmp_path, monkeypatch) -> None:
    _docker(tmp_path, monkeypatch, 'echo "args: $*" >&2\nprintf "\\303\\251t\\303" >&2\nexit 3\n')
    result, text = _run()
    assert result == process.BuildResult(3)
    assert text == "args: build x\nét\ufffd"  # split UTF-8 decoded whole, a cut one replaced


def test_the_plugin_is_found_where_the_docker_cli_looks_first(tmp_path, monkeypatch) -> None:
    # docker/cli's getPluginDirs: the config's cliPluginsExtraDirs, then $DOCKER_CONFIG/cli-plugins, then the
    # system directories.
    import json

    _docker(tmp_path, monkeypatch, "exit 0\n")
    config = tmp_path / "docker-config"
    assert process.plugin_path() == str(config / "cli-plugins" / "docker-buildx")
    extra = _exe(tmp_path / "extra" / "docker-buildx", "exit 0\n")
    (config / "config.json").write_text(json.dumps({"cliPluginsExtraDirs": [str(tmp_path / "none"),
                                                                             str(extra.parent)]}))
    assert process.plugin_path() == str(extra)
    assert process.plugin_dirs()[:3] == [str(tmp_path / "none"), str(extra.parent), str(config / "cli-plugins")]
    (config / "config.json").write_text("{not json")  # the CLI warns and looks in the other places
    assert process.plugin_path() == str(config / "cli-plugins" / "docker-buildx")


def test_the_plugin_runs_standalone_even_when_a_plugin_ran_sbuild(tmp_path, monkeypatch) -> None:
    # Set, it makes buildx run as the docker CLI's child (plugin mode), whose CLI is not there.
    monkeypatch.setenv("DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND", "/usr/bin/docker")
    _docker(tmp_path, monkeypatch, 'echo "[$DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND] $*" >&2\n')
    _, text = _run()
    assert text == "[] build x\n"


def test_without_a_plugin_where_the_cli_looks_docker_buildx_runs(tmp_path, monkeypatch) -> None:
    # A docker CLI with buildx built in, or a shim: sbuild runs `docker buildx` as before.
    monkeypatch.setattr(process, "SYSTEM_PLUGIN_DIRS", ())
    _docker(tmp_path, monkeypatch, "exit 0\n")
    (tmp_path / "docker-config" / "cli-plugins" / "docker-buildx").unlink()
    _exe(tmp_path / "bin" / "docker", 'echo "docker $*" >&2\n')
    assert _run() == (process.BuildResult(0), "docker buildx build x\n")


def test_no_docker_cli_is_still_docker_not_found(tmp_path, monkeypatch) -> None:
    from sbuild.errors import DockerNotFound

    _docker(tmp_path, monkeypatch, "exit 0\n")
    (tmp_path / "bin" / "docker").unlink()
    with pytest.raises(DockerNotFound):
        _run()


def test_sigpipe_is_a_child_s_default_again(tmp_path, monkeypatch) -> None:
    # Python ignores SIGPIPE; a child must not inherit that (subprocess's restore_signals does the same).
    _docker(tmp_path, monkeypatch, 'grep SigIgn /proc/$$/status >&2\n')
    _, text = _run()
    ignored = int(text.split()[-1], 16)
    assert not ignored & (1 << (13 - 1)), text  # bit 13-1: SIGPIPE


def test_a_signal_is_forwarded_to_buildx_and_reported(tmp_path, monkeypatch) -> None:
    import signal

    _docker(tmp_path, monkeypatch, "trap 'echo got TERM >&2; exit 143' TERM\necho ready >&2\n"
                                   "sleep 5 & wait\n")

    def on_chunk(text: str) -> None:
        if text == "ready\n":
            os.kill(os.getpid(), signal.SIGTERM)  # sbuild's handler forwards it to buildx's group

    result, text = _run(on_chunk)
    assert result == process.BuildResult(143, signal.SIGTERM)
    assert text.endswith("got TERM\n")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # sbuild's handler is gone again


def test_buildx_that_ignores_the_signal_is_killed_after_the_grace(tmp_path, monkeypatch, capsys) -> None:
    import signal

    monkeypatch.setattr(process, "CANCEL_GRACE_S", 0.3)
    _docker(tmp_path, monkeypatch, "trap '' TERM\necho ready >&2\nexec sleep 5\n")

    def on_chunk(text: str) -> None:
        if text == "ready\n":
            os.kill(os.getpid(), signal.SIGTERM)

    result, _ = _run(on_chunk)
    assert result == process.BuildResult(-signal.SIGKILL, signal.SIGTERM)
    assert "buildx did not stop within 0 s of SIGTERM; killing it" in capsys.readouterr().err


def test_a_failure_in_sbuild_ends_buildx_too(tmp_path, monkeypatch) -> None:
    pidfile = tmp_path / "pid"
    _docker(tmp_path, monkeypatch, f"echo $$ > {pidfile}\necho ready >&2\nexec sleep 5\n")

    def on_chunk(text: str) -> None:
        raise RuntimeError("a defect in a renderer")

    with pytest.raises(RuntimeError):
        _run(on_chunk)
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):  # gone and reaped: no zombie, no orphan
        os.kill(pid, 0)


def test_query_values_are_percent_encoded_as_urllib_does() -> None:
    from urllib.parse import quote

    for value in ("registry.example:5000/team/app", "v1.2_3-x~y", "a b&c=d", "é"):
        assert process._query(value) == quote(value, safe="")


def test_engine_json_soon_without_an_engine_gives_none(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    process.engine_json_soon("/images/x/json")
    assert process.engine_json("/images/x/json", timeout=5) is None
    assert "/images/x/json" not in process._soon  # taken once


def test_a_short_command_s_output_exit_code_and_deadline(tmp_path) -> None:
    # What the history runs git with, beside the build (process._output: posix_spawn and a pipe).
    import time

    assert process._output(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], 5) == (3, "out\n")  # stderr dropped
    assert process._output([str(tmp_path / "missing")], 5) is None
    started = time.monotonic()
    assert process._output(["/bin/sh", "-c", "echo partial; exec sleep 30"], 0.3) is None  # killed at the deadline
    assert time.monotonic() - started < 5
    subdir = tmp_path / "repo"
    subdir.mkdir()
    os.system(f"git init -q -b trunk {subdir}")
    assert process.git(["symbolic-ref", "--short", "HEAD"], str(subdir)) == "trunk"  # runs in cwd (git -C)
    assert process.git(["rev-parse", "HEAD"], str(subdir)) is None  # no commit yet: git fails


def test_a_kept_engine_answer_is_read_again_without_a_second_request(monkeypatch, tmp_path) -> None:
    # -q's image ID and the record's image facts read one answer about the deploy image (build._take_id).
    import socket
    import threading

    sock_path = str(tmp_path / "engine.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(4)
    requests: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                requests.append(conn.recv(4096).split(b"\r\n", 1)[0])
                conn.sendall(b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"Id": "sha256:ab"}')

    threading.Thread(target=serve, daemon=True).start()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock_path}")
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    try:
        assert process.engine_json("/images/x/json", keep=True) == {"Id": "sha256:ab"}
        assert process.engine_json("/images/x/json") == {"Id": "sha256:ab"}  # the kept answer, taken
        assert requests == [b"GET /images/x/json HTTP/1.0"]
        assert process.engine_json("/images/x/json") == {"Id": "sha256:ab"}  # taken: asked again
        assert len(requests) == 2
    finally:
        server.close()
