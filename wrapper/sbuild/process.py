"""The one module that runs Docker. Everything else is pure.

Builds run `docker buildx build … --progress=rawjson` as a child in its own process group; its
stderr (the progress stream) is read in chunks and handed to a callback, its stdout (`-q`,
`--output -`) goes straight to ours. Ctrl-C / SIGTERM are forwarded to the whole group, so the
buildx plugin process (a child of `docker`) is never left behind.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import IO, NamedTuple

from .errors import BuildxMissing, DaemonUnreachable, DockerNotFound, SbuildError
from .mask import Masker


def debug(msg: str) -> None:
    """Log to stderr when SBUILD_LOG is set (the logging module is not imported: start-up cost)."""
    if os.environ.get("SBUILD_LOG"):
        sys.stderr.write(f"sbuild: {msg}\n")


def which(name: str) -> str | None:
    """shutil.which without importing shutil (~6 ms with its compression modules)."""
    for d in os.environ.get("PATH", os.defpath).split(os.pathsep):
        p = os.path.join(d or ".", name)
        if os.access(p, os.X_OK) and not os.path.isdir(p):
            return p
    return None

CANCEL_GRACE_S = 10.0  # after a forwarded signal, how long buildx gets to cancel the solve

_BUILDX_MISSING = re.compile(r"'buildx' is not a docker command|unknown command: docker buildx|"
                             r"docker: unknown command.*buildx")
_DAEMON_DOWN = re.compile(r"Cannot connect to the Docker daemon|error during connect|"
                          r"dial unix [^:]+: connect: (no such file|connection refused|permission denied)")


def docker_bin() -> str:
    path = which("docker")
    if path is None:
        raise DockerNotFound("docker CLI not found on PATH: install Docker with buildx "
                             "(on Debian/Ubuntu: scripts/setup-engine)")
    return path


def _daemon_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


class BuildResult(NamedTuple):
    exit_code: int
    signal: int | None = None


def diagnose(exit_code: int, text: str) -> SbuildError | None:
    """Turn what a failed docker call printed into a typed error, for failures that are not the build's."""
    if _BUILDX_MISSING.search(text):
        return BuildxMissing("docker buildx plugin not found: install it (docker-buildx package, "
                             "or run scripts/setup-engine)", evidence=text)
    if _DAEMON_DOWN.search(text):
        addr = _daemon_address()
        how = "DOCKER_HOST" if os.environ.get("DOCKER_HOST") else "the default socket"
        return DaemonUnreachable(f"cannot reach the Docker daemon at {addr} ({how}): is dockerd running? "
                                 "(scripts/setup-engine starts one)", evidence=text)
    return None


def run_build(
    args: Sequence[str],
    on_output: Callable[[str], None],
    *,
    masker: Masker,
    stdin: IO[bytes] | int | None = None,
    env: dict[str, str] | None = None,
    subcommand: Sequence[str] = ("buildx", "build"),
    on_spawn: Callable[[], None] | None = None,
) -> BuildResult:
    """Run `docker buildx build ARGS` (or another buildx subcommand) streaming stderr to on_output."""
    cmd = [docker_bin(), *subcommand, *args]
    debug("run: " + masker.text(shlex.join(cmd)))
    try:
        proc = subprocess.Popen(cmd, stdin=stdin, stderr=subprocess.PIPE, env=env, start_new_session=True)
    except OSError as e:
        raise DockerNotFound(f"cannot run {cmd[0]}: {e.strerror}") from e
    received: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        received.append(signum)
        _signal_group(proc, signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    try:
        if on_spawn is not None:
            on_spawn()  # work that can overlap buildx's own start-up
        while True:
            chunk = os.read(fd, 1 << 16)  # EINTR is retried by Python after `forward` ran
            if not chunk:
                break
            on_output(decoder.decode(chunk))
        tail = decoder.decode(b"", final=True)
        if tail:
            on_output(tail)
        code = _wait(proc, received)
    except BaseException:
        # Anything going wrong in sbuild itself must not leave buildx running.
        _signal_group(proc, signal.SIGTERM)
        _wait(proc, [signal.SIGTERM])
        raise
    finally:
        proc.stderr.close()
        for s, h in old.items():
            signal.signal(s, h)
    if received:
        return BuildResult(code, received[0])
    return BuildResult(code)


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


def _wait(proc: subprocess.Popen[bytes], received: list[int]) -> int:
    if not received:
        return proc.wait()
    try:
        return proc.wait(timeout=CANCEL_GRACE_S)
    except subprocess.TimeoutExpired:
        sys.stderr.write(f"sbuild: buildx did not stop within {CANCEL_GRACE_S:.0f} s of "
                         f"{signal.Signals(received[0]).name}; killing it\n")
        _signal_group(proc, signal.SIGKILL)
        return proc.wait()


def capture(args: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 30) -> str:
    """`docker ARGS`: its stdout ("" when it fails; what it said goes to the debug log)."""
    cmd = [docker_bin(), *args]
    debug("run: " + shlex.join(cmd))
    try:
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **env} if env else None)
    except (OSError, subprocess.TimeoutExpired) as e:
        debug(f"{cmd[1]} failed: {e}")
        return ""
    if cp.returncode != 0:
        debug(f"exit {cp.returncode}: {cp.stderr.strip()[:500]}")
        return ""
    return cp.stdout


