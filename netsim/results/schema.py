"""Type checks of record data against the typed records (netsim/records/), field by field.

Records on disk may come from someone else's machine, an older netsim or a crashed session, so a missing
key is no error (readers use `.get()`), but a key that is present must hold its type: a number where a
number belongs, an object where an object belongs. `problem` names the first field that does not.

Why not pydantic (used at the peer protocol's boundary): on Python 3.11 it cannot read `typing.TypedDict`,
which the records use, and it would insist on every required key, which older and partial records lack.
A literal (a verdict, a NAT kind) is checked for its type only: a vocabulary word an older or newer netsim
wrote is still text, and every reader handles a word it does not know.
"""

from __future__ import annotations

import functools
import math
import types
import typing
from collections.abc import Callable
from typing import Any, Final, Literal, Union

import typing_extensions

NUMBER: Final = "number"


def _name(value: object) -> str:
    """The JSON kind of a value, as a message says it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return NUMBER
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object" if isinstance(value, dict) else type(value).__name__


def _is_typeddict(hint: object) -> bool:
    return typing.is_typeddict(hint) or typing_extensions.is_typeddict(hint)


@functools.cache
def fields(typed: type) -> dict[str, Any]:
    """A TypedDict's keys and their types (NotRequired unwrapped: a missing key is fine anyway)."""
    return typing.get_type_hints(typed)


def _expected(hint: Any) -> str:
    """What a hint accepts, in the words of JSON: 'number or null', 'list', 'object', ..."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return "anything"
    if origin in (Union, types.UnionType):
        return " or ".join(dict.fromkeys(_expected(arm) for arm in typing.get_args(hint)))
    if origin is Literal:
        return " or ".join(dict.fromkeys(_name(v) for v in typing.get_args(hint)))
    if hint is type(None):
        return "null"
    if hint is bool:
        return "boolean"
    if hint is int:
        return "whole number"
    if hint is float:
        return NUMBER
    if hint is str:
        return "string"
    if origin is list or hint is list:
        return "list"
    return "object"


Check = Callable[[object], "str | None"]  # None, or 'PATH: expected X, got Y' with PATH from this value down


def problem(value: object, hint: Any, where: str) -> str | None:
    """The first field under `where` whose value does not fit `hint`: 'FIELD: expected X, got Y'."""
    found = _checker(hint)(value)
    if found is None:
        return None
    return f"{where}{found}" if where else found.lstrip(".")


def _classes(hint: Any) -> set[type] | None:
    """The Python classes of the JSON values a hint accepts (None: any value); float takes int too."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return None
    if origin in (Union, types.UnionType):
        arms = [_classes(arm) for arm in typing.get_args(hint)]
        return None if any(a is None for a in arms) else set().union(*arms)  # type: ignore[arg-type]
    if origin is Literal:
        return {type(v) for v in typing.get_args(hint)}
    if hint is float:
        return {int, float}
    if hint in (type(None), bool, int, str, list, dict):
        return {hint}
    return {list} if origin is list else {dict}  # list[X]; a TypedDict or dict[str, X]


def _kind(hint: Any) -> Callable[[object], bool]:
    """Whether a value's own kind fits the hint (containers: not yet their contents). Exact classes: a
    boolean is no number; NaN and infinities are no number JSON allows."""
    classes = _classes(hint)
    if classes is None:
        return lambda v: True
    if float in classes:
        return lambda v: v.__class__ in classes and (v.__class__ is not float or math.isfinite(v))
    return lambda v: v.__class__ in classes


@functools.cache
def _checker(hint: Any) -> Check:
    """A check of values against the hint, made once per hint (records hold thousands of values)."""
    fits, deep, expected = _kind(hint), _deep(hint), _expected(hint)

    def check(value: object) -> str | None:
        if not fits(value):
            return f": expected {expected}, got {_name(value)}"
        return deep(value) if deep is not None else None

    return check


def _deep(hint: Any) -> Check | None:
    """The check of a container's contents (the value's kind already fits); None for a scalar."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        arms = [(_kind(arm), _deep(arm)) for arm in args]
        if all(deep is None for _, deep in arms):
            return None
        return lambda v: next(((deep(v) if deep else None) for fits, deep in arms if fits(v)), None)
    if _is_typeddict(hint):
        return _typed_dict(hint)
    if origin is list and args and args[0] is not Any:
        return _sequence(_checker(args[0]))
    if origin is dict and len(args) == 2 and args[1] is not Any:
        return _mapping(_checker(args[1]))
    return None


def _typed_dict(typed: Any) -> Check:
    keyed = [(key, _checker(sub)) for key, sub in fields(typed).items()]

    def check(value: object) -> str | None:
        assert isinstance(value, dict)
        for key, sub in keyed:
            if key in value and (found := sub(value[key])) is not None:
                return f".{key}{found}"
        return None

    return check


def _sequence(item: Check) -> Check:
    def check(value: object) -> str | None:
        assert isinstance(value, list)
        for i, v in enumerate(value):
            if (found := item(v)) is not None:
                return f"[{i}]{found}"
        return None

    return check


def _mapping(item: Check) -> Check:
    def check(value: object) -> str | None:
        assert isinstance(value, dict)
        for key, v in value.items():
            if (found := item(v)) is not None:
                return f".{key}{found}"
        return None

    return check
