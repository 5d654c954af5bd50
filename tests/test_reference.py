"""reference.plainly_valid against tags.check_reference (Docker's grammar as one regex): the quick check
accepts nothing the grammar refuses, and the common shapes without loading the grammar."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sbuild import tags
from sbuild.errors import UsageError
from sbuild.reference import plainly_valid

from .helpers import count_example


def _grammar_accepts(ref: str) -> bool:
    try:
        tags.check_reference(ref)
    except UsageError:
        return False
    return True


COMMON = ["app", "app:1", "sbuild-it/0a1b2c3d4e:early", "127.0.0.1:5000/team/app:v1.2.3", "localhost/app:latest",
          "registry.example.com:443/a/b/c:x_y-z.1", "Registry.Example.COM/app:TAG", "a__b/c---d/e.f:_t",
          "ghcr.io/org/app:" + "t" * 128, "x" * 255]


@pytest.mark.parametrize("ref", COMMON)
def test_the_common_shapes_are_accepted_quickly_and_by_the_grammar(ref: str) -> None:
    assert plainly_valid(ref)
    assert _grammar_accepts(ref)


@pytest.mark.parametrize("ref", ["", "App:1", "app:", "app:-x", "app:" + "t" * 129, "a/-b", "a/b-", "a..b",
                                 "a___b", "a_.b", "host:port/app", "-host:5000/app", "host:5000/App", "x" * 256,
                                 "app@sha256:" + "0" * 64, "[::1]:5000/app", "app:1\n", "app:ü", "a//b", "/a", "a/"])
def test_anything_else_is_left_to_the_grammar(ref: str) -> None:
    assert not plainly_valid(ref)  # check_reference decides (and words the error)


PIECES = st.sampled_from(["a", "Z", "0", "9", ".", "_", "__", "-", "--", "/", ":", "@", "5000", "localhost", "[::1]",
                          "ü", " ", "\n", "sha256:" + "a" * 32, "x" * 120])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, max_size=12).map("".join))
def test_the_quick_check_accepts_nothing_the_grammar_refuses(ref: str) -> None:
    count_example()
    if plainly_valid(ref):
        assert _grammar_accepts(ref), ref
