"""Which failed builds are worth another attempt, how long to wait, and the attempt loop. Pure.

BuildKit reports a failure as a chain of causes joined by ": " ("failed to solve: failed to resolve
source metadata for X: failed to authorize: failed to fetch oauth token: unexpected status from POST
request to https://auth.docker.io/token: 502 Bad Gateway"). The same outer words appear over transient
and permanent causes alike, so the *innermost* cause that means something decides: a 502 from the
token endpoint is transient, a 401 is not. Anything not known to be transient is permanent: retrying
a real failure only makes CI slower.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import NamedTuple

from .retry_policy import Policy

PHASES = ("auth", "metadata", "pull", "cache-import", "cache-export", "push", "build", "dockerfile", "builder",
          "runtime", "unknown")


class FailureClass(NamedTuple):
    transient: bool
    phase: str  # one of PHASES
    reason: str  # the innermost cause, short
    retry_after: float | None = None  # seconds, when the registry said so
    error: str = ""  # the whole chain, to tell one failure from another
    cap: int | None = None  # retries this cause gets at most, whatever --retries says (None: --retries)


# The builder itself went away mid-build (gRPC from buildx to BuildKit): the daemon crashed or restarted.
# Matched on the whole error line first, since its innermost link ("EOF") looks like a registry's.
# docker/buildx#2380, kubernetes-sigs/headlamp#1278, docker/buildx#1079, moby/buildkit#1222.
_BUILDER_LOST = re.compile(r"code = Unavailable|\bUnavailable: error reading from server|closing transport|"
                           r"transport is closing|error reading from server: EOF|Cannot connect to the Docker daemon|"
                           r"the connection is unavailable", re.I)
BUILDER_CAP = 1  # a builder that crashes on every attempt gets one retry, not --retries full rebuilds
# The container runtime could not start a RUN step's process at all (runc's init died before the command
# ran: the step never ran, so running it again is safe). Random under load, "possibly OOM-killed" in newer
# runc (concourse/concourse#6180, opencontainers/runc#2812); a machine where it always happens
# (moby/moby#42953) fails after the one retry. Matched in the failed step's own output: BuildKit's final
# line only says the step "did not complete successfully".
_RUNTIME_START = re.compile(r"read init-p: connection reset by peer|waiting for init preliminary setup|"
                            r"possibly OOM-killed", re.I)
RUNTIME_CAP = 1
DNS_CAP = 1  # a name that does not resolve: CI's DNS flakes, a misspelt registry stays wrong

# Causes, each matched against one link of the chain; checked from the innermost link outwards.
_TRANSIENT = [
    # Any 5xx: a link that starts with one ("520 unknown"), or a status named as such; CDNs in front of
    # registries answer 520-530 (trigger.dev/trigger.dev#1636).
    (re.compile(r"\b(500|502|503|504)\b|Internal Server Error|Bad Gateway|Service Unavailable|Gateway Time-?out|"
                r"^5\d\d\b|status(?: code)?:? 5\d\d\b", re.I), "server error"),
    # A registry's own error code, as BuildKit 0.2x prints it ("<code>: <message>"): UNAVAILABLE is its 503.
    (re.compile(r"^unavailable$", re.I), "server error"),
    (re.compile(r"\b429\b|Too Many Requests|toomanyrequests", re.I), "rate limited"),
    (re.compile(r"\b408\b|Request Timeout", re.I), "request timeout"),
    (re.compile(r"connection reset by peer|connection refused|broken pipe|use of closed network connection|"
                r"server closed idle connection|http2: server sent GOAWAY|stream error|"
                r"no route to host|network is unreachable", re.I), "connection failed"),
    # "no response" is a link of its own once the chain is split on ": " (docker/build-push-action#131).
    (re.compile(r"\bunexpected EOF\b|^EOF$|: EOF$|short read|failed commit on ref .*no response|^no response$",
                re.I), "connection cut short"),
    (re.compile(r"TLS handshake timeout|i/o timeout|Client\.Timeout exceeded|timeout awaiting response|"
                r"context deadline exceeded|DeadlineExceeded|read: connection timed out|maximum timeout reached",
                re.I), "timeout"),
    (re.compile(r"server misbehaving|temporary failure in name resolution", re.I), "DNS failure"),
]
# Transient, but with a cap of its own: one retry (docker/buildx#1013).
_NO_SUCH_HOST = re.compile(r"no such host", re.I)
_PERMANENT = [
    (re.compile(r"did not complete successfully|executor failed running", re.I), "a build step failed"),
    (re.compile(r"dockerfile parse error|failed to parse dockerfile|unknown instruction", re.I),
     "Dockerfile error"),
    (re.compile(r"\b401\b|unauthorized|authentication required|incorrect username or password", re.I),
     "unauthorized"),
    (re.compile(r"\b403\b|forbidden|denied|insufficient_scope", re.I), "access denied"),
    (re.compile(r"manifest unknown|\bnot found\b|\b404\b|repository does not exist", re.I), "not found"),
    (re.compile(r"no match for platform", re.I), "no match for platform"),
    (re.compile(r"invalid reference format|invalid tag|invalid argument", re.I), "invalid input"),
]
_RETRY_AFTER = re.compile(r"retry[- ]after[:= ]+(\d+(?:\.\d+)?)|try again in (\d+(?:\.\d+)?) ?s", re.I)

# Phase, from the outer links and from the name of the step that failed.
_PHASE_RULES = [
    (re.compile(r"oauth token|anonymous token|failed to authorize|/token\b|\[auth\]", re.I), "auth"),
    (re.compile(r"importing cache|cache importer|failed to configure .*cache|cache manifest", re.I),
     "cache-import"),
    (re.compile(r"exporting cache|cache export|writing cache|error writing (layer|manifest) blob", re.I),
     "cache-export"),
    (re.compile(r"failed to push|pushing layers|pushing manifest|exporting to image.*push|"
                r"failed commit on ref|blobs/uploads", re.I), "push"),
    (re.compile(r"failed to copy|httpReadSeeker|failed to extract layer|failed to fetch .*blob|/blobs/sha256|"
                r"pulling sha256|unpack", re.I), "pull"),
    (re.compile(r"resolve source metadata|resolve image config|load metadata|/manifests/|failed to do request: "
                r"Head", re.I), "metadata"),
    (re.compile(r"did not complete successfully|executor failed", re.I), "build"),
    (re.compile(r"dockerfile parse error|failed to parse|unknown instruction", re.I), "dockerfile"),
]


_STEP_FAILED = re.compile(r"did not complete successfully|executor failed running", re.I)


def _links(text: str) -> list[str]:
    """The chain of causes of the final error line, innermost last."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.upper().startswith("ERROR:")]
    if errors:
        line = errors[-1].split(":", 1)[1]
    elif lines:
        line = lines[-1]
    else:
        return []
    # Split on ": " but not inside quoted URLs ("Head \"https://h:5000/v2/…\"").
    parts = re.split(r': (?=(?:[^"]*"[^"]*")*[^"]*$)', line)
    return [p.strip() for p in parts if p.strip()]


