"""Reading Dockerfiles for the frontend that will run them (sbuild/frontend.py).

Each Dockerfile here is written for a Dockerfile frontend newer than BuildKit 0.13's built-in one (1.7).
The versions cite moby/buildkit's frontend/dockerfile sources at the dockerfile/1.x.0 tags: the flags
instructions/parse.go and commands_run*.go register, the labs-only ones behind the build tags
dfexcludepatterns, dfparents, dfrunsecurity and dfrundevice (release/labs/tags), and dockerfile2llb's
refusals. Frontend images cannot be pulled here, so these are read, not built (integration/test_versions.py
builds what Engine 28's built-in frontend has).
"""

from __future__ import annotations

import pytest

from sbuild import frontend, stages
from sbuild.errors import DockerfileError

# (syntax line, Dockerfile body, the stages BuildKit gives it): none of these may be refused.
ACCEPTED = [
    # COPY --exclude and --parents: labs since 1.7 (dfexcludepatterns, dfparents), with --from.
    ("docker/dockerfile:1.7-labs",
     "FROM alpine AS src\nRUN mkdir -p /a/b\nFROM scratch AS out\n"
     "COPY --from=src --exclude=*.tmp --parents /a/./b /dst/\n", ["src", "out"]),
    # COPY --exclude stable since 1.19 (exclude_pattern_feature.go gone), --parents stable since 1.20.
    ("docker/dockerfile:1.20", "FROM alpine AS a\nFROM a AS b\nCOPY --parents --exclude=x --from=a /s /d\n",
     ["a", "b"]),
    # RUN --security=insecure: labs since 1.1.2 (dfrunsecurity), stable since 1.20.
    ("docker/dockerfile:1.7-labs", "FROM alpine AS s\nRUN --security=insecure true\n", ["s"]),
    ("docker/dockerfile:1.20.0", "FROM alpine AS s\nRUN --security=insecure true\n", ["s"]),
    # RUN --device: labs since 1.14 (dfrundevice).
    ("docker/dockerfile:1.14-labs", "FROM alpine AS d\nRUN --device=vendor.com/gpu=all true\n", ["d"]),
    # ADD --checksum / --keep-git-dir: stable since 1.6; ADD --unpack since 1.17.
    ("docker/dockerfile:1.6", "FROM alpine AS a\nADD --checksum=sha256:0000 https://e.x/f /f\n"
     "ADD --keep-git-dir=true https://github.com/moby/buildkit.git /src\n", ["a"]),
    ("docker/dockerfile:1.17", "FROM alpine AS a\nADD --unpack=true https://e.x/f.tar.gz /f\n", ["a"]),
    # RUN --mount=from= with every mount type names a stage the graph must include; COPY --link; heredocs;
    # a `# check=` directive is read, not refused (docs: Dockerfile reference, build checks).
    ("docker/dockerfile:1", "FROM alpine AS tools\nFROM alpine AS app\n"
     "RUN --mount=type=bind,from=tools,target=/t --mount=type=cache,from=tools,target=/c "
     "--mount=type=secret,id=s --mount=type=tmpfs,target=/x true\nCOPY --link --from=tools /a /b\n"
     "RUN <<EOF\necho hi\nEOF\n", ["tools", "app"]),
    # Channels that pin no version: nothing version-dependent is refused.
    ("docker/dockerfile:labs", "FROM alpine AS a\nRUN --device=x --security=insecure true\n", ["a"]),
    ("docker/dockerfile:1", "FROM alpine AS a\nCOPY --parents --exclude=y a /b\n", ["a"]),
    ("docker/dockerfile@sha256:" + "a" * 64, "FROM alpine AS a\nCOPY --parents a /b\n", ["a"]),
    # Someone's own frontend judges its file: sbuild reads the stages only.
    ("example.com/my/frontend:2", "FROM alpine AS a\nCOPY --newflag=1 --from=a x y\nFROM a AS b\n", ["a", "b"]),
]


@pytest.mark.parametrize(("syntax", "body", "names"), ACCEPTED, ids=[f"{a[0]}:{i}" for i, a in enumerate(ACCEPTED)])
def test_what_the_named_frontend_accepts_is_never_refused(syntax: str, body: str, names: list[str]) -> None:
    g = stages.parse(f"# syntax={syntax}\n# check=skip=all\n{body}")
    assert g.names == names
    assert g.frontend.ref == syntax


def test_the_stage_graph_follows_the_new_flags() -> None:
    g = stages.parse("# syntax=docker/dockerfile:1.7-labs\nFROM alpine AS tools\nFROM alpine AS gen\n"
                     "FROM alpine AS app\nCOPY --parents --exclude=*.md --from=gen /out/./a /app/\n"
                     "RUN --mount=type=cache,from=tools,target=/c true\n")
    assert g.find("app").needs == ("gen", "tools")  # type: ignore[union-attr]


