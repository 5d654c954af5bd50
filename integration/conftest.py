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
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.helpers import json_objects  # noqa: F401  (re-exported: one reader of rawjson for all tests)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "pipeline"
REGISTRY = os.environ.get("SBUILD_REGISTRY", "127.0.0.1:5000")
BASE_IMAGE = os.environ.get("SBUILD_BASE_IMAGE", "localhost/sbuild-busybox:latest")


@pytest.fixture(autouse=True)
def _own_history(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own history store: no baseline leaks from one test into another, nothing into ~."""
    monkeypatch.setenv("SBUILD_HOME", str(tmp_path_factory.mktemp("sbuild-home")))


def _missing(what: str) -> None:
    msg = f"{what}: run scripts/setup-engine first"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def engine() -> Iterator[None]:
    cp = subprocess.run(["docker", "info", "-f", "{{.ServerVersion}}"], capture_output=True, text=True)
    if cp.returncode != 0:
        _missing(f"no Docker engine ({cp.stderr.strip()[:200]})")
    cp = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True, text=True)
    if cp.returncode != 0:
        _missing(f"base image {BASE_IMAGE} missing")
    before = set(_images())
    yield
    # The engine outlives the run (CI runs on it again): the names the tests gave (every one has an
    # `sbuild-it/` path) and the images they left unnamed go, else each run adds ~50 images and the
    # engine's naming work grows with them. The build cache stays: it is shared, and bounded by BuildKit.
    left = [ref for ref, _ in _images() if "sbuild-it/" in ref]
    if left:
        subprocess.run(["docker", "image", "rm", "-f", *left], capture_output=True)
    dangling = [i for ref, i in _images() if ref == "<none>:<none>" and (ref, i) not in before]
    if dangling:
        subprocess.run(["docker", "image", "rm", *dangling], capture_output=True)


def _images() -> list[tuple[str, str]]:
    """(repository:tag, ID) of every image in the engine."""
    out = subprocess.run(["docker", "image", "ls", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
                         capture_output=True, text=True).stdout
    return [(ref, i) for ref, _, i in (ln.partition(" ") for ln in out.splitlines())]


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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Registry:
    """A private docker-registry on 127.0.0.1 that a test may stop."""

    def __init__(self, root: Path, htpasswd: Path | None = None) -> None:
        import shutil as _sh

        exe = _sh.which("docker-registry")
        if exe is None:
            _missing("docker-registry not installed")
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        cfg = root / "registry.yml"
        auth = f"auth:\n  htpasswd:\n    realm: sbuild-test\n    path: {htpasswd}\n" if htpasswd else ""
        cfg.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {root}/data\n"
                       f"http:\n  addr: {self.addr}\n{auth}")
        self.proc = subprocess.Popen([str(exe), "serve", str(cfg)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://{self.addr}/v2/", timeout=1):
                    return
            except urllib.error.HTTPError as e:
                if e.code == 401:  # up, and asking for credentials
                    return
            except Exception:
                import time

                time.sleep(0.05)
        raise AssertionError("private registry did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def private_registry(tmp_path: Path, engine: None) -> Iterator[Registry]:
    reg = Registry(tmp_path)
    yield reg
    reg.stop()


def wait_for_dockerd(host: str, log: Path, what: str) -> None:
    """Until `docker info` answers on host (30 s), else fail with the daemon's log."""
    import time

    for _ in range(150):
        if subprocess.run(["docker", "-H", host, "info"], capture_output=True).returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not start: " + log.read_text()[-2000:])


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 30) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def unmount_under(root: Path) -> None:
    """dockerd mounts its data-root privately; one that died (or was stopped) may leave the mount behind."""
    with open("/proc/mounts") as f:
        mounts = [line.split()[1] for line in f if line.split()[1].startswith(str(root))]
    for m in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", m], check=False, capture_output=True)


def load_base_image(host: str) -> None:
    """The base image, from this pair's engine into another engine (`docker save | docker load`)."""
    save = subprocess.Popen(["docker", "save", BASE_IMAGE], stdout=subprocess.PIPE)
    subprocess.run(["docker", "-H", host, "load", "-q"], stdin=save.stdout, check=True, capture_output=True)
    save.wait()


