"""`sbuild doctor`: is this machine ready to build, and if not, the one thing to do about each problem.

The place where python-on-whales (builder facts: `docker buildx inspect`, parsed) and the docker SDK
(engine facts: the Engine API's /info) earn their import: both load only here, never on a build's path.
Checks run in order; one that depends on a failed one is skipped and says so.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NamedTuple

DOCTOR_SCHEMA = 1


class Check(NamedTuple):
    name: str
    ok: bool
    detail: str
    fix: str | None = None  # one line: what to do (None when ok)


def _docker_cli() -> Check:
    from .process import which

    exe = which("docker")
    if exe is None:
        return Check("docker CLI", False, "not found on PATH",
                     "install Docker (on Debian/Ubuntu: scripts/setup-engine)")
    from .process import capture

    version = capture(["--version"]).strip()  # the client's own: answers without an engine
    return Check("docker CLI", bool(version), f"{exe}: {version or 'does not run'}",
                 None if version else "reinstall Docker's CLI")


def _buildx() -> Check:
    from .errors import SbuildError
    from .installed import buildx

    try:
        b = buildx()
    except SbuildError as e:
        return Check("buildx", False, e.message, "install the docker-buildx plugin (scripts/setup-engine)")
    return Check("buildx", True, b.version_text)


def _engine() -> tuple[Check, dict[str, Any] | None]:
    import docker  # type: ignore[import-untyped]

    try:
        client = docker.from_env(timeout=10)
        info = client.info()
    except Exception as e:
        where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        return Check("engine", False, f"{where}: {str(e).splitlines()[0][:160]}",
                     "start dockerd (scripts/setup-engine), or set DOCKER_HOST to a running engine"), None
    store = dict(info.get("DriverStatus") or []).get("driver-type", "")
    return Check("engine", True, f"Docker Engine {info.get('ServerVersion')}, storage {info.get('Driver')}"
                 + (" (containerd image store)" if "containerd" in store else "")), info


def _builder(name: str | None) -> tuple[Check, Any]:
    from python_on_whales import DockerClient
    from python_on_whales.exceptions import DockerException

    try:
        b = DockerClient().buildx.inspect(name)
    except DockerException as e:
        return Check("builder", False, f"{name or 'default'}: {str(e).strip().splitlines()[-1][:160]}",
                     "docker buildx ls lists the builders; pick one with --builder or BUILDX_BUILDER"), None
    nodes = b.nodes or []
    if not b.driver or not any(n.status for n in nodes):
        return Check("builder", False, f"{b.name}: does not answer (its engine is not reachable)",
                     f"start the builder's engine, then: docker buildx inspect --bootstrap {b.name}"), None
    bad = [n for n in nodes if n.status != "running"]
    plats = sorted({str(p) for n in nodes for p in (n.platforms or [])})
    version = next((n.version for n in nodes if getattr(n, "version", None)), "?")
    detail = f"{b.name} (driver {b.driver}, BuildKit {version}, {len(plats)} platforms: {', '.join(plats[:4])}" + \
        (", …" if len(plats) > 4 else "") + ")"
    if bad or not nodes:
        return Check("builder", False, detail + f"; node {bad[0].name if bad else '?'} is "
                     f"{bad[0].status if bad else 'missing'}",
                     f"docker buildx inspect --bootstrap {b.name}"), b
    return Check("builder", True, detail), b


def _cache_export(builder: Any, info: dict[str, Any] | None) -> Check:
    if builder is None:
        return Check("cache export", False, "skipped: no builder", "fix the builder first")
    if builder.driver != "docker":
        return Check("cache export", True, f"the {builder.driver} driver exports cache")
    store = dict((info or {}).get("DriverStatus") or []).get("driver-type", "")
    if "containerd" in store:
        return Check("cache export", True, "docker driver with the containerd image store")
    return Check("cache export", False, "the docker driver without the containerd image store cannot export cache",
                 'set {"features": {"containerd-snapshotter": true}} in /etc/docker/daemon.json and restart '
                 "dockerd, or use a docker-container builder (docker buildx create --use)")


def _cache_repo(repo: str | None) -> Check | None:
    if not repo:
        return None
    from . import registry

    client, path = registry.repository(repo)
    try:
        client.tags(path)
        client.put_blob(path, b"sbuild doctor: can this registry take a push?\n")
    except registry.RegistryError as e:
        return Check("cache registry", False, f"{repo}: {e}",
                     f"check the address and `docker login {client.host}` (push rights on {path})")
    return Check("cache registry", True, f"{repo}: reachable, accepts pushes")


def _branch(cmd: Any) -> Check:
    from . import gitinfo

    given = cmd.value("branch")
    if given:
        return Check("branch", True, f"{given} (--branch)")
    for var in gitinfo.BRANCH_ENV:
        if os.environ.get(var):
            return Check("branch", True, f"{os.environ[var].removeprefix('origin/')} (${var})")
    where = cmd.context if os.path.isdir(cmd.context) else "."
    b = gitinfo.current_branch(where)
    default = gitinfo.default_branch(where)
    if b:
        return Check("branch", True, f"{b} (git), default branch {default}")
    return Check("branch", True, f"none (no git branch here: caches use the default branch {default})")


def _config(cmd: Any) -> Check:
    from . import config

    path = cmd.dockerfile
    found = config.find(os.path.dirname(path) or ".", cmd.context) if path else None
    if found is None:
        return Check("config", True, "no sbuild.toml or [tool.sbuild] (flags only)")
    try:
        config.load(os.path.dirname(path or "") or ".", cmd.context)
    except Exception as e:
        return Check("config", False, f"{found}: {e}", f"fix {found}")
    return Check("config", True, found)


def run(cmd: Any) -> list[Check]:
    """Every check, in order."""
    checks: list[Check] = []

    def add(c: Check | None) -> None:
        if c is not None:
            checks.append(c)

    cli = _docker_cli()
    add(cli)
    add(_buildx())
    engine, info = _engine() if cli.ok else (Check("engine", False, "skipped: no docker CLI", "install Docker"),
                                              None)
    add(engine)
    builder_name = cmd.value("builder") or os.environ.get("BUILDX_BUILDER")
    builder_check, builder = _builder(builder_name) if cli.ok else (
        Check("builder", False, "skipped: no docker CLI", "install Docker"), None)
    add(builder_check)
    add(_cache_export(builder, info))
    add(_cache_repo(cmd.value("cache-repo")))
    add(_branch(cmd))
    add(_config(cmd))
    return checks


def to_json(checks: list[Check]) -> dict[str, Any]:
    """The contract of `sbuild doctor --json`."""
    return {"schema_version": DOCTOR_SCHEMA, "ok": all(c.ok for c in checks), "checks": [c._asdict() for c in checks]}


def text(checks: list[Check], mark: Callable[[bool], str] = lambda ok: "ok  " if ok else "FAIL") -> str:
    lines = []
    for c in checks:
        lines.append(f"{mark(c.ok)} {c.name}: {c.detail}")
        if c.fix:
            lines.append(f"     fix: {c.fix}")
    return "\n".join(lines) + "\n"
