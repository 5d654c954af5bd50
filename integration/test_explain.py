"""Every cache miss explained, on the real engine: each scenario changes one input between two builds and
asserts the cause and what it names (paths, args, stage)."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from .conftest import BASE_IMAGE, REGISTRY, docker, report, sbuild

pytestmark = pytest.mark.usefixtures("registry")


def _build(ctx: Path, name: str, *args: str, env: dict[str, str] | None = None) -> dict:
    out = ctx.parent / name
    cp = sbuild(*args, "--report", str(out), str(ctx), env=env)
    assert out.exists(), cp.stderr[-3000:]
    rep = report(out)
    assert rep["status"] == "success", cp.stderr[-3000:]
    rep["_stderr"] = cp.stderr
    return rep


def _whys(rep: dict) -> dict:
    return {s["name"]: s["why"] for s in rep["stages"]}


@pytest.fixture
def example(example: Path) -> Path:
    """The pipeline with sources no other build has seen: a change made here is a miss on the shared
    builder however often the suite ran before (the base stage stays shared)."""
    tag = uuid.uuid4().hex
    for rel in ("src/build.sh", "src/greet.sh", "tests/run.sh"):
        p = example / rel
        p.write_text(p.read_text() + f"\n# {tag}\n")
    return example


def test_a_changed_source_file_is_named_and_the_stages_after_it_are_upstream(example: Path) -> None:
    _build(example, "a.json", "--stage", "lint,test")
    (example / "src" / "build.sh").write_text((example / "src" / "build.sh").read_text() + "\n# edited\n")
    whys = _whys(_build(example, "b.json", "--stage", "lint,test"))
    assert whys["base"] is None
    assert whys["build"]["cause"] == "file" and whys["build"]["paths"] == ["src/build.sh"]
    assert whys["build"]["step"] == "[build 1/2] COPY src/ ./src/"
    for stage in ("lint", "test"):
        assert (whys[stage]["cause"], whys[stage]["stage"]) == ("upstream", "build")
        assert whys[stage]["detail"] == "after build: src/build.sh changed"
    cp = sbuild("explain", "--json", cwd=example)
    assert cp.returncode == 0, cp.stderr
    chains = {s["name"]: s["chain"] for s in json.loads(cp.stdout)["stages"]}
    assert chains == {"build": ["build"], "lint": ["lint", "build"], "test": ["test", "build"]}


def test_a_chmod_misses_and_a_touch_does_not(example: Path) -> None:
    _build(example, "a.json", "--stage", "test")
    subprocess.run(["touch", str(example / "src" / "greet.sh")], check=True)
    touched = _build(example, "b.json", "--stage", "test")
    assert touched["cache"]["hit_ratio"] == 1.0 and all(w is None for w in _whys(touched).values())
    (example / "src" / "greet.sh").chmod(0o755)
    whys = _whys(_build(example, "c.json", "--stage", "test"))
    assert whys["build"]["cause"] == "file" and whys["build"]["paths"] == ["src/greet.sh"]


def test_a_dockerignored_file_changes_nothing(example: Path) -> None:
    (example / ".dockerignore").write_text("src/notes.txt\n")
    (example / "src" / "notes.txt").write_text("one\n")
    _build(example, "a.json", "--stage", "test")
    (example / "src" / "notes.txt").write_text("two\n")
    rep = _build(example, "b.json", "--stage", "test")
    assert rep["cache"]["hit_ratio"] == 1.0 and all(w is None for w in _whys(rep).values())


def _args_context(tmp_path: Path) -> Path:
    ctx = tmp_path / "args"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {BASE_IMAGE} AS app\nARG FLAVOUR=plain\nARG API_TOKEN\n"
                                    f"RUN echo {uuid.uuid4().hex} $FLAVOUR > /flavour\n")
    return ctx


def test_a_changed_build_arg_is_named_its_value_never_shown(tmp_path: Path) -> None:
    ctx = _args_context(tmp_path)
    _build(ctx, "a.json", "--build-arg", "FLAVOUR=mild", "--build-arg", "API_TOKEN=tok-one-1234")
    rep = _build(ctx, "b.json", "--build-arg", "FLAVOUR=hot", "--build-arg", "API_TOKEN=tok-one-1234")
    why = _whys(rep)["app"]
    assert (why["cause"], why["args"]) == ("build-arg", ["FLAVOUR"])
    # sbuild adds no value (the step's name is BuildKit's, which expands a plain arg as buildx shows it)
    assert "hot" not in why["detail"] + str(why["args"]) and "mild" not in json.dumps(why)
    # The secret-named one changes too: named (compared with this machine's key), never shown.
    rep = _build(ctx, "c.json", "--build-arg", "FLAVOUR=hot", "--build-arg", "API_TOKEN=tok-two-5678")
    why = _whys(rep)["app"]
    assert (why["cause"], why["args"]) == ("build-arg", ["API_TOKEN"])
    assert "tok-" not in (ctx.parent / "c.json").read_text()


def test_a_base_tag_moved_to_another_image(tmp_path: Path) -> None:
    base = f"localhost/sbuild-it/base-{uuid.uuid4().hex[:8]}:1"  # a loopback name: Engine 26 asks its registry
    docker("tag", BASE_IMAGE, base)
    ctx = tmp_path / "moved"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base} AS app\nRUN echo {uuid.uuid4().hex} > /id\n")
    try:
        _build(ctx, "a.json")
        other = tmp_path / "other"
        other.mkdir()
        (other / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nRUN echo another > /another\n")
        docker("buildx", "build", "-q", "-t", base, str(other))
        why = _whys(_build(ctx, "b.json"))["app"]
        assert why["cause"] == "base-image" and why["detail"].startswith(f"{base} now ")
    finally:
        docker("image", "rm", base, check=False)


def test_an_edited_run_line_is_the_instruction(example: Path) -> None:
    _build(example, "a.json", "--stage", "test")
    df = example / "Dockerfile"
    df.write_text(df.read_text().replace("RUN sh tests/run.sh dist/app", "RUN sh tests/run.sh dist/app  # again"))
    why = _whys(_build(example, "b.json", "--stage", "test"))["test"]
    assert why["cause"] == "instruction"
    assert why["detail"].startswith("Dockerfile:") and why["detail"].endswith("→ RUN sh tests/run.sh dist/app  # again")


def test_a_change_in_a_stage_another_copies_from(example: Path) -> None:
    _build(example, "a.json", "--stage", "deploy")
    (example / "src" / "greet.sh").write_text((example / "src" / "greet.sh").read_text() + "\n# edited\n")
    whys = _whys(_build(example, "b.json", "--stage", "deploy"))
    assert whys["base"] is None and whys["build"]["paths"] == ["src/greet.sh"]
    assert whys["deploy"]["cause"] == "upstream" and whys["deploy"]["stage"] == "build"
    assert whys["deploy"]["step"].startswith("[deploy 1/1] COPY --from=build")


def test_a_pruned_builder_with_nothing_changed_is_cache_unavailable(example: Path, classic_daemon: str) -> None:
    # The dockerd without the containerd store is this suite's own builder: pruning it costs no one else.
    env = {"DOCKER_HOST": classic_daemon}
    _build(example, "a.json", "--stage", "test", "--network=none", env=env)
    subprocess.run(["docker", "-H", classic_daemon, "buildx", "prune", "-af"], check=True, capture_output=True)
    rep = _build(example, "b.json", "--stage", "test", "--network=none", env=env)
    why = _whys(rep)["base"]
    assert why["cause"] == "cache-unavailable" and why["detail"].endswith("and no cache was imported")


def test_a_fresh_runner_explains_against_the_registry_record(example: Path, tmp_path: Path) -> None:
    cache = f"{REGISTRY}/sbuild-it/explain-{uuid.uuid4().hex[:10]}"
    _build(example, "a.json", "--stage", "test", "--cache-repo", cache, env={"SBUILD_HOME": str(tmp_path / "a")})
    (example / "tests" / "run.sh").write_text((example / "tests" / "run.sh").read_text() + "\n# edited\n")
    rep = _build(example, "b.json", "--stage", "test", "--cache-repo", cache, env={"SBUILD_HOME": str(tmp_path / "b")})
    assert rep["baseline"]["source"] == "registry"
    why = _whys(rep)["test"]
    assert why["cause"] == "file" and why["paths"] == ["tests/run.sh"]  # the listings came with the record
    assert _whys(rep)["build"] is None
