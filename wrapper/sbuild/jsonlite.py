"""JSON on the start-up path (the bake file sbuild writes, buildx's small state files it reads) through
CPython's C codec, `_json`, without the json package: json.decoder loads `re`, ~5 ms together before buildx
could start. Same output as json.dumps with its defaults, same values as json.loads."""

from __future__ import annotations

from ._tuple import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

from _json import encode_basestring_ascii, make_scanner  # CPython's C codec


class _Decoder:
    """What the C scanner reads of a json.JSONDecoder: its defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    def parse_constant(self, name: str) -> float:
        return float(name.replace("Infinity", "inf"))  # NaN, Infinity, -Infinity, as json.loads


_scan: Callable[[str, int], tuple[object, int]] = make_scanner(_Decoder())  # type: ignore[arg-type]


def loads(text: str) -> object:
    """json.loads for a whole document; ValueError when it is not one."""
    start = len(text) - len(text.lstrip(" \t\n\r"))
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError("not JSON") from None
    if text[end:].strip(" \t\n\r"):
        raise ValueError("extra data after the JSON value")
    return value


def dumps(value: object) -> str:
    """json.dumps(value) (ASCII, ", " and ": " separators) for dicts with string keys, lists, tuples,
    strings, numbers, booleans and None."""
    if isinstance(value, str):
        return str(encode_basestring_ascii(value))
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{dumps(_key(k))}: {dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _key(k: object) -> str:
    """A dict key as json.dumps writes it: strings as they are; numbers, booleans and None as their JSON."""
    if isinstance(k, str):
        return k
    if k is None or isinstance(k, (int, float)):  # (bool is an int)
        return dumps(k)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")
