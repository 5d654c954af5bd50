"""classify_failure on real error lines, as users reported them in public issue threads."""

from __future__ import annotations

import pytest

from sbuild import classify_failure
from sbuild.errors import UsageError
from sbuild.retry import FailureClass, Policy, Retry, run_with_retries, wait_for
from sbuild.retry_policy import parse_duration

# (error line, transient, phase, source)
REAL = [
    ("ERROR: failed to solve: python:3.8.17-slim-buster: failed to resolve source metadata for "
     "docker.io/library/python:3.8.17-slim-buster: failed to authorize: failed to fetch oauth token: unexpected "
     "status from POST request to https://auth.docker.io/token: 502 Bad Gateway",
     True, "auth", "github.com/oppia/oppia/issues/21199"),
    ("ERROR: failed to solve: freesurfer/freesurfer:7.4.1: failed to resolve source metadata for "
     "docker.io/freesurfer/freesurfer:7.4.1: failed to authorize: failed to fetch oauth token: unexpected status "
     "from GET request to https://auth.docker.io/token?scope=repository%3Afreesurfer%2Ffreesurfer%3Apull&"
     "service=registry.docker.io: 401 Unauthorized.",
     False, "auth", "github.com/skjerns/3dprintedbrain_docker/issues/5"),
    ("ERROR: failed to build: failed to solve: failed to resolve source metadata for "
     "harbor.nbfc.io/nubificus/bunny:latest: unexpected status from HEAD request to "
     "https://harbor.nbfc.io/v2/nubificus/bunny/manifests/latest: 502 Bad Gateway",
     True, "metadata", "github.com/nubificus/bunny/issues/56"),
    ("ERROR: failed to solve: node:20-alpine: failed to resolve source metadata for docker.io/library/node:20-alpine: "
     'failed to do request: Head "https://dockerproxy.com/v2/library/node/manifests/20-alpine?ns=docker.io": read tcp '
     "192.168.127.130:44148->150.136.252.237:443: read: connection reset by peer",
     True, "metadata", "github.com/drawdb-io/drawdb/issues/293"),
    ("failed to solve: golang:1.23.6-alpine3.20: failed to resolve source metadata for "
     "docker.io/library/golang:1.23.6-alpine3.20: failed to copy: httpReadSeeker: failed open: unexpected status code "
     "https://registry-1.docker.io/v2/library/golang/blobs/sha256:d9452640ca3fae310f357582059dbe38e87355feb9a1200389"
     "b67957a6d71a7f: 500 Internal Server Error",
     True, "pull", "github.com/alpinelinux/docker-alpine/issues/439"),
    ("ERROR: failed to solve: builder: failed to resolve source metadata for docker.io/library/builder:latest: pull "
     "access denied, repository does not exist or may require authorization: server message: insufficient_scope: "
     "authorization failed",
     False, "metadata", "github.com/zhaarey/wrapper/issues/33"),
    ('buildx failed with: error: failed to solve: failed to copy: failed to do request: Put "https://cr.brightbox.com/'
     'v2/blobhere": write tcp 172.17.0.2:48736->109.107.38.167:443: write: connection reset by peer',
     True, "pull", "github.com/moby/buildkit/issues/2713"),
    ('ERROR: failed to solve: failed to push REDACTED/python-docker:1.0.0: failed commit on ref '
     '"index-sha256:3be21126cdfd0a02270874f65545c8c631b0fb17005ad10b7cd4c871110a21d7": unexpected status: 500 Server '
     "Error",
     True, "push", "github.com/docker/buildx/issues/1653"),
    ("error: failed to solve: failed to fetch oauth token: unexpected status: 401 Unauthorized",
     False, "auth", "github.com/moby/buildkit/issues/4456"),
    ("#4 ERROR: failed to authorize: DeadlineExceeded: failed to fetch oauth token: Post "
     '"https://repoin.harbor.net/service/token": dial tcp 10.249.179.76:443: i/o timeout',
     True, "auth", "github.com/moby/buildkit/issues/3875"),
    ("Error: buildx failed with: ERROR: failed to solve: error writing layer blob: maximum timeout reached",
     True, "cache-export", "github.com/ptr727/NxWitness/issues/175"),
    ("ERROR: failed to solve: failed to compute cache key: failed to copy: httpReadSeeker: failed open: unexpected "
     "status code https://ghcr.io/v2/osgeo/gdal/blobs/sha256:1234567890abcdef: 429 Too Many Requests",
     True, "pull", "github.com/docker/buildx/issues/3374 (status shown as reported by the thread's title pattern)"),
    ('ERROR: failed to solve: process "/bin/sh -c npm run test" did not complete successfully: exit code: 1',
     False, "build", "buildx's own RUN failure (see integration/test_dropin.py)"),
    ("ERROR: failed to solve: nosuchimage:latest: failed to resolve source metadata for "
     "docker.io/library/nosuchimage:latest: failed to do request: Head \"https://registry-1.docker.io/v2/library/"
     "nosuchimage/manifests/latest\": dial tcp: lookup registry-1.docker.io on 127.0.0.53:53: no such host",
     True, "metadata", "offline machine, as seen here (one retry: DNS_CAP)"),
    ('error: failed to solve: failed to do request: Head "https://docker.corporation.m/v2/nlab/builder/blobs/'
     'sha256:abe4e89e94af5ca53807bff02fd05ef3c6fed358ae822503bd87beb8ddedbaa3": dial tcp: lookup '
     "docker.corporation.m on 10.0.1.1:53: no such host",
     True, "pull", "github.com/docker/buildx/issues/1013"),
    ('#24 8.149 error: failed commit on ref "layer-sha256:a2837574e7c9422a3cc93cef8bebbe050c0aee64ff43a97bfb4b4fb29'
     'fca439b": unexpected status from PUT request to https://registry.trigger.dev/v2/trigger-failover/proj_sdyhznurv'
     "xknuqmcvprr/blobs/uploads/c5186532-9a3b-48e9-b913-a2fb9503cf5f?digest=sha256%3Aa2837574e7c9422a3cc93cef8bebbe"
     "050c0aee64ff43a97bfb4b4fb29fca439b: 520 unknown",
     True, "push", "github.com/triggerdotdev/trigger.dev/issues/1636"),
    ('ERROR: failed to solve: rpc error: code = Unknown desc = failed commit on ref "layer-sha256:…": no response',
     True, "push", "github.com/docker/build-push-action/issues/131 (its title's error; the digest elided)"),
    ("ERROR: failed to receive status: rpc error: code = Unavailable desc = error reading from server: EOF",
     True, "builder", "github.com/docker/buildx/issues/2380"),
    ("ERROR: failed to solve: Unavailable: error reading from server: EOF",
     True, "builder", "github.com/kubernetes-sigs/headlamp/issues/1278"),
    ("Error: failed to receive status: rpc error: code = Unavailable desc = closing transport due to: connection "
     'error: desc = "error reading from server: io: read/write on closed pipe", received prior goaway',
     True, "builder", "github.com/docker/buildx/issues/1079"),
    ("error: failed to receive status: rpc error: code = Unavailable desc = transport is closing",
     True, "builder", "github.com/moby/buildkit/issues/1222"),
    ("ERROR: failed to solve: 127.0.0.1:5000/sbuild-it/none:latest: 127.0.0.1:5000/sbuild-it/none:latest: not found",
     False, "unknown", "local registry, as seen here"),
    # Engine 28.5.2 prints the registry's error body (distribution's "<code>: <message>") as the innermost
    # cause, where Engine 26 printed the HTTP status: a push behind integration/faultproxy.py answering 503.
    ("ERROR: failed to build: failed to solve: failed to push 127.0.0.1:39175/sbuild-it/pushed-d1367e0b:ours: "
     "unavailable: injected fault", True, "push", "Engine 28.5.2 push behind the fault proxy, as seen here"),
    ("ERROR: failed to solve: failed to push ghcr.io/o/app:latest: unavailable: service unavailable",
     True, "push", "distribution's UNAVAILABLE error code with its standard message"),
]


