"""A small OCI distribution client for sbuild's own registry calls (the merged cache ref).

Credentials come from Docker's config as `docker push` finds them: `auths` in `$DOCKER_CONFIG/config.json`,
then `credHelpers` / `credsStore` (`docker-credential-<name> get`, run by process.py), with HTTP Basic or
the bearer-token flow the registry asks for. Loopback registries speak plain HTTP (as Docker allows them);
others HTTPS, falling back to HTTP only where the server does not speak TLS (as BuildKit does).
Imported only by builds that use a registry cache: urllib and ssl stay off a plain build's start-up path.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import NamedTuple

MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json",
                  "application/vnd.docker.distribution.manifest.list.v2+json")
TIMEOUT_S = 30.0


class RegistryError(Exception):
    """A registry call that failed: the message names the call and what the registry said."""


class Ref(NamedTuple):
    host: str
    repo: str
    tag: str


def split_ref(ref: str) -> Ref:
    """"127.0.0.1:5000/team/app-cache:lint-main" -> Ref(host, "team/app-cache", "lint-main"). Docker's
    rules: a first part with a dot, a colon or "localhost" is a registry host, else Docker Hub."""
    name, tag = ref, "latest"
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        name, tag = ref[:colon], ref[colon + 1:]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return Ref(first, rest, tag)
    return Ref("registry-1.docker.io", name if "/" in name else f"library/{name}", tag)


def repository(name: str) -> tuple[Client, str]:
    """A client for the registry of a repository reference ("127.0.0.1:5000/team/app-cache", a tag allowed)
    and the repository's path in it."""
    tagged = ":" in name.rsplit("/", 1)[-1]
    ref = split_ref(name if tagged else name + ":x")
    return Client(ref.host), ref.repo


def _loopback(host: str) -> bool:
    h = host.rsplit(":", 1)[0].strip("[]") if not host.startswith("[") or "]:" in host else host.strip("[]")
    return h in ("localhost", "::1") or h.startswith("127.")


def credentials(host: str) -> tuple[str, str] | None:
    """(user, secret) for a registry host from Docker's config, or None (anonymous)."""
    from .process import docker_config_dir

    try:
        with open(os.path.join(docker_config_dir(), "config.json")) as f:
            cfg = json.load(f)
    except (OSError, ValueError):
        return None
    keys = [host, f"https://{host}", f"http://{host}"]
    if host == "registry-1.docker.io":
        keys += ["https://index.docker.io/v1/", "index.docker.io", "docker.io"]
    helper = next((cfg.get("credHelpers", {}).get(k) for k in keys if cfg.get("credHelpers", {}).get(k)), None)
    helper = helper or cfg.get("credsStore")
    if helper:
        from .process import credential_helper

        got = credential_helper(helper, keys[1] if host == "registry-1.docker.io" else host)
        if got is not None:
            return got
    for k in keys:
        auth = (cfg.get("auths") or {}).get(k, {}).get("auth")
        if auth:
            user, _, secret = base64.b64decode(auth).decode().partition(":")
            return user, secret
    return None


