"""The retry policy's numbers (its own module: the build reads them before the first attempt, while the
classifier loads only after a failure)."""

from __future__ import annotations

from ._tuple import TYPE_CHECKING
from .errors import UsageError

if TYPE_CHECKING:
    from typing import NamedTuple

    from .retry import FailureClass
else:
    from ._tuple import NamedTuple

STOPS = ("succeeded", "count", "timeout", "permanent", "cap")  # why retrying ended (report: retry_stop)


class Policy(NamedTuple):
    retries: int = 3
    first_wait: float = 5.0  # BuildKit already retried layer fetches for ~7 s before giving up
    max_wait: float = 60.0
    rate_limit_factor: float = 3.0  # a 429 without Retry-After waits longer
    timeout: float | None = None  # total budget in seconds from the first attempt's start (--retry-timeout)


def stop_reason(failure: FailureClass | None, attempt: int, policy: Policy) -> str | None:
    """Why retrying ends after attempt number `attempt` (1-based) ended as `failure` (None: it succeeded),
    or None when another attempt is due (the budget, which needs the coming wait, is checked by the loop)."""
    if failure is None:
        return "succeeded"
    if not failure.transient:
        return "permanent"
    if attempt > policy.retries:
        return "count"
    return None


_DURATION = r"(\d+(?:\.\d+)?)(ms|s|m|h)"


def parse_duration(text: str, what: str) -> float:
    """Seconds from "90", "90s", "1.5m", "1h30m" (Go's duration units, as docker's flags take them)."""
    t = text.strip()
    try:
        seconds = float(t)
    except ValueError:
        import re

        parts = re.findall(_DURATION, t)
        if not parts or "".join(n + u for n, u in parts) != t:
            raise UsageError(f'invalid {what} "{text}": give a duration such as 90s, 10m or 1h30m') from None
        seconds = sum(float(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[u] for n, u in parts)
    if seconds <= 0:
        raise UsageError(f'invalid {what} "{text}": must be more than 0')
    return seconds
