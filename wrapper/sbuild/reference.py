"""Docker's image reference grammar, for the shapes nearly every `-t` takes, without `re`. Pure.

Checking a tag is on every tagged build's start-up path, and tags.check_reference (re, typing and one
large regex) costs ~12 ms to load. `plainly_valid` accepts only references that regex accepts
([HOST[:PORT]/]PATH[:TAG], ASCII, no digest); anything else goes to check_reference, which accepts the
rarer shapes and words the error (tests/test_reference.py checks the two agree).
"""

from __future__ import annotations

_LOWER_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_ALNUM = _LOWER_ALNUM | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TAG_FIRST = _ALNUM | {"_"}
_TAG_REST = _TAG_FIRST | {".", "-"}
_HOST = _ALNUM | {"-"}
_DIGITS = frozenset("0123456789")


def plainly_valid(ref: str) -> bool:
    """True: Docker's grammar accepts ref (and its name is at most 255 characters). False: not one of the
    common shapes; tags.check_reference decides."""
    if "@" in ref:
        return False
    name = ref
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = ref.rsplit(":", 1)
        if not tag or len(tag) > 128 or tag[0] not in _TAG_FIRST or not _TAG_REST.issuperset(tag):
            return False
    if not name or len(name) > 255:
        return False
    parts = name.split("/")
    if len(parts) > 1 and not _path_component(parts[0]):
        if not _domain(parts[0]):
            return False
        parts = parts[1:]
    return all(_path_component(p) for p in parts)


def _path_component(s: str) -> bool:
    """[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*"""
    if not s or s[0] not in _LOWER_ALNUM or s[-1] not in _LOWER_ALNUM:
        return False
    sep = ""
    for c in s:
        if c in _LOWER_ALNUM:
            if sep and sep not in (".", "_", "__") and set(sep) != {"-"}:
                return False
            sep = ""
        elif c in "._-":
            sep += c
        else:
            return False
    return True


def _domain(s: str) -> bool:
    """host(\\.host)*(:port)?, each host label alphanumeric with inner dashes (no IPv6 literal here)."""
    host, colon, port = s.partition(":")
    if colon and (not port or not _DIGITS.issuperset(port)):
        return False
    for label in host.split("."):
        if not label or label[0] not in _ALNUM or label[-1] not in _ALNUM or not _HOST.issuperset(label):
            return False
    return True
