"""Keep secret values out of everything sbuild writes: terminal, report, summary, trace, logs.

Secret: the value of a build arg whose name says token, password, secret, key (or similar), the
source of a `--secret` (its `src=`/`env=` and, for env secrets, the variable's value), and the
credentials in a URL. They are replaced by `****` wherever they occur.
"""

from __future__ import annotations

import os

from ._tuple import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

MASK = "****"
_SECRET_WORDS = ("token", "passw", "pwd", "secret", "key", "credential", "auth", "private")  # api_key: "key"
_URL_CREDS = r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<creds>[^/@\s:]+(?::[^/@\s]*)?)@"


def is_secret_name(name: str) -> bool:
    """Whether a build arg's name says it holds a secret (token, password, secret, key, ...): any case."""
    low = name.lower()
    return any(w in low for w in _SECRET_WORDS)


class Masker:
    def __init__(self, values: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is masked whole. Very short values would
        # mask ordinary text everywhere; such a value is still masked where it stands as a flag value.
        self._values = sorted({v for v in values if len(v) >= 3}, key=len, reverse=True)

    @classmethod
    def for_build(cls, build_args: Iterable[str], secrets: Iterable[str]) -> Masker:
        from .flags import build_arg_map

        values = [v for k, v in build_arg_map(build_args).items() if is_secret_name(k) and v]
        for spec in secrets:
            for part in spec.split(","):
                k, _, v = part.partition("=")
                if k in ("src", "source") and v:
                    values.append(v)
                elif k == "env" and v:
                    values.append(v)
                    if os.environ.get(v):
                        values.append(os.environ[v])
        return cls(values)

    def text(self, s: str) -> str:
        for v in self._values:
            if v in s:
                s = s.replace(v, MASK)
        if "://" in s and "@" in s:
            import re  # only for a URL that may carry credentials: re costs ~8 ms at start-up

            s = re.sub(_URL_CREDS, lambda m: m.group("scheme") + MASK + "@", s)
        return s
