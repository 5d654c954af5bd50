"""Expand a Dockerfile word as BuildKit's shell lexer (`frontend/dockerfile/shell`) does. Pure.

Supported: quotes ('…' literal, "…" expanding), the escape token (`\\` or a backtick), `$VAR`,
`${VAR}`, `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`, `${VAR+w}`, `${VAR:?msg}`, `${VAR?msg}`, and the
pattern forms `${VAR#p}`, `${VAR##p}`, `${VAR%p}`, `${VAR%%p}`. Unset variables expand to "".
"""

from __future__ import annotations

from collections.abc import Mapping


class ExpandError(ValueError):
    pass


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    return _Lexer(word, env, escape).word()


class _Lexer:
    def __init__(self, s: str, env: Mapping[str, str], escape: str) -> None:
        self.s = s
        self.i = 0
        self.env = env
        self.esc = escape

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def next(self) -> str:
        ch = self.peek()
        self.i += 1
        return ch

    def word(self, stop: str = "") -> str:
        out: list[str] = []
        while self.i < len(self.s):
            ch = self.peek()
            if stop and ch in stop:
                break
            if ch == self.esc:
                self.i += 1
                if self.i < len(self.s):
                    out.append(self.next())
                continue
            if ch == "'":
                self.i += 1
                end = self.s.find("'", self.i)
                if end < 0:
                    raise ExpandError("unexpected end of statement while looking for matching single-quote")
                out.append(self.s[self.i:end])
                self.i = end + 1
                continue
            if ch == '"':
                self.i += 1
                out.append(self.double_quoted())
                continue
            if ch == "$":
                out.append(self.dollar())
                continue
            out.append(self.next())
        return "".join(out)

    def double_quoted(self) -> str:
        out: list[str] = []
        while True:
            if self.i >= len(self.s):
                raise ExpandError("unexpected end of statement while looking for matching double-quote")
            ch = self.next()
            if ch == '"':
                return "".join(out)
            if ch == self.esc:
                nxt = self.peek()
                if nxt in ('"', "$", self.esc):
                    out.append(self.next())
                else:
                    out.append(ch)
                continue
            if ch == "$":
                self.i -= 1
                out.append(self.dollar())
                continue
            out.append(ch)

    def name(self) -> str:
        start = self.i
        while self.i < len(self.s) and (self.s[self.i].isalnum() or self.s[self.i] == "_"):
            self.i += 1
        return self.s[start:self.i]

    def dollar(self) -> str:
        self.i += 1  # "$"
        ch = self.peek()
        if ch == "{":
            self.i += 1
            return self.braced()
        name = self.name()
        if not name:
            return "$"
        return self.env.get(name, "")

    def braced(self) -> str:
        name = self.name()
        if not name:
            raise ExpandError(f"bad substitution in {self.s!r}")
        ch = self.next()
        if ch == "}":
            return self.env.get(name, "")
        value = self.env.get(name)
        if ch == ":":
            op = self.next()
            word = self.word(stop="}")
            self._close()
            if op == "-":
                return value if value else word
            if op == "+":
                return word if value else ""
            if op == "?":
                if not value:
                    raise ExpandError(f"{name}: {word or 'is not allowed to be unset'}")
                return value
            raise ExpandError(f"unsupported modifier (:{op}) in substitution")
        if ch in "-+?":
            word = self.word(stop="}")
            self._close()
            if ch == "-":
                return word if value is None else value
            if ch == "+":
                return "" if value is None else word
            if value is None:
                raise ExpandError(f"{name}: {word or 'is not allowed to be unset'}")
            return value
        if ch in "#%":
            longest = self.peek() == ch
            if longest:
                self.i += 1
            pattern = self.word(stop="}")
            self._close()
            return _trim(value or "", pattern, prefix=ch == "#", longest=longest)
        raise ExpandError(f"unsupported modifier ({ch}) in substitution")

    def _close(self) -> None:
        if self.next() != "}":
            raise ExpandError(f"syntax error: missing '}}' in {self.s!r}")


def _trim(value: str, pattern: str, *, prefix: bool, longest: bool) -> str:
    from fnmatch import fnmatchcase

    sizes = range(len(value), -1, -1) if longest else range(len(value) + 1)
    for n in sizes:
        part = value[:n] if prefix else value[len(value) - n:]
        if fnmatchcase(part, pattern):
            return value[n:] if prefix else value[:len(value) - n]
    return value