def classify_failure(text: str, step: str | None = None, output: Iterable[str] = ()) -> FailureClass:
    """Classify a failed build from its final error (buildx's `ERROR: …` line, or the whole text).

    `step`, when known, is the name of the step that failed; it helps name the phase. `output` is that
    step's last lines of output: where the runtime could not start its process, it says so there."""
    links = _links(text)
    reason, transient, cap = "unknown error", False, None
    failed_step = next((link for link in links if _STEP_FAILED.search(link)), None)
    whole = ": ".join(links)
    if failed_step is None and _BUILDER_LOST.search(whole):
        detail = whole if len(whole) <= 120 else whole[:117] + "..."
        return FailureClass(True, "builder", f"builder connection lost ({detail})", None, whole, BUILDER_CAP)
    for link in reversed(links if failed_step is None else []):
        hit = next(((r, True) for rx, r in _TRANSIENT if rx.search(link)), None)
        if hit is None and _NO_SUCH_HOST.search(link):
            hit, cap = ("DNS failure", True), DNS_CAP
        if hit is None:
            hit = next(((r, False) for rx, r in _PERMANENT if rx.search(link)), None)
        if hit is not None:
            reason, transient = hit
            detail = link if len(link) <= 120 else link[:117] + "..."
            reason = f"{reason} ({detail})"
            break
    if failed_step is not None:
        started = next((ln.strip() for ln in output if _RUNTIME_START.search(ln)), None)
        if started is not None:
            detail = started if len(started) <= 120 else started[:117] + "..."
            return FailureClass(True, "runtime", f"the container runtime could not start the step ({detail})",
                                None, ": ".join(links), RUNTIME_CAP)
        # A RUN step failed: whatever its command line says (it may well contain "503"), that is final.
        detail = failed_step if len(failed_step) <= 120 else failed_step[:117] + "..."
        return FailureClass(False, "build", f"a build step failed ({detail})", None, ": ".join(links))
    phase = "unknown"
    where = " : ".join(links) + (" " + step if step else "")
    for rx, name in _PHASE_RULES:
        if rx.search(where):
            phase = name
            break
    m = _RETRY_AFTER.search(text)
    retry_after = float(m.group(1) or m.group(2)) if m else None
    return FailureClass(transient, phase, reason, retry_after, ": ".join(links), cap)