def credential_helper(helper: str, server: str) -> tuple[str, str] | None:
    """(user, secret) from `docker-credential-HELPER get`, as the docker CLI asks it; None if it has none."""
    import json

    exe = which(f"docker-credential-{helper}")
    if exe is None:
        debug(f"credential helper docker-credential-{helper} not found")
        return None
    debug(f"run: {exe} get ({server})")
    try:
        cp = subprocess.run([exe, "get"], input=server, capture_output=True, text=True, timeout=30)
        got = json.loads(cp.stdout) if cp.returncode == 0 else {}
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    user, secret = got.get("Username"), got.get("Secret")
    return (str(user), str(secret)) if user and secret else None


def git(args: Sequence[str], cwd: str) -> str | None:
    """`git ARGS` in cwd: its stripped output, or None if git is missing or the command fails."""
    exe = which("git")
    if exe is None:
        return None
    cmd = [exe, *args]
    debug("run: " + shlex.join(cmd))
    try:
        cp = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return cp.stdout.strip() if cp.returncode == 0 else None


def engine_socket() -> str | None:
    """The engine's unix socket, when DOCKER_HOST (or the default) is one and no other docker context is
    chosen: the engine sbuild may ask directly. None elsewhere (then sbuild does without, or asks buildx)."""
    address = _daemon_address()
    if not address.startswith("unix://") or (os.environ.get("DOCKER_CONTEXT") or "default") != "default":
        return None
    return address[len("unix://"):]


def _engine_request(method: str, path: str, timeout: float) -> tuple[bytes, bytes] | None:
    """(status, body) of one Engine API request: plain HTTP/1.0 on the socket (the engine answers whole and
    closes; http.client alone costs 20 ms to import). None when there is no socket to ask or it failed."""
    import socket

    sock_path = engine_socket()
    if sock_path is None:
        return None
    debug(f"engine: {method} {path} (unix://{sock_path})")
    chunks = []
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(sock_path)
            length = "Content-Length: 0\r\n" if method != "GET" else ""
            sock.sendall(f"{method} {path} HTTP/1.0\r\nHost: docker\r\n{length}\r\n".encode())
            while chunk := sock.recv(1 << 16):
                chunks.append(chunk)
    except OSError as e:
        debug(f"engine: {e}")
        return None
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    return (parts[1] if head.startswith(b"HTTP/") and len(parts) > 1 else b""), body


def engine_json(path: str, timeout: float = 10.0) -> object | None:
    """GET `path` from the Docker Engine API (e.g. /images/ID/json): a few ms, against ~30 ms for `docker
    image inspect`. None on anything but a 200 with JSON (the caller then does without)."""
    import json

    got = _engine_request("GET", path, timeout)
    if got is None or got[0] != b"200":
        return None
    try:
        doc: object = json.loads(got[1])
        return doc
    except ValueError as e:
        debug(f"engine: {e}")
        return None


def builder_ready(builder: str | None) -> bool:
    """Whether the builder answers: `docker buildx inspect` shows a node "Status: running" and no error
    (it exits 0 either way)."""
    out = capture(["buildx", "inspect", *(["--builder", builder] if builder else [])], timeout=15)
    lines = [ln.strip() for ln in out.splitlines()]
    return any(ln.startswith("Status:") and ln.endswith("running") for ln in lines) and \
        not any(ln.startswith("Error:") for ln in lines)


def engine_tag(image: str, ref: str) -> bool:
    """Name an image in the engine (`docker tag`, through the Engine API: a few ms against ~30 ms for the
    CLI). False when there is no engine socket to ask, or it said no."""
    import urllib.parse

    name, _, digest = ref.partition("@")
    if digest:
        return False
    repo, tag = name, "latest"
    if ":" in name.rsplit("/", 1)[-1]:
        repo, tag = name.rsplit(":", 1)
    got = _engine_request("POST", f"/images/{image}/tag?{urllib.parse.urlencode({'repo': repo, 'tag': tag})}", 30)
    return got is not None and got[0] == b"201"