@pytest.mark.parametrize(("line", "transient", "phase", "source"), REAL, ids=[r[3] for r in REAL])
def test_real_error_lines(line: str, transient: bool, phase: str, source: str) -> None:
    f = classify_failure(line)
    assert (f.transient, f.phase) == (transient, phase), f


def test_a_failed_run_step_is_final_whatever_its_command_says() -> None:
    f = classify_failure('ERROR: failed to solve: process "/bin/sh -c curl http://h:503 || echo 502 Bad Gateway" '
                         "did not complete successfully: exit code: 7")
    assert not f.transient and f.phase == "build"


def test_innermost_cause_decides() -> None:
    # the same outer words over a transient and a permanent cause
    base = "ERROR: failed to solve: x: failed to resolve source metadata for x: failed to authorize: failed to fetch"
    assert classify_failure(base + " oauth token: unexpected status: 503 Service Unavailable").transient
    assert not classify_failure(base + " oauth token: unexpected status: 403 Forbidden").transient


def test_retry_notices_are_not_the_final_error() -> None:
    text = ("#5 0.123 retrying in 1s\nERROR: failed to solve: process \"/bin/sh -c false\" did not complete "
            "successfully: exit code: 1")
    assert not classify_failure(text).transient


def test_unknown_errors_are_permanent() -> None:
    f = classify_failure("ERROR: failed to solve: something nobody has seen before")
    assert not f.transient and f.reason == "unknown error"


