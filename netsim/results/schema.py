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


def _fits(value: object, hint: Any) -> bool:
    """Whether the value's own kind fits the hint (containers: not yet their contents)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(_fits(value, arm) for arm in typing.get_args(hint))
    if origin is Literal:
        return any(type(value) is type(v) for v in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if origin is list or hint is list:
        return isinstance(value, list)
    return isinstance(value, dict)  # a TypedDict or dict[str, X]


def _arm(value: object, hint: Any) -> Any:
    """The one arm of a union the value's kind fits (the first that fits; None when none does)."""
    if typing.get_origin(hint) not in (Union, types.UnionType):
        return hint if _fits(value, hint) else None
    return next((arm for arm in typing.get_args(hint) if _fits(value, arm)), None)


def problem(value: object, hint: Any, where: str) -> str | None:
    """The first field under `where` whose value does not fit `hint`: 'FIELD: expected X, got Y'."""
    arm = _arm(value, hint)
    if arm is None:
        return f"{where}: expected {_expected(hint)}, got {_name(value)}"
    if _is_typeddict(arm):
        assert isinstance(value, dict)
        for key, sub in fields(arm).items():
            if key in value:
                found = problem(value[key], sub, f"{where}.{key}" if where else key)
                if found:
                    return found
        return None
    args = typing.get_args(arm)
    origin = typing.get_origin(arm)
    if origin is list and args:
        assert isinstance(value, list)
        return next((p for i, v in enumerate(value) if (p := problem(v, args[0], f"{where}[{i}]"))), None)
    if origin is dict and len(args) == 2:
        assert isinstance(value, dict)
        return next((p for k, v in value.items() if (p := problem(v, args[1], f"{where}.{k}"))), None)
    return None
