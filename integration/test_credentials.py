"""sbuild's own registry calls (the branch's cache ref, the history record, cache ls) with Docker's
credentials, as `docker push` finds them: `auths` in config.json, or a credential helper; against a real
registry with htpasswd auth on."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REGISTRY, Registry, report, sbuild

pytestmark = [pytest.mark.usefixtures("registry"), pytest.mark.one_pair]
USER, SECRET = "ci-bot", "s3cret-" + uuid.uuid4().hex[:8]


@pytest.fixture
def auth_registry(tmp_path: Path, engine: None) -> Iterator[Registry]:
    if shutil.which("htpasswd") is None:
        pytest.fail("htpasswd missing: scripts/setup-engine installs apache2-utils")
    pw = tmp_path / "htpasswd"
    subprocess.run(["htpasswd", "-Bbc", str(pw), USER, SECRET], check=True, capture_output=True)
    root = tmp_path / "reg"
    root.mkdir()
    reg = Registry(root, htpasswd=pw)
    yield reg
    reg.stop()


def _config(tmp_path: Path, content: dict) -> Path:
    """A DOCKER_CONFIG of the test's own: this pair's (its buildx plugin included) plus `content`."""
    src = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    dst = tmp_path / "docker-config"
    dst.mkdir()
    for sub in ("cli-plugins", "buildx"):
        if (src / sub).exists():
            (dst / sub).symlink_to(src / sub)
    (dst / "config.json").write_text(json.dumps(content))
    return dst


def _build(example: Path, tmp_path: Path, cache: str, env: dict[str, str]) -> dict:
    r = tmp_path / f"r-{uuid.uuid4().hex[:6]}.json"
    cp = sbuild("--stage", "test", "--branch", "main", "--cache-repo", cache, "--build-arg",
                f"BASE_IMAGE={REGISTRY}/sbuild/busybox:latest",
                "--report", str(r), str(example), env=env)
    assert cp.returncode == 0, cp.stderr[-3000:]
    rep = report(r)
    rep["_stderr"] = cp.stderr
    return rep


@pytest.mark.parametrize("how", ["auths", "helper"])
def test_sbuild_s_registry_calls_use_docker_s_credentials(example: Path, tmp_path: Path, auth_registry: Registry,
                                                          how: str) -> None:
    host = auth_registry.addr
    if how == "auths":
        cfg = _config(tmp_path, {"auths": {host: {"auth": base64.b64encode(f"{USER}:{SECRET}".encode()).decode()}}})
        env = {"DOCKER_CONFIG": str(cfg)}
    else:  # a credential helper, as `docker-credential-<name> get` answers it
        cfg = _config(tmp_path, {"credHelpers": {host: "sbuildtest"}})
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        helper = bin_dir / "docker-credential-sbuildtest"
        answer = json.dumps({"ServerURL": host, "Username": USER, "Secret": SECRET})
        helper.write_text(f"#!/bin/sh\nread server\n[ \"$server\" = \"{host}\" ] || exit 1\necho '{answer}'\n")
        helper.chmod(0o755)
        env = {"DOCKER_CONFIG": str(cfg), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env["SBUILD_HOME"] = str(tmp_path / "home")
    cache = f"{host}/sbuild-it/auth-{uuid.uuid4().hex[:8]}"
    rep = _build(example, tmp_path, cache, env)
    assert "record not pushed" not in rep["_stderr"] and "warning" not in rep["_stderr"], rep["_stderr"][-2000:]
    assert rep["cache"]["exported_to"]  # BuildKit pushed the cache with the same credentials
    cp = sbuild("cache", "ls", "--cache-repo", cache, "--json", cwd=example, env=env)
    assert cp.returncode == 0, cp.stderr
    [entry] = json.loads(cp.stdout)["entries"]
    assert entry["tag"] == "test-main" and entry["branch"] == "main"  # read from the record sbuild pushed
    # A fresh runner with the same credentials gets its baseline from the registry.
    rep2 = _build(example, tmp_path, cache, {**env, "SBUILD_HOME": str(tmp_path / "home2")})
    assert rep2["baseline"]["source"] == "registry"
    assert SECRET not in json.dumps(rep2) and SECRET not in (tmp_path / "home2" / "history.db").read_bytes().decode(
        "latin-1")


def test_without_credentials_one_clear_line(example: Path, tmp_path: Path, auth_registry: Registry) -> None:
    cfg = _config(tmp_path, {})
    cp = sbuild("cache", "ls", "--cache-repo", f"{auth_registry.addr}/sbuild-it/none", cwd=example,
                env={"DOCKER_CONFIG": str(cfg)})
    assert cp.returncode == 1
    assert cp.stderr.count("\n") == 1 and "not authorized" in cp.stderr and f"docker login {auth_registry.addr}" \
        in cp.stderr
