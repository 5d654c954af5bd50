"""Project configuration: `sbuild.toml` next to the Dockerfile, or `[tool.sbuild]` in a `pyproject.toml` there
(then in the build context). Flags override it. Pure: file text in, a validated mapping out.

    image = "registry.example.com/team/app"     # what tag rules are applied to
    tags = ["{branch}", "sha-{short_sha}", "{version}", "{major}.{minor}", "latest"]
    deploy-stage = "deploy"
    stages = ["test", "deploy"]                  # when no --stage is given
    cache-repo = "registry.example.com/team/app-cache"
    cache-dir = ".cache/sbuild"
    default-branch = "main"
    retries = 3
    retry-wait = 5.0
    retry-max-wait = 60.0
    retry-timeout = "10m"                        # or seconds; default: no budget
    history = true                               # record builds (false: as --no-history)
    history-keep = 500                           # builds kept per project
"""

from __future__ import annotations

import os

from ._tuple import TYPE_CHECKING
from .errors import UsageError

if TYPE_CHECKING:
    from typing import Any, NamedTuple
else:
    from ._tuple import NamedTuple

# key -> (type, the build flag it stands for)
SCHEMA: dict[str, tuple[type | tuple[type, ...], str | None]] = {
    "image": (str, None),
    "tags": (list, None),
    "deploy-stage": (str, "deploy-stage"),
    "stages": (list, "stage"),
    "cache-repo": (str, "cache-repo"),
    "cache-dir": (str, "cache-dir"),
    "cache-required": (bool, "cache-required"),
    "default-branch": (str, "default-branch"),
    "retries": (int, "retries"),
    "retry-wait": ((int, float), "retry-wait"),
    "retry-max-wait": ((int, float), "retry-max-wait"),
    "retry-timeout": ((str, int, float), "retry-timeout"),
    "history": (bool, "no-history"),  # false -> --no-history
    "history-keep": (int, "history-keep"),
}


class Config(NamedTuple):
    path: str
    values: dict[str, Any]


def find(dockerfile_dir: str, context: str | None) -> str | None:
    """The config file that applies: sbuild.toml, then a pyproject.toml with [tool.sbuild]."""
    dirs = [dockerfile_dir] + ([context] if context and os.path.abspath(context) != os.path.abspath(dockerfile_dir)
                               else [])
    for d in dirs:
        p = os.path.join(d, "sbuild.toml")
        if os.path.isfile(p):
            return p
    for d in dirs:
        p = os.path.join(d, "pyproject.toml")
        if os.path.isfile(p):
            with open(p, "rb") as f:
                if b"[tool.sbuild]" in f.read():
                    return p
    return None


def parse(text: str, path: str) -> Config:
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # requires-python is 3.10: the same parser, from PyPI
        import tomli as tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: not valid TOML: {e}") from None
    if os.path.basename(path) == "pyproject.toml":
        data = data.get("tool", {}).get("sbuild", {})
        where = "[tool.sbuild]"
    else:
        where = ""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in SCHEMA:
            from .stages import did_you_mean

            raise UsageError(f"{path}: unknown key {where}{'.' if where else ''}{key} "
                             f"(known: {', '.join(SCHEMA)}){did_you_mean(key, SCHEMA)}")
        typ = SCHEMA[key][0]
        ok = isinstance(value, typ) and not (typ is int and isinstance(value, bool))
        if ok and typ is list:
            ok = all(isinstance(v, str) for v in value)
        if not ok:
            want = {str: "a string", list: "a list of strings", bool: "true or false", int: "a whole number"}.get(
                typ if isinstance(typ, type) else float, "a number")
            raise UsageError(f"{path}: {key} must be {want}, not {type(value).__name__} {value!r}")
        out[key] = value
    return Config(path, out)


def load(dockerfile_dir: str, context: str | None) -> Config | None:
    path = find(dockerfile_dir, context)
    if path is None:
        return None
    with open(path, encoding="utf-8") as f:
        return parse(f.read(), path)


def as_flags(cfg: Config, given: set[str]) -> list[str]:
    """The config as build flags, for those the command line did not set (flags override config)."""
    out: list[str] = []
    for key, value in cfg.values.items():
        flag = SCHEMA[key][1]
        if flag is None or flag in given:
            continue
        if key == "history":
            if value is False:
                out.append("--no-history")
        elif isinstance(value, bool):
            if value:
                out.append(f"--{flag}")
        elif isinstance(value, list):
            if value:
                out.append(f"--{flag}={','.join(value)}")
        else:
            out.append(f"--{flag}={value}")
    return out
