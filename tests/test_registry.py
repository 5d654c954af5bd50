"""sbuild's own registry calls (registry.py) against loopback servers that ask for credentials the way
registries do: HTTP Basic, and the bearer-token flow (401 with WWW-Authenticate: Bearer realm=…, a token
fetched from the realm with the user's Basic credentials). Credentials come from Docker's config.json."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sbuild import registry

USER, SECRET = "ci", "s3cret"
BASIC = "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()


class _Server:
    def __init__(self, mode: str) -> None:
        self.mode = mode  # "basic" or "bearer"
        self.seen: list[tuple[str, str, str | None]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, code: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                auth = self.headers.get("Authorization")
                outer.seen.append((self.command, self.path, auth))
                if self.path.startswith("/token"):
                    ok = auth == BASIC and "scope=repository%3Ateam%2Fcache%3Apull" in self.path
                    return self._reply(200 if ok else 401, {}, json.dumps({"token": "tok"}).encode() if ok else b"")
                want = BASIC if outer.mode == "basic" else "Bearer tok"
                if auth != want:
                    challenge = 'Basic realm="r"' if outer.mode == "basic" else \
                        (f'Bearer realm="http://{self.headers["Host"]}/token",service="reg",'
                         'scope="repository:team/cache:pull"')
                    return self._reply(401, {"WWW-Authenticate": challenge})
                if self.path == "/v2/team/cache/manifests/lint-main":
                    return self._reply(200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, b"{}")
                return self._reply(404)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.addr = f"127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    return tmp_path


@pytest.fixture(params=["basic", "bearer"])
def server(request: pytest.FixtureRequest) -> Iterator[_Server]:
    s = _Server(request.param)
    yield s
    s.close()


def test_credentials_from_docker_config_answer_the_registry_s_challenge(server: _Server, docker_config: Path) -> None:
    (docker_config / "config.json").write_text(json.dumps({"auths": {server.addr: {"auth": BASIC.split()[1]}}}))
    client = registry.Client(server.addr)
    assert client.exists("team/cache", "lint-main") is True
    assert client.exists("team/cache", "test-main") is False  # 404: not there
    # The credentials went where asked: Basic to the registry, or to the token realm for a bearer token.
    if server.mode == "bearer":
        assert any(p.startswith("/token") and a == BASIC for _, p, a in server.seen)
        assert all(a in (None, "Bearer tok") for _, p, a in server.seen if p.startswith("/v2/"))


def test_without_credentials_a_challenge_is_a_clear_error(server: _Server, docker_config: Path) -> None:
    (docker_config / "config.json").write_text("{}")
    with pytest.raises(registry.RegistryError, match=r"401|not authorized"):
        registry.Client(server.addr).exists("team/cache", "lint-main")


@pytest.mark.parametrize(("ref", "parts"), [
    ("127.0.0.1:5000/team/cache:lint-main", ("127.0.0.1:5000", "team/cache", "lint-main")),
    ("registry.example.com/app", ("registry.example.com", "app", "latest")),
    ("localhost/app:1", ("localhost", "app", "1")),
    ("team/app:2", ("registry-1.docker.io", "team/app", "2")),
    ("busybox", ("registry-1.docker.io", "library/busybox", "latest")),
])
def test_references_split_as_docker_splits_them(ref: str, parts: tuple[str, str, str]) -> None:
    assert tuple(registry.split_ref(ref)) == parts