def wait_for(policy: Policy, attempt: int, failure: FailureClass, jitter: float) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): exponential from the first wait,
    jittered (`jitter` in [0, 1)), a Retry-After if the registry sent one; capped at max_wait."""
    if failure.retry_after is not None:
        return min(policy.max_wait, failure.retry_after)
    first = policy.first_wait * (policy.rate_limit_factor if failure.reason.startswith("rate limited") else 1.0)
    top = first * 2 ** (attempt - 1)
    return min(policy.max_wait, first + (top - first) * jitter) if attempt > 1 else min(policy.max_wait,
                                                                                        first * (1 + 0.2 * jitter))


class Retry(NamedTuple):
    """One retry, as the report lists it."""

    attempt: int  # the attempt that failed
    phase: str
    reason: str
    wait_s: float


class Stopped(NamedTuple):
    result: object  # the last attempt's
    stop: str  # why retrying ended: one of retry_policy.STOPS


_UNSET = object()


def run_with_retries(do_attempt: Callable[[], object], failure_of: Callable[[object], FailureClass | None],
                     policy: Policy, on_retry: Callable[[Retry], None], *, first: object = _UNSET,
                     started: float | None = None, sleep: Callable[[float], object] | None = None,
                     clock: Callable[[], float] | None = None) -> Stopped:
    """Run `do_attempt()` until it succeeds, fails for good, the retry count is spent, or the total budget
    (policy.timeout, counted from `started`) would run out before the next attempt starts. `first`, when
    given, is the first attempt's result, already run. `failure_of` is the FailureClass of a failed result
    (None: it succeeded); `on_retry` is told before each wait. Identical errors are no reason to stop: an
    outage looks the same every time."""
    import time

    from .retry_policy import stop_reason

    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    start = clock() if started is None else started
    attempt = 0
    by_cause: dict[str, int] = {}  # retries so far per capped cause
    while True:
        attempt += 1
        result = first if attempt == 1 and first is not _UNSET else do_attempt()
        f = failure_of(result)
        stop = stop_reason(f, attempt, policy)
        if stop is not None:
            return Stopped(result, stop)
        assert f is not None
        if f.cap is not None:
            cause = f.reason.split(" (", 1)[0]
            if by_cause.get(cause, 0) >= f.cap:
                return Stopped(result, "cap")
            by_cause[cause] = by_cause.get(cause, 0) + 1
        assert f is not None
        wait = wait_for(policy, attempt, f, _jitter())
        if policy.timeout is not None and clock() - start + wait > policy.timeout:
            return Stopped(result, "timeout")
        on_retry(Retry(attempt, f.phase, f.reason, round(wait, 3)))
        sleep(wait)


def _jitter() -> float:
    import random

    return random.random()