class Client:
    def __init__(self, host: str) -> None:
        self.host = host
        self.scheme = "http" if _loopback(host) else "https"
        self._auth: str | None = None  # the Authorization header that worked
        self._creds_loaded = False
        self._creds: tuple[str, str] | None = None

    def _url(self, path: str) -> str:
        return f"{self.scheme}://{self.host}/v2/{path}"

    def _request(self, method: str, path: str, *, data: bytes | None = None, headers: dict[str, str] | None = None,
                 ok: tuple[int, ...] = (200,), url: str | None = None) -> tuple[int, dict[str, str], bytes]:
        hdrs = dict(headers or {})
        for _ in range(3):
            if self._auth:
                hdrs["Authorization"] = self._auth
            req = urllib.request.Request(url or self._url(path), data=data, headers=hdrs, method=method)
            try:
                with urllib.request.urlopen(req, timeout=TIMEOUT_S) as r:
                    return r.status, dict(r.headers), r.read()
            except urllib.error.HTTPError as e:
                body = e.read()
                if e.code == 401 and self._authenticate(e.headers.get("WWW-Authenticate", "")):
                    continue
                if e.code in ok:
                    return e.code, dict(e.headers), body
                if e.code == 401:
                    raise RegistryError(f"{method} {req.full_url}: not authorized: check `docker login {self.host}` "
                                        "(Docker's config has no working credentials for it)") from None
                raise RegistryError(f"{method} {req.full_url}: {e.code} {e.reason} "
                                    f"{body[:200].decode('utf-8', 'replace')}".strip()) from None
            except urllib.error.URLError as e:
                if self.scheme == "https" and "SSL" in str(e.reason).upper():
                    self.scheme = "http"  # a plain-HTTP registry: BuildKit falls back the same way
                    url = None
                    continue
                raise RegistryError(f"{method} {req.full_url}: {e.reason}") from None
            except OSError as e:
                raise RegistryError(f"{method} {req.full_url}: {e}") from None
        raise RegistryError(f"{method} {self._url(path)}: not authorized (check `docker login {self.host}`)")

    def _authenticate(self, challenge: str) -> bool:
        if not self._creds_loaded:
            self._creds, self._creds_loaded = credentials(self.host), True
        scheme, _, params = challenge.partition(" ")
        basic = None
        if self._creds:
            basic = "Basic " + base64.b64encode(f"{self._creds[0]}:{self._creds[1]}".encode()).decode()
        if scheme.lower() == "basic":
            if basic is None or self._auth == basic:
                return False
            self._auth = basic
            return True
        if scheme.lower() != "bearer":
            return False
        fields = dict(_challenge_params(params))
        realm = fields.pop("realm", "")
        if not realm:
            return False
        query = urllib.parse.urlencode({k: v for k, v in fields.items() if k in ("service", "scope")})
        req = urllib.request.Request(f"{realm}?{query}", headers={"Authorization": basic} if basic else {})
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as r:
                tok = json.loads(r.read())
        except (OSError, ValueError) as e:
            raise RegistryError(f"token from {realm}: {e}") from None
        token = tok.get("token") or tok.get("access_token")
        if not token or self._auth == f"Bearer {token}":
            return False
        self._auth = f"Bearer {token}"
        return True

    # -- the calls sbuild needs ----------------------------------------------------------------------

    def manifest(self, repo: str, ref: str) -> tuple[str, bytes] | None:
        """(media type, bytes) of a manifest, or None when there is none."""
        status, headers, body = self._request("GET", f"{repo}/manifests/{ref}",
                                              headers={"Accept": ",".join(MANIFEST_TYPES)}, ok=(200, 404))
        if status == 404:
            return None
        media = headers.get("Content-Type") or json.loads(body).get("mediaType", "")
        return media.split(";")[0], body

    def exists(self, repo: str, ref: str) -> bool:
        status, _, _ = self._request("HEAD", f"{repo}/manifests/{ref}", headers={"Accept": ",".join(MANIFEST_TYPES)},
                                     ok=(200, 404))
        return status == 200

    def blob(self, repo: str, digest: str) -> bytes:
        return self._request("GET", f"{repo}/blobs/{digest}")[2]

    def put_blob(self, repo: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        status, _, _ = self._request("HEAD", f"{repo}/blobs/{digest}", ok=(200, 404))
        if status == 200:
            return digest
        _, headers, _ = self._request("POST", f"{repo}/blobs/uploads/", data=b"", ok=(202,))
        location = headers.get("Location", "")
        if location.startswith("/"):
            location = f"{self.scheme}://{self.host}{location}"
        sep = "&" if "?" in location else "?"
        self._request("PUT", "", url=f"{location}{sep}digest={urllib.parse.quote(digest)}", data=data,
                      headers={"Content-Type": "application/octet-stream"}, ok=(201,))
        return digest

    def tags(self, repo: str) -> list[str]:
        """Every tag of a repository (the registry's pages followed); [] when the repository does not exist."""
        out: list[str] = []
        path = f"{repo}/tags/list?n=1000"
        while path:
            status, headers, body = self._request("GET", path, ok=(200, 404))
            if status == 404:
                return out
            out += json.loads(body).get("tags") or []
            link = headers.get("Link") or headers.get("link") or ""
            nxt = link.split(";", 1)[0].strip().strip("<>") if 'rel="next"' in link else ""
            path = nxt.split("/v2/", 1)[1] if "/v2/" in nxt else ""
        return out

    def manifest_with_digest(self, repo: str, ref: str) -> tuple[dict[str, object], str] | None:
        """A manifest and its digest (the registry's Docker-Content-Digest), or None."""
        status, headers, body = self._request("GET", f"{repo}/manifests/{ref}",
                                              headers={"Accept": ",".join(MANIFEST_TYPES)}, ok=(200, 404))
        if status == 404:
            return None
        digest = headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(body).hexdigest()
        return json.loads(body), digest

    def delete_manifest(self, repo: str, digest: str) -> None:
        self._request("DELETE", f"{repo}/manifests/{digest}", ok=(202, 200))

    def put_manifest(self, repo: str, tag: str, media_type: str, data: bytes) -> None:
        self._request("PUT", f"{repo}/manifests/{tag}", data=data, headers={"Content-Type": media_type}, ok=(201,))


def _challenge_params(text: str) -> list[tuple[str, str]]:
    """`realm="https://auth",service="r",scope="repository:a:pull,push"`: quoted values hold commas."""
    import re

    return re.findall(r'(\w+)="([^"]*)"', text)
