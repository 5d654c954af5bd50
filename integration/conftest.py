"""Integration tests: the real engine (dockerd + BuildKit) and the real registry on 127.0.0.1:5000.

`scripts/setup-engine` provides both. Under CI (CI=true) a missing engine fails the tests; on a
developer's machine it skips them with the command to run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "pipeline"
REGISTRY = os.environ.get("SBUILD_REGISTRY", "127.0.0.1:5000")
BASE_IMAGE = os.environ.get("SBUILD_BASE_IMAGE", "sbuild-busybox:latest")


def _missing(what: str) -> None:
    msg = f"{what}: run scripts/setup-engine first"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def engine() -> None:
    cp = subprocess.run(["docker", "info", "-f", "{{.ServerVersion}}"], capture_output=True, text=True)
    if cp.returncode != 0:
        _missing(f"no Docker engine ({cp.stderr.strip()[:200]})")
    cp = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True, text=True)
    if cp.returncode != 0:
        _missing(f"base image {BASE_IMAGE} missing")


@pytest.fixture(scope="session")
def registry(engine: None) -> str:
    try:
        with urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=2) as r:
            assert r.status == 200
    except Exception as e:
        _missing(f"no registry on {REGISTRY} ({e})")
    return REGISTRY


def sbuild_cmd() -> list[str]:
    exe = shutil.which("sbuild")
    return [exe] if exe else [sys.executable, "-m", "sbuild"]


def sbuild(*args: str, cwd: Path | str | None = None, input: bytes | None = None,
           env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "BUILDKIT_PROGRESS": "plain", **(env or {})}
    return subprocess.run([*sbuild_cmd(), *args], cwd=cwd, input=input.decode() if input else None,
                          capture_output=True, text=True, env=full_env, timeout=timeout)


def docker(*args: str, check: bool = True, input: str | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BUILDKIT_PROGRESS": "plain"}
    cp = subprocess.run(["docker", *args], capture_output=True, text=True, input=input, env=env, timeout=timeout)
    if check and cp.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({cp.returncode}):\n{cp.stderr[-3000:]}")
    return cp


def inspect(ref: str) -> dict:
    return json.loads(docker("image", "inspect", ref).stdout)[0]


@pytest.fixture
def tag_prefix() -> Iterator[str]:
    """A unique image name for one test; its images are removed afterwards."""
    name = f"sbuild-it/{uuid.uuid4().hex[:10]}"
    yield name
    refs = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", name, check=False).stdout.split()
    if refs:
        docker("image", "rm", "-f", *refs, check=False)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A private copy of examples/pipeline that a test may change."""
    dst = tmp_path / "pipeline"
    shutil.copytree(EXAMPLE, dst)
    return dst
