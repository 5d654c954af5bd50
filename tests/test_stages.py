from __future__ import annotations

import json
from pathlib import Path

import pytest

from sbuild import stages
from sbuild.errors import DockerfileError
from sbuild.shell_words import ExpandError, expand

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pipeline" / "Dockerfile"


@pytest.mark.parametrize(("word", "expected"), [
    ("$A", "1"), ("${A}", "1"), ("x${A}y", "x1y"), ("${UNSET}", ""), ("$UNSET-z", "-z"),
    ("${A:-d}", "1"), ("${UNSET:-d}", "d"), ("${EMPTY:-d}", "d"), ("${EMPTY-d}", ""), ("${UNSET-d}", "d"),
    ("${A:+alt}", "alt"), ("${EMPTY:+alt}", ""), ("${EMPTY+alt}", "alt"), ("${UNSET+alt}", ""),
    ("'$A'", "$A"), ('"$A"', "1"), (r"\$A", "$A"), ("${V#*.}", "2.3"), ("${V##*.}", "3"),
    ("${V%.*}", "1.2"), ("${V%%.*}", "1"), ("${A:-${V}}", "1"), ("${UNSET:-${V}}", "1.2.3"),
])
def test_expansion_as_buildkit(word: str, expected: str) -> None:
    assert expand(word, {"A": "1", "EMPTY": "", "V": "1.2.3"}) == expected


def test_backtick_escape() -> None:
    assert expand("`$A", {"A": "1"}, escape="`") == "$A"


def test_required_variable() -> None:
    with pytest.raises(ExpandError):
        expand("${UNSET:?need it}", {})


def test_example_pipeline_graph() -> None:
    g = stages.read(str(EXAMPLE))
    assert g.names == ["base", "build", "lint", "test", "static-analysis", "deploy"]
    assert g.find("TEST").key == "test"  # case-insensitive, as BuildKit
    assert g.find("build").needs == ("base",)
    assert g.find("deploy").needs == ("base", "build")
    assert [s.key for s in g.closure(["test"])] == ["base", "build", "test"]
    assert [s.key for s in g.closure(["lint", "test"])] == ["base", "build", "lint", "test"]
    # a loopback name: Engine 26 asks a base image's registry on every build (scripts/setup-engine)
    assert g.find("base").base_expanded == "localhost/sbuild-busybox:latest"
    assert g.find("build").description == "compiles the application"
    assert g.default.key == "deploy"


def test_build_arg_overrides_global_arg_and_platform_args() -> None:
    text = ("ARG REG=docker.io\nARG IMG=${REG}/lib/alpine\nFROM --platform=$BUILDPLATFORM ${IMG}:${TAG:-3} AS a\n"
            "FROM ${TARGETOS}-${TARGETARCH}\n")
    g = stages.parse(text, build_args={"REG": "127.0.0.1:5000", "UNDECLARED": "x"},
                     target_platform="linux/arm64", build_platform="linux/amd64")
    assert g.stages[0].base_expanded == "127.0.0.1:5000/lib/alpine:3"
    assert g.stages[0].platform == "$BUILDPLATFORM"
    assert g.stages[1].base_expanded == "linux-arm64"
    assert g.meta_args == (("REG", "docker.io"), ("IMG", "${REG}/lib/alpine"))


def test_dependencies_copy_from_index_and_name_run_mount_and_images() -> None:
    text = """\
ARG SRC=build
FROM alpine AS Build
RUN true
FROM scratch AS assets
COPY --from=0 /x /x
FROM build AS test
ARG SRC
COPY --from=$SRC /a /a
COPY --from=nginx:1.25 /etc/nginx /etc/nginx
RUN --mount=type=bind,from=assets,target=/assets --mount=type=cache,target=/c true
FROM test
"""
    g = stages.parse(text)
    assert [s.key for s in g.stages] == ["build", "assets", "test", "stage-3"]
    assert g.find("assets").needs == ("build",)
    assert g.find("test").needs == ("build", "assets")
    assert g.find("test").images == ("nginx:1.25",)
    assert g.find("build").images == ("alpine",)
    assert g.find("assets").images == ()  # scratch is no image
    assert g.stages[3].needs == ("test",)
    assert [s.key for s in g.closure(["stage-3"])] == ["build", "assets", "test", "stage-3"]


def test_heredoc_and_escape_directive() -> None:
    text = "# escape=`\nFROM alpine AS a\nRUN <<EOF\nFROM nothing AS fake\nEOF\nCOPY --from=a `\n  /x /y\nFROM a AS b\n"
    g = stages.parse(text)
    assert g.names == ["a", "b"]
    assert g.escape == "`"
    assert g.find("b").line == 8


def test_description_is_the_comment_naming_the_stage() -> None:
    text = ("# builder compiles\n\n# other words\nFROM a AS builder\n#\n# runner ignored: reset by empty #\n#\n"
            "FROM b AS runner\n")
    g = stages.parse(text)
    assert g.find("builder").description == "compiles"
    assert g.find("runner").description == ""


@pytest.mark.parametrize(("text", "line", "message"), [
    ("FROM a\nFNTRYPOINT x\n", 2, "unknown instruction: FNTRYPOINT (did you mean ENTRYPOINT?)"),
    ("FROM a\ncopy --foo=bar / /\n", 2, "unknown flag: foo (did you mean from?)"),
    ("FROM a AS 1bad\n", 1, 'invalid name for build stage: "1bad"'),
    ("FROM a\nRUN --mount=from=$X,target=/x true\n", 2, "'from' doesn't support variable expansion"),
    ("FROM a\nCOPY x\n", 2, "COPY requires at least two arguments"),
    ("FROM a\nRUN <<EOF\nnever closed\n", 2, "unterminated heredoc"),
    ("FROM a\nENV x\n", 2, "ENV must have two arguments"),
])
def test_rejected_like_buildkit(text: str, line: int | None, message: str) -> None:
    with pytest.raises(DockerfileError) as info:
        stages.parse(text)
    assert message in str(info.value)
    assert info.value.line == line
    if line is not None:
        assert str(info.value).startswith(f"dockerfile parse error on line {line}: ")


def test_instruction_before_from() -> None:
    with pytest.raises(DockerfileError) as info:
        stages.parse("RUN x\nFROM a\n")
    assert str(info.value) == "no build stage in current context"  # BuildKit's words, no line in them
    assert info.value.line == 1  # but sbuild knows where


def test_unknown_stage_message_lists_stages_and_suggests() -> None:
    g = stages.read(str(EXAMPLE))
    msg = stages.unknown_stage_message("tset", g)
    assert msg.endswith('(stages: base, build, lint, test, static-analysis, deploy); did you mean "test"?')
    assert "did you mean" not in stages.unknown_stage_message("zzzzzzzzzz", g)


def test_json_form_keys_are_pinned() -> None:
    js = stages.to_json(stages.read(str(EXAMPLE)))
    assert js["schema_version"] == 2
    assert list(js) == ["schema_version", "file", "syntax", "frontend", "default", "deploy", "args", "stages"]
    assert js["syntax"] is None and js["frontend"] == {"kind": "builtin", "version": None, "labs": False}
    assert list(js["stages"][0]) == ["index", "name", "key", "base", "base_expanded", "platform", "description",
                                     "line", "needs", "needed_by", "images", "default", "deploy"]
    json.dumps(js)
