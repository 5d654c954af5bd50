"""sbuild as a drop-in `docker buildx build`, on the real engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import BASE_IMAGE, EXAMPLE, docker, inspect, sbuild, sbuild_cmd

pytestmark = pytest.mark.usefixtures("engine")


def _same_image(a: str, b: str) -> None:
    ia, ib = inspect(a), inspect(b)
    assert ia["Config"]["Labels"] == ib["Config"]["Labels"]
    assert ia["Config"]["Env"] == ib["Config"]["Env"]
    assert ia["Config"]["Cmd"] == ib["Config"]["Cmd"]
    assert ia["Config"]["Entrypoint"] == ib["Config"]["Entrypoint"]
    assert ia["RootFS"]["Layers"] == ib["RootFS"]["Layers"]


def test_same_flags_same_image_as_buildx(tag_prefix: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE} AS base\nARG GREETING=hi\nENV GREETING=$GREETING\nRUN echo $GREETING > /g\n"
        "FROM base AS test\nRUN cat /g\nFROM base AS deploy\nCMD [\"cat\", \"/g\"]\n")
    flags = ["--target", "test", "--label", "org.example.team=ci", "--build-arg", "GREETING=hello",
             "--label=two=2"]
    docker("buildx", "build", *flags, "-t", f"{tag_prefix}:buildx", "--load", str(tmp_path))
    cp = sbuild(*flags, "-t", f"{tag_prefix}:sbuild", "--tag", f"{tag_prefix}:second", "--load", str(tmp_path))
    assert cp.returncode == 0, cp.stderr
    _same_image(f"{tag_prefix}:buildx", f"{tag_prefix}:sbuild")
    img = inspect(f"{tag_prefix}:sbuild")
    assert img["Config"]["Labels"]["org.example.team"] == "ci"
    assert "GREETING=hello" in img["Config"]["Env"]
    assert set(img["RepoTags"]) >= {f"{tag_prefix}:sbuild", f"{tag_prefix}:second"}
    # --target test: the deploy stage's CMD is not in the image
    assert img["Config"]["Cmd"] != ["cat", "/g"]
    # plain progress shows the steps, as buildx's plain mode does
    assert "[base 3/3] RUN echo $GREETING > /g" in cp.stderr or "[base 2/2]" in cp.stderr


def test_failing_run_keeps_buildx_exit_code_and_output(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nRUN echo about-to-fail-$((6*7)) && exit 3\n")
    plain = docker("buildx", "build", "--no-cache", str(tmp_path), check=False)
    cp = sbuild("--no-cache", str(tmp_path))
    assert plain.returncode != 0
    assert cp.returncode == plain.returncode
    assert "about-to-fail-42" in cp.stderr
    assert "did not complete successfully: exit code: 3" in cp.stderr
    assert "Traceback" not in cp.stderr


def test_quiet_prints_only_the_image_id(tag_prefix: str) -> None:
    cp = sbuild("-q", "-t", f"{tag_prefix}:q", str(EXAMPLE))
    assert cp.returncode == 0, cp.stderr
    assert cp.stderr == ""
    image_id = cp.stdout.strip()
    assert image_id.startswith("sha256:") and "\n" not in image_id
    assert inspect(f"{tag_prefix}:q")["Id"] == image_id


def test_iidfile_and_metadata_file(tag_prefix: str, tmp_path: Path) -> None:
    iid, meta = tmp_path / "iid", tmp_path / "meta.json"
    cp = sbuild("--iidfile", str(iid), "--metadata-file", str(meta), "-t", f"{tag_prefix}:m", str(EXAMPLE))
    assert cp.returncode == 0, cp.stderr
    assert inspect(f"{tag_prefix}:m")["Id"] == iid.read_text().strip()
    assert json.loads(meta.read_text())["containerimage.digest"].startswith("sha256:")


def test_context_and_dockerfile_from_stdin(tag_prefix: str, tmp_path: Path) -> None:
    dockerfile = f"FROM {BASE_IMAGE}\nLABEL from=stdin\n".encode()
    cp = sbuild("-t", f"{tag_prefix}:stdin", "-", input=dockerfile)
    assert cp.returncode == 0, cp.stderr
    assert inspect(f"{tag_prefix}:stdin")["Config"]["Labels"]["from"] == "stdin"
    (tmp_path / "payload.txt").write_text("payload\n")
    cp = sbuild("-f", "-", "-t", f"{tag_prefix}:stdinf", str(tmp_path),
                input=f"FROM {BASE_IMAGE}\nCOPY payload.txt /p\nRUN grep payload /p\n".encode())
    assert cp.returncode == 0, cp.stderr


def test_progress_rawjson_passes_the_stream_on(tmp_path: Path) -> None:
    cp = sbuild("--progress=rawjson", str(EXAMPLE))
    assert cp.returncode == 0
    assert cp.stderr.lstrip().startswith("{")
    assert '"vertexes"' in cp.stderr


def test_hidden_docker_build_compat_flags_are_accepted() -> None:
    cp = sbuild("--rm", "--force-rm", "--compress", "-m", "1g", "--cpu-shares", "2", "--progress=quiet",
                str(EXAMPLE))
    assert cp.returncode == 0, cp.stderr


@pytest.mark.parametrize("case", ["no context", "no Dockerfile", "two paths", "bad progress", "empty tag",
                                  "uppercase tag", "bad exporter"])
def test_what_buildx_refuses_after_parsing_exits_as_buildx_does(case: str, tmp_path: Path) -> None:
    # Measured against the installed buildx on every run, not remembered: 1 on buildx 0.13.1 and 0.29.1.
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\n")
    argv = {"no context": [str(tmp_path / "nope")], "no Dockerfile": [str(tmp_path)],
            "two paths": [str(ctx), str(ctx)], "bad progress": ["--progress=bogus", str(ctx)],
            "empty tag": ["-t", "", str(ctx)], "uppercase tag": ["-t", "Upper/Case:1", str(ctx)],
            "bad exporter": ["-o", "type=bogus", str(ctx)]}[case]
    plain = docker("buildx", "build", *argv, check=False)
    ours = sbuild(*argv)
    assert plain.returncode != 0 and ours.returncode == plain.returncode, (ours.stderr[-1500:], plain.stderr[-1500:])
    assert "Traceback" not in ours.stderr


def test_f_url_is_fetched_by_buildx_and_once_by_sbuild_when_it_reads_the_stages(tmp_path: Path) -> None:
    import http.server
    import threading

    site = tmp_path / "site"
    site.mkdir()
    (site / "app.Dockerfile").write_text((EXAMPLE / "Dockerfile").read_text())
    gets: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(site), **kw)  # type: ignore[arg-type]

        def log_message(self, fmt: str, *args: object) -> None:
            gets.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/app.Dockerfile"
    try:
        r = tmp_path / "r.json"
        cp = sbuild("-f", url, "--target", "test", "--report", str(r), str(EXAMPLE))  # buildx fetches it
        assert cp.returncode == 0, cp.stderr[-2000:]
        gets.clear()
        cp = sbuild("-f", url, "--stage", "lint,test", "--report", str(r), str(EXAMPLE))
        assert cp.returncode == 0, cp.stderr[-2000:]
        assert gets == ["/app.Dockerfile"]  # sbuild's one fetch; buildx got that same file
        assert [s["name"] for s in json.loads(r.read_text())["stages"]] == ["base", "build", "lint", "test"]
        cp = sbuild("stages", "-f", url, str(EXAMPLE))
        assert cp.returncode == 0 and "static-analysis" in cp.stdout
    finally:
        server.shutdown()


@pytest.mark.parametrize("argv", [["--nope"], ["-Z"], ["--pull=maybe"], ["--tag"], ["--call=check"], ["-D"]])
def test_what_buildx_refuses_is_refused_with_its_words_and_exit_code(argv: list[str], tmp_path: Path) -> None:
    # Measured against the installed buildx, whichever pair runs: --call and -D exist from buildx 0.15 on.
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\n")
    plain = docker("buildx", "build", str(tmp_path), *argv, check=False)  # last: --tag has no value
    ours = sbuild("--progress=plain", str(tmp_path), *argv)
    if plain.returncode == 125:
        assert ours.returncode == 125
        assert ours.stderr.splitlines()[0] == plain.stderr.splitlines()[0]  # e.g. "unknown flag: --nope"
    else:
        assert ours.returncode == plain.returncode, (ours.stderr[-2000:], plain.stderr[-2000:])


def test_daemon_unreachable_names_the_address(tmp_path: Path) -> None:
    sock = f"unix://{tmp_path}/no-daemon.sock"
    cp = sbuild(str(EXAMPLE), env={"DOCKER_HOST": sock})
    assert cp.returncode == 1
    assert cp.stderr.count("\n") == 1, cp.stderr
    assert sock in cp.stderr and "DOCKER_HOST" in cp.stderr


def test_docker_cli_missing(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path)}
    cp = subprocess.run([*sbuild_cmd(), str(EXAMPLE)], capture_output=True, text=True,
                        env={**os.environ, **env})
    assert cp.returncode == 127
    assert cp.stderr.startswith("error: docker CLI not found")


def _session_of_children(pid: int) -> set[int]:
    """The processes sbuild started (the buildx plugin, and anything under it): sbuild runs buildx in a session
    of its own, so they are the members of its children's sessions. Nobody else's buildx is counted."""
    kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    out: set[int] = set()
    for k in kids:
        out |= {int(p) for p in subprocess.run(["pgrep", "-s", k], capture_output=True, text=True).stdout.split()}
    return out


def _argv0(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_buildx_no_orphans(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nRUN echo slow-{sig.name} && sleep 60\n")
    proc = subprocess.Popen([*sbuild_cmd(), "--no-cache", "--progress=plain", str(tmp_path)],
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    for line in proc.stderr:
        if f"slow-{sig.name}" in line and "RUN" not in line:
            break  # the RUN step is running
        assert time.monotonic() < deadline
    ours = _session_of_children(proc.pid)
    # The buildx plugin itself, run standalone (no docker CLI in between), with whatever it started.
    assert any(_argv0(p).endswith("/docker-buildx") for p in ours), {p: _argv0(p) for p in ours}
    proc.send_signal(sig)
    rc = proc.wait(timeout=30)  # the deadline: buildx canceled, or sbuild's own grace ended
    rest = proc.stderr.read()
    assert rc == code, rest
    assert "Traceback" not in rest
    time.sleep(0.5)
    assert {p for p in ours if _alive(p)} == set()


def test_flags_match_the_installed_buildx_help() -> None:
    from tests.helpers import help_flags

    from sbuild import flags

    live = help_flags(docker("buildx", "build", "--help").stdout)
    ours = {f.name: f for f in flags.BUILDX_FLAGS}
    missing = set(live) - set(ours)
    assert not missing, f"buildx flags sbuild does not know: {sorted(missing)}"
    for name, (short, _) in live.items():
        assert ours[name].short == short, name
