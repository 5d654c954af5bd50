"""Tags from git for the deploy stage only, and nothing pushed when a stage failed."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from .conftest import REGISTRY, inspect, sbuild

pytestmark = pytest.mark.usefixtures("registry")

# CI's own branch variables would win over git: the test's repository decides here.
NO_CI_BRANCH = {v: "" for v in ("SBUILD_BRANCH", "GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME",
                                "BUILDKITE_BRANCH", "BRANCH_NAME", "GIT_BRANCH", "SBUILD_DEFAULT_BRANCH")}
ACCEPT = ", ".join(["application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json",
                    "application/vnd.docker.distribution.manifest.v2+json"])


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def _repo(example: Path, image: str) -> str:
    (example / "sbuild.toml").write_text(
        f'image = "{image}"\n'
        'tags = ["{branch}", "sha-{short_sha}", "{version}", "{major}.{minor}", "{major}", "latest"]\n')
    _git(example, "init", "-q", "-b", "main")
    _git(example, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "add", "-A")
    _git(example, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "x")
    _git(example, "checkout", "-q", "-b", "feature/x")
    _git(example, "tag", "v1.2.3")
    return _git(example, "rev-parse", "HEAD")


def _expected(image: str, sha: str) -> list[str]:
    return [f"{image}:{t}" for t in ("feature-x", f"sha-{sha[:7]}", "1.2.3", "1.2", "1", "latest")]


def _registry_tags(name: str) -> list[str]:
    try:
        with urllib.request.urlopen(f"http://{REGISTRY}/v2/{name}/tags/list", timeout=5) as r:
            return sorted(json.loads(r.read())["tags"] or [])
    except urllib.error.HTTPError as e:
        assert e.code == 404
        return []


def _digest(name: str, tag: str) -> str:
    req = urllib.request.Request(f"http://{REGISTRY}/v2/{name}/manifests/{tag}", method="HEAD",
                                 headers={"Accept": ACCEPT})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.headers["Docker-Content-Digest"]


def _catalog() -> list[str]:
    """Every repository in the registry (it pages its answer: follow the Link header)."""
    repos: list[str] = []
    url: str | None = f"http://{REGISTRY}/v2/_catalog?n=100"
    while url:
        with urllib.request.urlopen(url, timeout=5) as r:
            repos += json.loads(r.read())["repositories"]
            link = r.headers.get("Link")
        url = f"http://{REGISTRY}{link.split(';')[0].strip('<> ')}" if link else None
    return repos


def test_rules_from_git_tag_only_the_deploy_image(example: Path, tmp_path: Path) -> None:
    name = f"sbuild-it/app-{uuid.uuid4().hex[:8]}"
    image = f"{REGISTRY}/{name}"
    sha = _repo(example, image)
    r = tmp_path / "r.json"
    cp = sbuild("--stage", "test", "--stage", "deploy", "--report", str(r), str(example), env=NO_CI_BRANCH)
    assert cp.returncode == 0, cp.stderr[-3000:]
    rep = json.loads(r.read_text())
    assert rep["tags"] == _expected(image, sha)
    assert rep["pushed"] == []
    ids = {inspect(ref)["Id"] for ref in rep["tags"]}
    assert len(ids) == 1
    img = inspect(rep["tags"][0])
    assert img["Config"]["Entrypoint"] == ["/usr/local/bin/app"]  # the deploy stage's image, not test's

    # --stage test alone tags nothing, and says so
    cp = sbuild("--stage", "test", "--report", str(r), str(example), env=NO_CI_BRANCH)
    assert cp.returncode == 0
    assert "not applied: only the deploy stage" in cp.stderr
    assert json.loads(r.read_text())["tags"] == []


def test_failing_test_stage_pushes_nothing(example: Path, tmp_path: Path) -> None:
    name = f"sbuild-it/app-{uuid.uuid4().hex[:8]}"
    _repo(example, f"{REGISTRY}/{name}")
    (example / "tests" / "run.sh").write_text("echo 'FAIL - on purpose'; exit 1\n")
    r = tmp_path / "r.json"
    cp = sbuild("--stage", "test", "--stage", "deploy", "--push", "--report", str(r), str(example),
                env=NO_CI_BRANCH)
    assert cp.returncode == 1
    rep = json.loads(r.read_text())
    assert rep["tags"] == [] and rep["pushed"] == []
    assert name not in _catalog()
    assert _registry_tags(name) == []


def test_passing_run_pushes_every_tag_with_one_digest(example: Path, tmp_path: Path) -> None:
    name = f"sbuild-it/app-{uuid.uuid4().hex[:8]}"
    image = f"{REGISTRY}/{name}"
    sha = _repo(example, image)
    r = tmp_path / "r.json"
    cp = sbuild("--stage", "lint,test,deploy", "--push", "--report", str(r), str(example), env=NO_CI_BRANCH)
    assert cp.returncode == 0, cp.stderr[-3000:]
    rep = json.loads(r.read_text())
    assert rep["pushed"] == _expected(image, sha)
    assert _registry_tags(name) == sorted(["feature-x", f"sha-{sha[:7]}", "1.2.3", "1.2", "1", "latest"])
    assert len({_digest(name, t) for t in _registry_tags(name)}) == 1


def test_invalid_tag_fails_before_the_build(example: Path) -> None:
    # Before the build (no engine is reachable here), with buildx's exit code for a bad -t (1).
    cp = sbuild("-t", "Bad/Name:1", str(example), env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert cp.returncode == 1
    assert cp.stderr == 'ERROR: invalid tag "Bad/Name:1": repository name must be lowercase\n'


def test_config_errors_are_usage_errors(example: Path) -> None:
    (example / "sbuild.toml").write_text("retries = 'many'\n")
    cp = sbuild(str(example))
    assert cp.returncode == 2
    assert cp.stderr.startswith(f"error: {example}/sbuild.toml: retries must be a whole number")
