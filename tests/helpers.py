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
