"""What the installed buildx is: its version and the flags its `build` (and `bake`) command accepts.

Learned once per plugin binary by running `docker buildx version` and `docker buildx build --help` (with
BUILDX_EXPERIMENTAL=1, so experimental flags show), then cached in `$XDG_CACHE_HOME/sbuild/buildx.json`
keyed by the binary's (path, size, mtime): a new buildx is learned again, and a build never runs `--help`
on its start-up path once the binary is known. The lookup itself happens only when a command line holds a
flag that not every supported buildx has (see flags.VERSIONED), or a version-dependent choice is made.

The plugin is found as the docker CLI finds it (process.plugin_path).
"""

from __future__ import annotations

import json
import os
import re
from typing import NamedTuple

CACHE_VERSION = 1

# pflag's type names in a --help line -> sbuild's flag kinds.
_KINDS = {"": "bool", "stringArray": "array", "strings": "list", "ulimit": "array"}
# Compiled where used (re caches them): a build reading only the cache file never needs them.
_FLAG_LINE = r"^\s+(?:-(?P<short>\w), )?--(?P<name>[a-z0-9-]+)(?: (?P<type>\w+))?(?:\s|$)"
_VERSION = r"\bv?(\d+)\.(\d+)(?:\.(\d+))?"


class Buildx(NamedTuple):
    version: tuple[int, int, int]  # (0, 0, 0) when buildx printed none sbuild can read
    build_flags: dict[str, tuple[str | None, str]]  # name -> (shorthand, kind: bool/string/array/list)
    source: str  # the plugin binary it was learned from, or "docker" when not found

    def has(self, name: str) -> bool:
        return name in self.build_flags

    def shorthand(self, short: str) -> str | None:
        return next((n for n, (s, _) in self.build_flags.items() if s == short), None)

    def at_least(self, major: int, minor: int) -> bool:
        return self.version[:2] >= (major, minor)

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def parse_help(text: str) -> dict[str, tuple[str | None, str]]:
    """{name: (shorthand, kind)} from a cobra/pflag --help text. Pure."""
    flags: dict[str, tuple[str | None, str]] = {}
    for line in text.splitlines():
        m = re.match(_FLAG_LINE, line)
        if m and m.group("name") != "help":
            flags[m.group("name")] = (m.group("short"), _KINDS.get(m.group("type") or "", "string"))
    return flags


def parse_version(text: str) -> tuple[int, int, int]:
    """(0, 29, 1) from "github.com/docker/buildx 0.29.1+ds1 0.29.1+ds1-4" (or "v0.13.1 abc123"). Pure."""
    m = re.search(_VERSION, text.split(None, 1)[1] if " " in text.strip() else text)
    if m is None:
        return (0, 0, 0)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


def _cache_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "sbuild", "buildx.json")


def _key(path: str | None) -> str:
    if path is None:
        from .process import docker_bin

        path = docker_bin()  # no plugin found where the CLI looks: key by the docker binary instead
    st = os.stat(path)
    return f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}"


_memo: Buildx | None = None


def buildx() -> Buildx:
    """The installed buildx, from the cache when its binary is unchanged, else learned (and cached)."""
    global _memo
    if _memo is not None:
        return _memo
    from .process import plugin_path

    path = plugin_path()
    key = _key(path)
    cache_file = _cache_path()
    cache: dict[str, object] = {}
    try:
        with open(cache_file) as f:
            cache = json.load(f)
        entry = cache.get(key) if cache.get("version") == CACHE_VERSION else None
        if isinstance(entry, dict):
            _memo = Buildx(tuple(entry["version"]), {k: (v[0], v[1]) for k, v in entry["flags"].items()},
                           path or "docker")
            return _memo
    except (OSError, ValueError, KeyError, TypeError):
        cache = {}
    from . import process

    version = parse_version(process.capture(["buildx", "version"]))
    flags = parse_help(process.capture(["buildx", "build", "--help"], env={"BUILDX_EXPERIMENTAL": "1"}))
    _memo = Buildx(version, flags, path or "docker")
    if flags:  # a buildx that printed nothing is asked again next time
        if cache.get("version") != CACHE_VERSION:
            cache = {"version": CACHE_VERSION}
        cache[key] = {"version": list(version), "flags": {k: list(v) for k, v in flags.items()}}
        try:
            from .files import write_atomic

            os.makedirs(os.path.dirname(cache_file), exist_ok=True)
            write_atomic(cache_file, json.dumps(cache))
        except OSError as e:
            process.debug(f"cannot cache buildx facts in {cache_file}: {e.strerror}")
    return _memo
