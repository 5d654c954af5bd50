"""Fixtures of the fast tests: every test its own history store (nothing is written to the user's
~/.local/state), and `fake`: the fake `docker` on PATH (tests/fakedocker/docker)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from sbuild import installed

from .helpers import FAKE, Fake


@pytest.fixture(autouse=True)
def _own_history(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBUILD_HOME", str(tmp_path_factory.mktemp("sbuild-home")))


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fake]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").symlink_to(FAKE / "docker")
    config = tmp_path / "docker-config"
    (config / "cli-plugins").mkdir(parents=True)
    (config / "cli-plugins" / "docker-buildx").symlink_to(FAKE / "docker")  # builds run it standalone
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(tmp_path / "docker-calls.jsonl"))
    monkeypatch.setenv("FAKE_DOCKER_DATA", str(FAKE.parent / "data"))  # for the copies Fake.buildx makes
    for var in ("GITHUB_STEP_SUMMARY", "BUILDKIT_PROGRESS", "DOCKER_BUILD_SUMMARY", "SBUILD_SUMMARY",
                "FAKE_DOCKER_EXIT", "FAKE_BUILDX", "DOCKER_CONTEXT", "BUILDX_BUILDER"):
        monkeypatch.delenv(var, raising=False)
    # No engine for the fast tests: what sbuild asks an engine directly (an image's size, a tag) finds none.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    installed._memo = None
    f = Fake(tmp_path, monkeypatch)
    f.mp_config = str(config)
    yield f
    installed._memo = None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from .helpers import EXAMPLES

    if EXAMPLES[0]:
        terminalreporter.write_line(f"hypothesis: {EXAMPLES[0]} generated examples run by the property tests")
