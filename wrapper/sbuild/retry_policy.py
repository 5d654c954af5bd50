"""The retry policy's numbers (its own module: the build reads them before the first attempt, while the
classifier and tenacity load only after a failure)."""

from __future__ import annotations

from typing import NamedTuple


class Policy(NamedTuple):
    retries: int = 3
    first_wait: float = 5.0  # BuildKit already retried layer fetches for ~7 s before giving up
    max_wait: float = 60.0
    rate_limit_factor: float = 3.0  # a 429 without Retry-After waits longer
    same_error_limit: int = 3  # the same error this many times in a row: stop early
