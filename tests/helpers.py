"""Shared helpers for the fast tests."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from sbuild import installed

DATA = Path(__file__).parent / "data"

_FLAG_LINE = re.compile(r"^\s+(?:-(?P<short>\w), )?--(?P<name>[a-z0-9-]+)(?: (?P<type>\w+))?\s")


def help_flags(text: str) -> dict[str, tuple[str | None, str]]:
    """{name: (short, type)} from a cobra/pflag --help text; type "bool" when none is printed."""
    flags = {}
    for line in text.splitlines():
        m = _FLAG_LINE.match(line)
        if m:
            flags[m.group("name")] = (m.group("short"), m.group("type") or "bool")
    return flags


def json_objects(text: str) -> list[dict]:
    """The JSON objects of a rawjson stream, whatever its shape (buildx 0.13 indents each object, `{` at
    column 0; newer buildx writes one per line): every `{` that starts a line is tried. Independent of
    sbuild's own splitter, so tests can check it."""
    import json

    dec, out, i = json.JSONDecoder(), [], 0
    while (i := text.find("{", i)) >= 0:
        if i == 0 or text[i - 1] == "\n":
            try:
                obj, i = dec.raw_decode(text, i)
                out.append(obj)
                continue
            except ValueError:
                pass
        i += 1
    return out


FAKE = Path(__file__).parent / "fakedocker"
PIPELINE = Path(__file__).parent.parent / "examples" / "pipeline"


class Fake:
    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.log = root / "docker-calls.jsonl"
        self.mp = monkeypatch

    def calls(self) -> list[dict]:
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:  # a line the fake is still writing
                break
        return out

    def builds(self) -> list[dict]:
        return [c for c in self.calls() if c["argv"][:2] in (["buildx", "build"], ["buildx", "bake"])
                and "--help" not in c["argv"]]

    def stream(self, name: str, exit_code: int | None = None) -> None:
        self.mp.setenv("FAKE_DOCKER_STREAM", name)
        if exit_code is not None:
            self.mp.setenv("FAKE_DOCKER_EXIT", str(exit_code))

    def buildx(self, version: str) -> None:
        self.mp.setenv("FAKE_BUILDX", version)
        # Another buildx binary: a new key for sbuild's cache of the installed flag set.
        plugin = Path(self.mp_config) / "cli-plugins" / "docker-buildx"
        plugin.unlink()  # a copy of the fake (not the link to it), one line longer
        plugin.write_text((FAKE / "docker").read_text() + f"# fake buildx {version}\n")
        plugin.chmod(0o755)
        installed._memo = None

    mp_config = ""


def _pipeline(where: Path) -> Path:
    shutil.copytree(PIPELINE, where)
    return where


EXAMPLES = [0]  # property-test examples run in this session (conftest prints the count)


def count_example() -> None:
    EXAMPLES[0] += 1