def short_dir(prefix: str) -> Path:
    """A directory under /tmp with a short path: containerd's sockets live under a dockerd's exec-root, and
    a unix socket path must stay under 104 bytes."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


class Dockerd:
    """A dockerd of a test's own (own data-root, exec-root, socket, network namespace) without the containerd
    image store, which a test may stop and start again. It runs in a network namespace of its own:
    `dockerd --bridge=none` deletes the host's docker0 at start-up, which would break the main engine's RUN
    steps. It has only the base image; its builds need --network=none."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.host = f"unix://{root}/docker.sock"
        self.ns = f"sbuild-dockerd-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        subprocess.run(["ip", "-n", self.ns, "link", "set", "lo", "up"], check=True)
        (root / "daemon.json").write_text("{}")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # nsenter --net only: `ip netns exec` would also remount /sys and hide the cgroup mounts dockerd needs.
        self.proc = subprocess.Popen(
            ["nsenter", f"--net=/var/run/netns/{self.ns}", "dockerd", "--host", self.host,
             "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
             "--pidfile", str(self.root / "docker.pid"), "--bridge=none", "--iptables=false", "--ip6tables=false",
             "--config-file", str(self.root / "daemon.json")],
            stdout=subprocess.DEVNULL, stderr=(self.root / "log").open("a"), start_new_session=True)
        wait_for_dockerd(self.host, self.root / "log", "test dockerd")

    def stop(self) -> None:
        stop_process(self.proc)

    def close(self) -> None:
        self.stop()
        subprocess.run(["ip", "netns", "del", self.ns], check=False)
        unmount_under(self.root)
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def own_dockerd(prefix: str) -> Iterator[Dockerd]:
    d = Dockerd(short_dir(prefix))
    try:
        d.start()
        load_base_image(d.host)
        yield d
    finally:
        d.close()


@pytest.fixture(scope="session")
def classic_daemon(engine: None) -> Iterator[str]:
    """A second dockerd WITHOUT the containerd image store: its default builder cannot export cache.
    Yields its DOCKER_HOST."""
    with own_dockerd("sbc-") as d:
        yield d.host


@pytest.fixture
def restartable_daemon(engine: None) -> Iterator[Dockerd]:
    """A dockerd the test may stop and start again: the builder that goes away mid-build."""
    with own_dockerd("sbd-") as d:
        yield d


SID_HOST = "unix:///run/sbuild-engine28/docker.sock"  # scripts/setup-engine's second pair
SID_PREFIX = "/opt/sbuild-sid"


class Runner:
    """Another CI runner: an empty dockerd with the containerd image store, in the host's network namespace
    on a bridge of its own (`--iptables=false`: docker0 and the host's rules are left alone), so it reaches
    the registry on 127.0.0.1 and nothing else of the first engine. It shares only the registry."""

    def __init__(self) -> None:
        self.root = short_dir("sbr-")
        self.host = f"unix://{self.root}/docker.sock"
        self.bridge = f"sbrun{os.getpid() % 10000}"
        subprocess.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", f"10.199.{40 + os.getpid() % 50}.1/24", "dev", self.bridge], check=True)
        subprocess.run(["ip", "link", "set", self.bridge, "up"], check=True)
        (self.root / "daemon.json").write_text(json.dumps({"features": {"containerd-snapshotter": True}}))
        # The pair's own Engine: the second pair's dockerd (and its containerd) when that pair is under test.
        env = dict(os.environ)
        dockerd = "dockerd"
        if os.environ.get("DOCKER_HOST") == SID_HOST and Path(SID_PREFIX, "usr/sbin/dockerd").exists():
            dockerd = f"{SID_PREFIX}/usr/sbin/dockerd"
            env["PATH"] = f"{SID_PREFIX}/usr/sbin:{SID_PREFIX}/usr/bin:{env['PATH']}"
        self.proc = subprocess.Popen(
            [dockerd, "--host", self.host, "--data-root", str(self.root / "data"), "--exec-root",
             str(self.root / "exec"), "--pidfile", str(self.root / "docker.pid"), "--bridge", self.bridge,
             "--iptables=false", "--ip6tables=false", "--config-file", str(self.root / "daemon.json")],
            stdout=subprocess.DEVNULL, stderr=(self.root / "log").open("w"), start_new_session=True, env=env)
        try:
            wait_for_dockerd(self.host, self.root / "log", "runner dockerd")
        except AssertionError:
            self.close()
            raise

    def close(self) -> None:
        stop_process(self.proc)
        unmount_under(self.root)
        subprocess.run(["ip", "link", "del", self.bridge], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def prune(self) -> None:
        """Empty this engine's build cache: its own, no other test's."""
        subprocess.run(["docker", "-H", self.host, "buildx", "prune", "-af"], check=True, capture_output=True)


@pytest.fixture
def second_runner(registry: str) -> Iterator[Runner]:
    r = Runner()
    try:
        yield r
    finally:
        r.close()


def report(path: Path) -> dict:
    return json.loads(path.read_text())

