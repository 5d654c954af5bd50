"""`sbuild doctor` against real engines: all green here; the fix named where a check fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import EXAMPLE, REGISTRY, Registry, sbuild

pytestmark = pytest.mark.usefixtures("registry")
NAMES = ["docker CLI", "buildx", "engine", "builder", "cache export", "cache registry", "branch", "config"]


def _doctor(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    cp = sbuild("doctor", "--json", *args, str(EXAMPLE), env=env)
    return cp.returncode, json.loads(cp.stdout)


def test_a_ready_machine_passes_every_check() -> None:
    code, d = _doctor("--cache-repo", f"{REGISTRY}/sbuild-it/doctor")
    assert code == 0 and d["ok"] is True, d
    assert list(d) == ["schema_version", "ok", "checks"] and d["schema_version"] == 1
    assert [c["name"] for c in d["checks"]] == NAMES
    assert all(list(c) == ["name", "ok", "detail", "fix"] for c in d["checks"])
    assert "containerd image store" in next(c for c in d["checks"] if c["name"] == "engine")["detail"]


def test_an_engine_that_is_not_there(tmp_path: Path) -> None:
    code, d = _doctor(env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert code == 1 and d["ok"] is False
    engine = next(c for c in d["checks"] if c["name"] == "engine")
    assert not engine["ok"] and engine["fix"].startswith("start dockerd")


def test_a_builder_that_cannot_export_cache(classic_daemon: str) -> None:
    code, d = _doctor(env={"DOCKER_HOST": classic_daemon})
    export = next(c for c in d["checks"] if c["name"] == "cache export")
    assert code == 1 and not export["ok"] and "containerd-snapshotter" in export["fix"]


def test_a_cache_registry_that_is_down(private_registry: Registry) -> None:
    private_registry.stop()
    code, d = _doctor("--cache-repo", f"{private_registry.addr}/x/cache")
    reg = next(c for c in d["checks"] if c["name"] == "cache registry")
    assert code == 1 and not reg["ok"] and f"docker login {private_registry.addr}" in reg["fix"]