def test_retry_after() -> None:
    f = classify_failure("ERROR: failed to solve: unexpected status: 429 Too Many Requests (Retry-After: 7)")
    assert f.transient and f.retry_after == 7.0
    assert wait_for(Policy(), 1, f, 0.5) == 7.0


def test_waits_grow_are_capped_and_rate_limits_wait_longer() -> None:
    p = Policy(first_wait=2, max_wait=10)
    five = FailureClass(True, "metadata", "server error (503)")
    many = FailureClass(True, "metadata", "rate limited (429)")
    assert 2 <= wait_for(p, 1, five, 0.0) <= wait_for(p, 1, five, 0.99) < 2.5
    assert wait_for(p, 3, five, 0.99) > wait_for(p, 1, five, 0.99)
    assert wait_for(p, 10, five, 0.99) == 10
    assert wait_for(p, 1, many, 0.0) == 6


def _runner(outcomes: list[str], policy: Policy, clock: list[float] | None = None,
            ) -> tuple[str, list[Retry], list[float], int, str]:
    calls = iter(outcomes)
    n = 0
    now = clock if clock is not None else [0.0]

    def attempt() -> str:
        nonlocal n
        n += 1
        now[0] += 10.0  # each attempt takes 10 s
        return next(calls)

    def failure(result: object) -> FailureClass | None:
        return None if result == "ok" else classify_failure(str(result))

    retries: list[Retry] = []
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    done = run_with_retries(attempt, failure, policy, retries.append, started=0.0, sleep=sleep,
                            clock=lambda: now[0])
    return str(done.result), retries, slept, n, done.stop


E503 = "ERROR: failed to solve: unexpected status from HEAD request to https://r/v2/a/manifests/1: 503 " \
       "Service Unavailable"


def test_transient_failures_are_retried_until_success() -> None:
    reset = "ERROR: failed to solve: failed to copy: read tcp 1.2.3.4:5->6.7.8.9:443: read: connection reset by peer"
    result, retries, slept, n, stop = _runner([E503, reset, "ok"], Policy(retries=3, first_wait=0.01))
    assert result == "ok" and n == 3 and stop == "succeeded"
    assert [(r.attempt, r.phase) for r in retries] == [(1, "metadata"), (2, "pull")]
    assert len(slept) == 2 and all(s > 0 for s in slept)


def test_permanent_failure_is_not_retried() -> None:
    run = 'ERROR: failed to solve: process "/bin/sh -c false" did not complete successfully: exit code: 1'
    result, retries, slept, n, stop = _runner([run, "ok"], Policy(retries=3, first_wait=0.01))
    assert result == run and n == 1 and retries == [] and slept == [] and stop == "permanent"


def test_identical_errors_are_no_reason_to_stop() -> None:
    # An outage looks the same every time: --retries 5 means five retries of it.
    result, retries, _, n, stop = _runner([E503] * 5 + ["ok"], Policy(retries=5, first_wait=0.01))
    assert result == "ok" and n == 6 and len(retries) == 5 and stop == "succeeded"