# (syntax, body, BuildKit's refusal): what a pinned version refuses, in its words.
REFUSED = [
    # 1.7 stable registers neither --exclude nor --parents (labs only then).
    ("docker/dockerfile:1.7", "FROM alpine\nCOPY --exclude=x a b\n", "unknown flag: exclude"),
    ("docker/dockerfile:1.19", "FROM alpine\nCOPY --parents a b\n", "unknown flag: parents"),
    ("docker/dockerfile:1.19", "FROM alpine\nRUN --security=insecure true\n", "unknown flag: security"),
    # 1.5 stable parses ADD --checksum, then dockerfile2llb refuses it without labs.
    ("docker/dockerfile:1.5", "FROM alpine\nADD --checksum=sha256:00 https://e.x/f /f\n",
     "instruction 'ADD --checksum=<CHECKSUM>' requires the labs channel"),
    ("docker/dockerfile:1.20", "FROM alpine\nRUN --device=x true\n",
     "device feature is only supported in Dockerfile frontend 1.14.0-labs or later"),
]


@pytest.mark.parametrize(("syntax", "body", "message"), REFUSED)
def test_a_pinned_version_refuses_what_it_refuses(syntax: str, body: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=message):
        stages.parse(f"# syntax={syntax}\n{body}")


def test_without_a_directive_only_what_no_frontend_knows_is_refused() -> None:
    # The builder's built-in frontend may be newer than 1.7 (Engine 28's is): its version is not known here.
    g = stages.parse("FROM alpine AS a\nCOPY --parents --exclude=x a b\nRUN --device=x --security=insecure true\n")
    assert g.names == ["a"] and g.frontend.kind == "builtin"
    with pytest.raises(DockerfileError, match=r"unknown flag: parnets \(did you mean parents\?\)"):
        stages.parse("FROM alpine\nCOPY --parnets a b\n")
    with pytest.raises(DockerfileError, match="unknown instruction: COPPY"):
        stages.parse("FROM alpine\nCOPPY a b\n")


def test_buildkit_syntax_build_arg_overrides_the_directive() -> None:
    text = "# syntax=docker/dockerfile:1.7\nFROM alpine AS a\nCOPY --parents a b\n"
    with pytest.raises(DockerfileError, match="unknown flag: parents"):
        stages.parse(text)
    g = stages.parse(text, build_args={"BUILDKIT_SYNTAX": "docker/dockerfile:1.7-labs"})
    assert g.frontend.labs and g.frontend.version == (1, 7)


@pytest.mark.parametrize(("ref", "kind", "version", "labs"), [
    ("docker/dockerfile:1.7-labs", "dockerfile", (1, 7), True),
    ("docker.io/docker/dockerfile:1.20.1", "dockerfile", (1, 20), False),
    ("docker/dockerfile:1", "dockerfile", None, False),
    ("docker/dockerfile:labs", "dockerfile", None, True),
    ("docker/dockerfile-upstream:master-labs", "dockerfile", None, True),
    ("docker/dockerfile:1.7@sha256:" + "b" * 64, "dockerfile", (1, 7), False),
    ("example.com/frontend:1", "other", None, False),
])
def test_syntax_references(ref: str, kind: str, version: tuple[int, int] | None, labs: bool) -> None:
    fe = frontend.of({"syntax": ref}, {})
    assert (fe.kind, fe.version, fe.labs) == (kind, version, labs)


def test_the_table_is_consistent() -> None:
    for (instr, flag), (typ, labs, stable) in frontend.FLAGS.items():
        assert typ in (frontend.STR, frontend.BOOL, frontend.MULTI), (instr, flag)
        assert stable is None or labs <= stable, (instr, flag)


def test_sbuild_stages_says_which_frontend_it_read_the_file_for() -> None:
    from sbuild.render_stages import render_table

    g = stages.parse("# syntax=docker/dockerfile:1.7-labs\nFROM alpine AS a\n")
    assert render_table(g).splitlines()[-1] == "read for docker/dockerfile:1.7-labs (Dockerfile 1.7, labs)"
    js = stages.to_json(g)
    assert js["syntax"] == "docker/dockerfile:1.7-labs"
    assert js["frontend"] == {"kind": "dockerfile", "version": "1.7", "labs": True}
    assert render_table(stages.parse("FROM alpine AS a\n")).splitlines()[-1] == \
        "read for the builder's built-in Dockerfile frontend"
