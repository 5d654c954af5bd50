"""Shared helpers for the fast tests."""

from __future__ import annotations

import re
from pathlib import Path

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
