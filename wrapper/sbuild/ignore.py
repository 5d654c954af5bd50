""".dockerignore as BuildKit applies it: moby/patternmatcher (ReadAll, New, MatchesOrParentMatches), which
fsutil uses to filter the context it sends. Pure.

- a line starting with `#` is a comment; lines are trimmed; `!` re-includes; each pattern is cleaned
  (Go's filepath.Clean) and a leading `/` dropped;
- `*` matches within one path component, `?` one character, `**` any number of components, `[...]` a class,
  `\\` escapes;
- a pattern excludes a path it matches, or any of whose parent directories it matches; the last pattern
  that matches decides.
- `<Dockerfile>.dockerignore` beside the Dockerfile wins over the context's `.dockerignore`.
"""

from __future__ import annotations

import os
import posixpath
import re

from ._tuple import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from ._tuple import NamedTuple


def read_patterns(text: str) -> list[str]:
    """ignorefile.ReadAll."""
    out = []
    for n, line in enumerate(text.splitlines()):
        if n == 0:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue
        p = line.strip()
        if not p:
            continue
        invert = p.startswith("!")
        if invert:
            p = p[1:].strip()
        if p:
            p = posixpath.normpath(p)
            if p.startswith("//"):  # Go's Clean folds leading slashes, posixpath keeps two
                p = "/" + p.lstrip("/")
            if len(p) > 1 and p.startswith("/"):
                p = p[1:]
        out.append("!" + p if invert else p)
    return out


class _Pattern(NamedTuple):
    kind: str  # exact | prefix | suffix | regexp
    text: str
    regexp: re.Pattern[str] | None
    exclusion: bool


_ESCAPE = set(".+()|{}$")


def _compile(p: str, exclusion: bool) -> _Pattern:
    """patternmatcher's Pattern.compile, on "/"."""
    reg = "^"
    kind = "exact"
    i, n, k = 0, len(p), 0
    while i < n:
        ch = p[i]
        i += 1
        if ch == "*":
            if i < n and p[i] == "*":
                i += 1
                if i < n and p[i] == "/":
                    i += 1
                if i >= n:
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        reg += ".*"
                        kind = "regexp"
                else:
                    reg += "(.*/)?"
                    kind = "regexp"
                if k == 0:
                    kind = "suffix"
            else:
                reg += "[^/]*"
                kind = "regexp"
        elif ch == "?":
            reg += "[^/]"
            kind = "regexp"
        elif ch in _ESCAPE:
            reg += "\\" + ch
        elif ch == "\\":
            if i < n:
                reg += "\\" + p[i]
                i += 1
                kind = "regexp"
            else:
                reg += "\\\\"
        elif ch in "[]":
            reg += ch
            kind = "regexp"
        else:
            reg += ch
        k += 1
    if kind == "regexp":
        import warnings

        try:
            with warnings.catch_warnings():  # "[[" reads as a nested set to Python's re, a plain "[" to Go's
                warnings.simplefilter("ignore", FutureWarning)
                return _Pattern(kind, p, re.compile(reg + "$", re.S), exclusion)
        except re.error:  # a pattern Go's filepath.Match refuses: it matches nothing
            return _Pattern("never", p, None, exclusion)
    return _Pattern(kind, p, None, exclusion)


def _match(pat: _Pattern, path: str) -> bool:
    if pat.kind == "exact":
        return path == pat.text
    if pat.kind == "prefix":
        return path.startswith(pat.text[:-2])
    if pat.kind == "suffix":
        suffix = pat.text[2:]
        if path.endswith(suffix):
            return True
        return suffix.startswith("/") and path == suffix[1:]
    if pat.kind == "regexp":
        assert pat.regexp is not None
        return pat.regexp.match(path) is not None
    return False


class Matcher:
    """PatternMatcher.MatchesOrParentMatches: is a context path (relative, "/"-separated) excluded?"""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns: list[_Pattern] = []
        self.exclusions = False
        for p in patterns:
            p = p.strip()
            if not p:
                continue
            p = posixpath.normpath(p)
            exclusion = p.startswith("!")
            if exclusion:
                p = p[1:]
                self.exclusions = True
            self.patterns.append(_compile(p, exclusion))

    def excluded(self, path: str) -> bool:
        matched = False
        parent = posixpath.dirname(path) or "."
        parts = parent.split("/") if parent != "." else []
        for pat in self.patterns:
            if pat.exclusion != matched:
                continue
            m = _match(pat, path)
            if not m:
                for i in range(len(parts)):
                    if _match(pat, "/".join(parts[: i + 1])):
                        m = True
                        break
            if m:
                matched = not pat.exclusion
        return matched


def for_build(context: str, dockerfile: str | None) -> Matcher:
    """The ignore rules of a build: `<Dockerfile>.dockerignore` beside the Dockerfile, else the context's."""
    candidates = [dockerfile + ".dockerignore"] if dockerfile else []
    candidates.append(os.path.join(context, ".dockerignore"))
    for path in candidates:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return Matcher(read_patterns(f.read()))
        except OSError:
            continue
    return Matcher([])
