"""Turning JSON-shaped request values into checked Python values, or a VAPIX fault.

Every reader here accepts *any* JSON-shaped value (dict, list, str, int, float, bool, None) and either
returns a value of the promised type or raises a VapixFault; nothing else may escape, because a
command that crashes on a client's input answers with a misleading Receiver fault.

`lenient` is the simplified key-value format: scalars arrive as strings ("5060", "true"), so
Integer and Boolean fields are coerced from strings and String fields accept what a decoder may have
turned into a bool or a number. JSON requests (lenient False) must carry the right JSON types.
"""
from __future__ import annotations

import math
import re
from typing import Any, Iterable, Literal, overload

from daemon.faults import invalid_arg, missing_arg

MAX_ID = 64            # SIPAccountId, DTMF*Id, CallId: maxLength=64 in the spec
MAX_STRING = 1024      # generous bound for free-text fields (names, URIs, stream parameters)
PASSWORD_PLACEHOLDER = "********"   # what reads answer instead of a stored password

_INT_TEXT = re.compile(r"-?[0-9]{1,18}")
# C0 and C1 controls, DEL, and the Unicode line/paragraph separators: no VAPIX string needs them,
# and in a field that reaches a SIP URI or header (UserId, Registrar, To, ...) a CR/LF would forge
# header lines or make every later SIP apply fail ("Invalid URI").
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ABSENT = object()


def describe(value: Any) -> str:
    """A short, safe description of a value for fault messages (never the value of a password)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# -- containers --------------------------------------------------------------------------------

def as_object(value: Any, what: str, *, none_is_empty: bool = True) -> dict:
    """A JSON object; null counts as an empty object (an empty request body)."""
    if value is None and none_is_empty:
        return {}
    if isinstance(value, dict):
        return value
    raise invalid_arg(f"{what} must be an object, not {describe(value)}")


def as_list(value: Any, what: str, *, lenient: bool, single_ok: bool = False) -> list:
    """A JSON list. `single_ok`: one object stands for a one-element list. In the simplified format
    a list the decoder left as {"0": .., "1": ..} is turned back into a list."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if lenient and value and all(isinstance(k, str) and k.isdigit() and len(k) < 10 for k in value):
            return [value[k] for k in sorted(value, key=int)]
        if single_ok:
            return [value]
    raise invalid_arg(f"{what} must be a list, not {describe(value)}")


def first_present(obj: dict, keys: Iterable[str], default: Any = _ABSENT) -> Any:
    """Value of the first of `keys` present in `obj` (aliases, in order of preference)."""
    for key in keys:
        if key in obj:
            return obj[key]
    return default


def has_any(obj: dict, keys: Iterable[str]) -> bool:
    return any(key in obj for key in keys)


# -- scalars ---------------------------------------------------------------------------------

# Only a nullable string can come back as None: the overloads tell the type checker so.
@overload
def string(value: Any, what: str, *, lenient: bool, max_len: int = MAX_STRING,
           nullable: Literal[False] = False, non_empty: bool = False) -> str: ...
@overload
def string(value: Any, what: str, *, lenient: bool, max_len: int = MAX_STRING,
           nullable: bool = False, non_empty: bool = False) -> str | None: ...
def string(value: Any, what: str, *, lenient: bool, max_len: int = MAX_STRING,
           nullable: bool = False, non_empty: bool = False) -> str | None:
    if value is None:
        if nullable:
            return None
        raise invalid_arg(f"{what} must be a string, not null")
    if lenient and isinstance(value, bool):
        value = "true" if value else "false"
    elif lenient and isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise invalid_arg(f"{what} must be a string, not {describe(value)}")
    if len(value) > max_len:
        raise invalid_arg(f"{what} is longer than {max_len} characters")
    if _CONTROL.search(value):
        raise invalid_arg(f"{what} must not contain control characters (CR, LF, tab, ...)")
    if non_empty and not value:
        raise invalid_arg(f"{what} must not be empty")
    return value


def boolean(value: Any, what: str, *, lenient: bool) -> bool:
    if isinstance(value, bool):
        return value
    if lenient and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise invalid_arg(f"{what} must be true or false, not {describe(value)}")


