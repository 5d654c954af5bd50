"""`sbuild --stage`: the stages asked for and what they need, in one BuildKit session."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import BASE_IMAGE, EXAMPLE, docker, inspect, json_objects, sbuild

pytestmark = pytest.mark.usefixtures("engine")

_STEP = re.compile(r"^\[(?:(?P<target>\S+) )?(?P<stage>[^\s\]]+) \d+/\d+\] ")


def _vertices(stream: str) -> dict[str, dict]:
    """digest -> last state, from a real rawjson stream (parsed here independently of sbuild)."""
    out: dict[str, dict] = {}
    for obj in json_objects(stream):
        for v in obj.get("vertexes") or ():
            out.setdefault(v["digest"], {}).update(v)
    return out


def _stages_run(vertices: dict[str, dict]) -> set[str]:
    return {m.group("stage") for v in vertices.values() if (m := _STEP.match(v.get("name", "")))}


def _logs(stream: str) -> str:
    import base64

    return "".join(base64.b64decode(lg["data"]).decode() for o in json_objects(stream) for lg in o.get("logs") or ())


def test_stage_test_runs_exactly_what_test_needs() -> None:
    cp = sbuild("--stage", "test", "--no-cache", "--progress=rawjson", str(EXAMPLE))
    assert cp.returncode == 0, cp.stderr[-2000:]
    assert _stages_run(_vertices(cp.stderr)) == {"base", "build", "test"}
    assert "ok - sbuild" in _logs(cp.stderr)


def test_two_stages_one_session_shared_stage_once() -> None:
    cp = sbuild("--stage", "lint", "--stage", "test", "--no-cache", "--progress=rawjson", str(EXAMPLE))
    assert cp.returncode == 0, cp.stderr[-2000:]
    vertices = _vertices(cp.stderr)
    names = [v["name"] for v in vertices.values()]
    assert sum(n == "[internal] load local bake definitions" for n in names) == 1  # one bake session
    assert _stages_run(vertices) == {"base", "build", "lint", "test"}
    logs = _logs(cp.stderr)
    assert logs.count("built dist/app") == 1, "the shared build stage ran more than once"
    assert "lint ok: src/greet.sh" in logs and "ok - CI" in logs
    ran = [v for v in vertices.values() if "build.sh" in v["name"] and not v.get("cached")]
    assert len(ran) == 1


def test_unknown_stage_fails_fast_without_the_engine(tmp_path: Path) -> None:
    # No engine at all: the one line below is all there is, so nothing asked one.
    cp = sbuild("--stage", "tset", str(EXAMPLE), env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert cp.returncode == 2
    assert cp.stderr == ('error: no stage "tset" in ' + str(EXAMPLE / "Dockerfile") +
                         ' (stages: base, build, lint, test, static-analysis, deploy); did you mean "test"?\n')


def test_stage_with_target_is_a_usage_error() -> None:
    cp = sbuild("--stage", "test", "--target", "lint", str(EXAMPLE))
    assert cp.returncode == 2 and "--stage and --target cannot be used together" in cp.stderr


def test_only_the_deploy_stage_gets_tags(tag_prefix: str, tmp_path: Path) -> None:
    cp = sbuild("--stage", "test", "-t", f"{tag_prefix}:test-only", str(EXAMPLE))
    assert cp.returncode == 0, cp.stderr[-2000:]
    assert '-t not applied: only the deploy stage "deploy" gets tags' in cp.stderr
    assert docker("image", "inspect", f"{tag_prefix}:test-only", check=False).returncode != 0

    iid = tmp_path / "iid"
    cp = sbuild("--stage", "test,deploy", "-t", f"{tag_prefix}:both", "--iidfile", str(iid), str(EXAMPLE))
    assert cp.returncode == 0, cp.stderr[-2000:]
    img = inspect(f"{tag_prefix}:both")
    assert img["Config"]["Entrypoint"] == ["/usr/local/bin/app"]  # deploy's, not test's
    assert iid.read_text().strip() == img["Id"]


def test_iidfile_to_a_pipe_is_written_not_replaced(tmp_path: Path) -> None:
    # buildx writes --iidfile by renaming a temp file over it: given a fifo (or /dev/stdout, as root) that
    # replaces it. sbuild hands buildx a temp file and writes the fifo itself.
    import threading

    fifo = tmp_path / "iid.fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    cp = sbuild("--iidfile", str(fifo), str(EXAMPLE))
    reader.join(timeout=30)
    assert cp.returncode == 0, cp.stderr[-2000:]
    assert fifo.is_fifo()
    assert got and got[0].startswith("sha256:")


def test_quiet_with_stages_prints_the_deploy_image_id(tag_prefix: str) -> None:
    cp = sbuild("-q", "--stage", "lint", "--stage", "deploy", "-t", f"{tag_prefix}:q", str(EXAMPLE))
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == inspect(f"{tag_prefix}:q")["Id"]


def test_failing_stage_fails_the_session(example: Path) -> None:
    (example / "tests" / "run.sh").write_text("echo 'FAIL - on purpose'; exit 4\n")
    cp = sbuild("--stage", "lint,test", str(example))
    assert cp.returncode == 1
    assert "FAIL - on purpose" in cp.stderr


def test_the_deploy_image_is_named_after_every_stage_passed_without_a_second_build(example: Path, tmp_path: Path,
                                                                                     tag_prefix: str) -> None:
    import uuid

    (example / "src" / "build.sh").write_text((example / "src" / "build.sh").read_text() + f"\n# {uuid.uuid4()}\n")
    r = tmp_path / "r.json"
    cp = sbuild("--stage", "lint,test,deploy", "-t", f"{tag_prefix}:fast", "--report", str(r), str(example),
                env={"SBUILD_LOG": "debug"})
    assert cp.returncode == 0, cp.stderr[-3000:]
    runs = [ln for ln in cp.stderr.splitlines() if ln.startswith("sbuild: run: ")]
    assert len(runs) == 1 and "/docker-buildx bake " in runs[0], runs  # one session: no second, cached build
    lines = cp.stderr.splitlines()
    tag = next(i for i, ln in enumerate(lines) if ln.startswith("sbuild: engine: POST /images/sha256:"))
    # named once the stream showed every stage built, while bake wound down: not on the clock after it
    assert tag < lines.index("sbuild: exit 0: bake"), lines
    img = inspect(f"{tag_prefix}:fast")
    assert img["Config"]["Entrypoint"] == ["/usr/local/bin/app"]  # deploy's image
    assert json.loads(r.read_text())["image"]["digest"] == img["Id"]
    # A failing test: the deploy image the session made is never named.
    (example / "tests" / "run.sh").write_text("echo 'FAIL - on purpose'; exit 1\n")
    cp = sbuild("--stage", "lint,test,deploy", "-t", f"{tag_prefix}:failed", str(example), env={"SBUILD_LOG": "debug"})
    assert cp.returncode == 1
    assert "engine: POST" not in cp.stderr
    assert docker("image", "inspect", f"{tag_prefix}:failed", check=False).returncode != 0


def test_quiet_and_iidfile_get_the_id_of_the_image_named_in_the_session(example: Path, tmp_path: Path,
                                                                         tag_prefix: str) -> None:
    # -q and --iidfile no longer cost a second, cached build: the deploy image is named in the stages'
    # session and its ID is the engine's, which is what buildx writes (checked below with a plain buildx build).
    import threading
    import uuid

    (example / "src" / "build.sh").write_text((example / "src" / "build.sh").read_text() + f"\n# {uuid.uuid4()}\n")
    iid = tmp_path / "iid"
    iid.write_text("sha256:" + "0" * 64)  # an earlier build's
    cp = sbuild("-q", "--stage", "lint,test,deploy", "-t", f"{tag_prefix}:q", "--iidfile", str(iid), str(example),
                env={"SBUILD_LOG": "debug"})
    assert cp.returncode == 0, cp.stderr[-3000:]
    runs = [ln for ln in cp.stderr.splitlines() if ln.startswith("sbuild: run: ")]
    assert len(runs) == 1 and "/docker-buildx bake " in runs[0], runs  # no second build
    image_id = inspect(f"{tag_prefix}:q")["Id"]
    assert cp.stdout == image_id + "\n"
    assert iid.read_text() == image_id  # as buildx writes it: no newline
    # The rule that relies on, on this engine: buildx's own --iidfile is the engine's ID of what it built.
    plain = tmp_path / "plain-iid"
    docker("buildx", "build", "-q", "--target", "deploy", "-t", f"{tag_prefix}:plain", "--iidfile", str(plain),
           str(example))
    assert plain.read_text() == inspect(f"{tag_prefix}:plain")["Id"]
    # To a fifo: written, not replaced.
    fifo = tmp_path / "iid.fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    cp = sbuild("--stage", "test,deploy", "-t", f"{tag_prefix}:fifo", "--iidfile", str(fifo), str(example))
    reader.join(timeout=30)
    assert cp.returncode == 0, cp.stderr[-2000:]
    assert fifo.is_fifo() and got == [inspect(f"{tag_prefix}:fifo")["Id"]]
    # A failing stage: no ID printed, and the earlier build's file is gone, as buildx removes it first.
    (example / "tests" / "run.sh").write_text("echo 'FAIL - on purpose'; exit 1\n")
    cp = sbuild("-q", "--stage", "lint,test,deploy", "-t", f"{tag_prefix}:failed", "--iidfile", str(iid), str(example))
    assert cp.returncode == 1 and cp.stdout == ""
    assert not iid.exists()


def test_quiet_with_stages_on_the_classic_image_store(tmp_path: Path, classic_daemon: str) -> None:
    # Without the containerd image store an image's ID is its config's digest, not its manifest's: -q with
    # stages prints the ID buildx would (the engine's). (There the deploy image is made by the second build:
    # sbuild does not read the export's digest from that store's stream. COPY steps only: that dockerd's
    # namespace has no bridge for RUN.)
    env = {**os.environ, "DOCKER_HOST": classic_daemon}
    (tmp_path / "app.txt").write_text("app\n")
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE_IMAGE} AS base\nCOPY app.txt /app.txt\n"
                                         "FROM base AS test\nCOPY app.txt /tested.txt\n"
                                         "FROM base AS deploy\nCOPY --from=test /tested.txt /tested.txt\n")

    def classic_id(ref: str) -> str:
        cp = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", ref], capture_output=True, text=True,
                            env=env, check=True)
        return cp.stdout.strip()

    cp = sbuild("-q", "--stage", "test,deploy", "-t", "sbuild-it/classic:q", str(tmp_path),
                env={"DOCKER_HOST": classic_daemon})
    assert cp.returncode == 0, cp.stderr[-3000:]
    assert cp.stdout == classic_id("sbuild-it/classic:q") + "\n"
    plain = tmp_path / "plain-iid"
    subprocess.run(["docker", "buildx", "build", "-q", "--target", "deploy", "-t", "sbuild-it/classic:plain",
                    "--iidfile", str(plain), str(tmp_path)], env=env, check=True, capture_output=True)
    assert plain.read_text() == classic_id("sbuild-it/classic:plain")


def test_names_given_while_bake_wound_down_are_taken_back_when_it_then_fails(example: Path, tmp_path: Path,
                                                                              tag_prefix: str) -> None:
    # Every stage passes and the deploy image is named while bake winds down; then bake exits 1 (a buildx
    # plugin where the docker CLI looks first, that runs the real one and changes a bake's exit code: the
    # stream is the engine's own). Each name must be back where it was: on the image it named before, or on
    # none.
    from sbuild import process

    real = process.plugin_path()
    assert real is not None
    config = Path(process.docker_config_dir())
    shim_config = tmp_path / "docker-config"  # the same config and buildx state, another cli-plugins
    (shim_config / "cli-plugins").mkdir(parents=True)
    for entry in config.iterdir() if config.is_dir() else []:
        if entry.name != "cli-plugins":
            (shim_config / entry.name).symlink_to(entry)
    shim = shim_config / "cli-plugins" / "docker-buildx"
    shim.write_text(f'#!/bin/sh\n"{real}" "$@"\nrc=$?\ncase " $* " in *" bake "*) exit 1;; esac\nexit $rc\n')
    shim.chmod(0o755)
    before = inspect(BASE_IMAGE)["Id"]
    docker("tag", BASE_IMAGE, f"{tag_prefix}:kept")
    cp = sbuild("--stage", "lint,test,deploy", "-t", f"{tag_prefix}:kept", "-t", f"{tag_prefix}:new", "--retries", "0",
                str(example), env={"SBUILD_LOG": "debug", "DOCKER_CONFIG": str(shim_config)})
    assert cp.returncode == 1, cp.stderr[-3000:]
    lines = cp.stderr.splitlines()
    exit_at = lines.index("sbuild: exit 1: bake")
    named = [ln for ln in lines[:exit_at] if ln.startswith("sbuild: engine: POST /images/sha256:")]
    assert len(named) == 2, lines  # both named, then bake failed
    assert f"sbuild: bake exited 1 after every stage had passed: {tag_prefix}:kept, {tag_prefix}:new taken back " \
        "from the deploy image" in lines
    assert inspect(f"{tag_prefix}:kept")["Id"] == before
    assert docker("image", "inspect", f"{tag_prefix}:new", check=False).returncode != 0
