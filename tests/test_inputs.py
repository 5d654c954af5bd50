"""Every bad input caught before anything runs (one line naming the argument, the drop-in table's exit
code, no buildx started), and an output that cannot be written after the build is never silent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sbuild import cli, stages
from sbuild.errors import DockerfileError
from sbuild.progress import BuildModel
from sbuild.report import build_report, normalize_image

from .helpers import Fake, _pipeline


@pytest.mark.parametrize("args, code, start", [
    (["--report", "."], 2, "error: --report .: is a directory: give a file path"),
    (["--summary", "app/Dockerfile/s.md"], 2, "error: --summary app/Dockerfile/s.md: "),
    (["--html", "app"], 2, "error: --html app: is a directory"),
    (["--cache-dir", "app/Dockerfile"], 2, "error: --cache-dir app/Dockerfile: is a file"),
    (["--iidfile", "missing/dir/iid"], 1, "ERROR: writing image ID file: open missing/dir/iid: no such file"),
    (["--metadata-file", "missing/m.json"], 1, "ERROR: open missing/m.json: no such file or directory"),
    (["-o", "type=tar,dest=missing/x.tar"], 1, "ERROR: failed to open missing/x.tar: no such file"),
    (["--stage", ""], 2, 'error: --stage "": an empty stage name'),
    (["--stage", "lint,,test"], 2, 'error: --stage "lint,,test": an empty stage name'),
    (["--cache-repo", "127.0.0.1:5000/Team/Cache"], 2,
     'error: --cache-repo "127.0.0.1:5000/Team/Cache": repository name must be lowercase'),
    (["--cache-repo", "registry.example.com/app-cache:v1"], 2,
     'error: --cache-repo "registry.example.com/app-cache:v1": give a repository without a tag'),
])
def test_bad_inputs_stop_before_buildx(fake: Fake, capsys: pytest.CaptureFixture[str], args: list[str], code: int,
                                       start: str) -> None:
    _pipeline(Path("app"))
    assert cli.main([*args, "--target", "test", "app"] if "--stage" not in args else [*args, "app"]) == code
    err = capsys.readouterr().err
    assert err.startswith(start) and err.count("\n") == 1, err
    assert fake.builds() == []


def test_a_missing_parent_of_sbuild_s_own_file_is_made(fake: Fake) -> None:
    _pipeline(Path("app"))
    assert cli.main(["--target", "test", "--report", "out/deep/r.json", "app"]) == 0
    assert json.loads(Path("out/deep/r.json").read_text())["status"] == "success"


def test_a_report_that_cannot_be_written_after_the_build_fails_it(fake: Fake,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _pipeline(Path("app"))
    # /dev/full: a real device that answers every write with "No space left on device".
    assert cli.main(["--target", "test", "--report", "/dev/full", "app"]) == 1
    assert "error: could not write --report /dev/full: No space left on device" in capsys.readouterr().err
    fake.stream("buildx-0.13/pipeline-fail-test")
    assert cli.main(["--target", "test", "--report", "/dev/full", "app"]) == 1  # buildx's own code stays
    fake.stream("buildx-0.13/pipeline-warm-test", exit_code=7)
    assert cli.main(["--target", "test", "--summary", "/dev/full", "app"]) == 7


@pytest.mark.parametrize("text, message", [
    ("FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\nCOPY --from=a /y /y\n",
     "circular dependency detected on stage: a"),
    ("FROM scratch AS a\nCOPY --from=7 /x /x\n", "invalid stage index 7"),
    ("FROM scratch AS a\nRUN --mount=from=c,target=/c true\nFROM scratch AS b\nFROM a AS c\nCOPY --from=a /x /x\n",
     "circular dependency detected on stage: a"),
])
def test_a_graph_buildkit_refuses_is_refused_before_stage_builds(text: str, message: str) -> None:
    graph = stages.parse(text)
    with pytest.raises(DockerfileError, match=message):
        stages.check_buildable(graph)


def test_a_stage_copying_from_a_later_one_is_fine() -> None:
    # BuildKit registers every stage before it converts any (convert.go), so a forward --from resolves.
    stages.check_buildable(stages.parse("FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\nCOPY f /f\n"))


def test_a_failed_image_load_is_reported_against_the_stage_that_needs_it() -> None:
    m = BuildModel()
    m.apply({"vertexes": [{"digest": "sha256:1", "name": "[internal] load metadata for docker.io/library/nosuch:1",
                           "started": "2026-11-28T10:00:00Z", "completed": "2026-11-28T10:00:01Z",
                           "error": "docker.io/library/nosuch:1: not found"}]})
    r = build_report(m, exit_code=1, image_stages={normalize_image("nosuch:1"): "test"})
    assert r.failure is not None and r.failure.stage == "test"


@pytest.mark.parametrize("ref, whole", [
    ("busybox", "docker.io/library/busybox:latest"), ("team/app:1", "docker.io/team/app:1"),
    ("127.0.0.1:5000/x/y", "127.0.0.1:5000/x/y:latest"), ("ghcr.io/o/a@sha256:ab", "ghcr.io/o/a@sha256:ab"),
])
def test_image_names_are_made_whole_as_buildkit_prints_them(ref: str, whole: str) -> None:
    assert normalize_image(ref) == whole