def integer(value: Any, what: str, *, lenient: bool, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool):   # bool is an int subclass in Python, never in JSON
        raise invalid_arg(f"{what} must be an integer, not a boolean")
    if lenient and isinstance(value, str):
        text = value.strip()
        if not _INT_TEXT.fullmatch(text):
            raise invalid_arg(f"{what} must be an integer")
        value = int(text)
    if isinstance(value, float) and lenient and math.isfinite(value) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise invalid_arg(f"{what} must be an integer, not {describe(value)}")
    if lo is not None and value < lo:
        raise invalid_arg(f"{what} must be at least {lo}")
    if hi is not None and value > hi:
        raise invalid_arg(f"{what} must be at most {hi}")
    return value


def enum(value: Any, what: str, choices: Iterable[str], *, lenient: bool) -> str:
    """One of `choices`, matched case-insensitively, answered in the canonical spelling."""
    text = string(value, what, lenient=lenient, max_len=64)
    for choice in choices:
        if choice.lower() == text.lower():
            return choice
    raise invalid_arg(f"{what} must be one of {', '.join(choices)}")


def identifier(value: Any, what: str, *, lenient: bool) -> str:
    """An entity id (String, maxLength 64). Empty is allowed here; callers decide what it means."""
    return string(value, what, lenient=lenient, max_len=MAX_ID)


def required(obj: dict, keys: str | tuple[str, ...], what: str | None = None) -> Any:
    """The value under the first present of `keys`, or a missing-argument fault."""
    names = (keys,) if isinstance(keys, str) else keys
    value = first_present(obj, names)
    if value is _ABSENT:
        raise missing_arg(f"{what or names[0]} is required")
    return value


def optional(obj: dict, keys: str | tuple[str, ...]) -> Any:
    """The value under the first present of `keys`, or ABSENT."""
    names = (keys,) if isinstance(keys, str) else keys
    return first_present(obj, names)


ABSENT = _ABSENT


# -- request shapes shared by many commands ------------------------------------------------------

def id_list(params: Any, keys: tuple[str, ...], what: str, *, lenient: bool) -> list[str] | None:
    """The id list of a plural Get/Remove: a list, a single string, or absent/null/empty (None = all).
    Duplicates are dropped, request order is kept."""
    obj = as_object(params, "request")
    value = first_present(obj, keys, None)
    if value is None or value == "" or value == [] or value == {}:
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool) and (isinstance(value, str) or lenient):
        items = [value]
    else:
        items = as_list(value, what, lenient=lenient)
    ids: list[str] = []
    for item in items:
        ident = identifier(item, what, lenient=lenient)
        if ident not in ids:
            ids.append(ident)
    return ids


def single_id(params: Any, keys: tuple[str, ...], what: str, *, lenient: bool) -> str:
    """The id of a singular Get/Remove (required)."""
    obj = as_object(params, "request")
    return identifier(required(obj, keys, what), what, lenient=lenient)


def unwrap_one(params: Any, wrappers: tuple[str, ...], what: str, *, bare_ok: bool = True) -> tuple[dict, dict]:
    """The object of a singular Set: `{"<wrapper>": {...}}` or, when `bare_ok`, the fields given
    straight in the request. Returns (object, whole request)."""
    obj = as_object(params, "request")
    value = first_present(obj, wrappers)
    if value is _ABSENT:
        if bare_ok and obj:
            return obj, obj
        raise missing_arg(f"{what} is required")
    return as_object(value, what, none_is_empty=False), obj


def unwrap_many(params: Any, item_key: str, plural_key: str, what: str, *, lenient: bool,
                aliases: tuple[str, ...] = ()) -> list[dict]:
    """The objects of a plural Set. Accepted: a bare list, {"<Item>": [...]}, {"<Items>": [...]},
    {"<Items>": {"<Item>": [...]}}, and a single object instead of a list."""
    if isinstance(params, list):
        value: Any = params
    else:
        obj = as_object(params, "request")
        value = first_present(obj, (item_key,) + aliases)
        if value is _ABSENT:
            value = first_present(obj, (plural_key,))
            if value is _ABSENT:
                raise missing_arg(f"{item_key} is required")
            if isinstance(value, dict) and item_key in value:
                value = value[item_key]
    if value is None:
        raise missing_arg(f"{item_key} is required")
    items = as_list(value, item_key, lenient=lenient, single_ok=True)
    return [as_object(item, f"{what} #{i}", none_is_empty=False) for i, item in enumerate(items)]