def test_the_retry_count_is_spent_then_the_last_failure_is_returned() -> None:
    result, retries, _, n, stop = _runner([E503] * 4, Policy(retries=2, first_wait=0.01))
    assert result == E503 and n == 3 and len(retries) == 2 and stop == "count"


def test_the_budget_stops_before_an_attempt_that_would_start_too_late() -> None:
    # Attempts take 10 s, waits are 5 s then ~10 s: the third attempt would start at ~35 s > 30 s.
    result, retries, slept, n, stop = _runner([E503] * 10, Policy(retries=10, first_wait=5.0, timeout=30.0))
    assert stop == "timeout" and n == 2 and len(retries) == 1 and result == E503
    assert 10.0 + sum(slept) + 10.0 <= 30.0


def test_a_budget_long_enough_changes_nothing() -> None:
    _, _, _, n, stop = _runner([E503, E503, "ok"], Policy(retries=5, first_wait=1.0, timeout=600.0))
    assert n == 3 and stop == "succeeded"


@pytest.mark.parametrize(("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("1.5m", 90.0), ("1h30m", 5400.0),
                                               ("250ms", 0.25), (" 2m ", 120.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "--retry-timeout") == seconds


@pytest.mark.parametrize("text", ["", "soon", "10 m", "-5", "0", "1d", "m10"])
def test_bad_durations_name_the_flag(text: str) -> None:
    with pytest.raises(UsageError, match="--retry-timeout"):
        parse_duration(text, "--retry-timeout")


def test_a_builder_lost_and_a_name_that_never_resolves_get_one_retry_each() -> None:
    lost = classify_failure("ERROR: failed to receive status: rpc error: code = Unavailable desc = error reading "
                            "from server: EOF")
    assert (lost.transient, lost.phase, lost.cap) == (True, "builder", 1)
    dns = classify_failure('error: failed to solve: failed to do request: Head "https://docker.corporation.m/v2/x/'
                           'blobs/sha256:ab": dial tcp: lookup docker.corporation.m on 10.0.1.1:53: no such host')
    assert (dns.transient, dns.cap) == (True, 1)
    for failure in (lost, dns):
        calls: list[int] = []

        def attempt(calls: list[int] = calls) -> str:
            calls.append(1)
            return "again"

        done = run_with_retries(attempt, lambda r, f=failure: f,  # type: ignore[misc]
                                Policy(retries=5, first_wait=0.0), lambda r: None, sleep=lambda s: None)
        assert done.stop == "cap" and len(calls) == 2  # the first attempt and one retry, not six
    # A registry 5xx keeps --retries in full.
    five = classify_failure("ERROR: failed to solve: failed to push x: unexpected status: 520 Origin Error")
    assert five.transient and five.cap is None


def test_a_step_the_runtime_could_not_start_gets_one_retry() -> None:
    # Seen on this machine (Engine 28's dockerd, a RUN step under load) and in concourse/concourse#6180;
    # runc's newer words are from opencontainers/runc#2812.
    final = ('ERROR: failed to build: failed to solve: process "/bin/sh -c mkdir -p /app/dist /app/reports" did '
             "not complete successfully: exit code: 1")
    for line in ("runc run failed: unable to start container process: waiting for init preliminary setup: read "
                 "init-p: connection reset by peer",
                 "exec failed: container_linux.go:367: starting container process caused: process_linux.go:105: "
                 "possibly OOM-killed caused: read init-p: connection reset by peer"):
        f = classify_failure(final, "[base 3/3] RUN mkdir -p /app/dist /app/reports", ["0.192 " + line])
        assert (f.transient, f.phase, f.cap) == (True, "runtime", 1), f
    # A command that is not there is the Dockerfile's fault, started or not: final.
    missing = classify_failure(final, "RUN foo", ['runc run failed: unable to start container process: exec: "foo": '
                                                  "executable file not found in $PATH"])
    assert not missing.transient and missing.phase == "build"
    # Without the step's output it stays the step's failure.
    assert not classify_failure(final).transient


def test_a_number_that_is_no_status_is_no_server_error() -> None:
    f = classify_failure("ERROR: failed to solve: failed to compute cache key: failed to calculate checksum of ref "
                         "512 files: not found")
    assert not f.transient
