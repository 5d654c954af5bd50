"""typing.NamedTuple for the modules on every build's start-up path, without importing `typing`.

`typing` costs ~10 ms to import here (it pulls in `re`, `functools`, `contextlib`), paid before buildx
could start. A class written `class X(NamedTuple):` gets exactly what typing would make of it: typing's
NamedTupleMeta also builds it with `collections.namedtuple` and copies the class body over. mypy sees
typing's own NamedTuple:

    from ._tuple import TYPE_CHECKING

    if TYPE_CHECKING:
        from typing import NamedTuple
    else:
        from ._tuple import NamedTuple
"""

from __future__ import annotations

import collections

TYPE_CHECKING = False  # mypy and ruff take any name TYPE_CHECKING as typing's

# What typing.NamedTupleMeta keeps from the class body, and what it refuses to let it overwrite.
_SPECIAL = frozenset({"__module__", "__name__", "__annotations__"})
_PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults",
                         "_make", "_replace", "_asdict", "_source"})


class _Meta(type):
    def __new__(mcs, name: str, bases: tuple[type, ...], ns: dict[str, object]) -> type:
        if not bases:  # NamedTuple itself
            return super().__new__(mcs, name, bases, ns)
        if bases != (NamedTuple,):
            raise TypeError("a NamedTuple class can only inherit from NamedTuple")
        fields = ns.get("__annotations__", {})
        assert isinstance(fields, dict)
        defaults = [ns[f] for f in fields if f in ns]
        cls: type = collections.namedtuple(name, list(fields), defaults=defaults,  # type: ignore[misc]
                                           module=str(ns["__module__"]))
        cls.__annotations__ = dict(fields)
        for key, value in ns.items():
            if key in _PROHIBITED:
                raise AttributeError(f"Cannot overwrite NamedTuple attribute {key}")
            if key not in _SPECIAL and key not in fields:
                setattr(cls, key, value)
        return cls


class NamedTuple(metaclass=_Meta):
    """The base to write `class X(NamedTuple):` against (see the module's docstring)."""
