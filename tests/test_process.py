"""process.diagnose on what docker really prints when it cannot build (messages seen on this machine)."""

from __future__ import annotations

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
