"""Strict, bounded reading of what clients send the HTTP layer: JSON bodies and integer/number query
parameters. One place for every resource in daemon/api, so a hostile body or query answers 400 (a
malformed/invalid-argument fault) everywhere and never reaches the supervisor as a value it cannot
hold (SQLite integers are 64-bit) or as a tree deep enough to exhaust the stack.

JSON rules: UTF-8 (a BOM is tolerated), at most MAX_BODY bytes, nesting at most MAX_DEPTH levels,
integers within 64 bits signed, floats finite (no NaN/Infinity, no 1e999), no duplicate keys, no lone
surrogate escapes. Nesting deeper than the interpreter's recursion limit stops json's C scanner
with RecursionError (it counts its own recursion), answered like any other malformed body.
"""
from __future__ import annotations

import codecs
import json
import math
import re
from typing import Any

from daemon.faults import VapixFault, invalid_arg, malformed

MAX_BODY = 64 * 1024
MAX_DEPTH = 32
INT_MIN, INT_MAX = -2 ** 63, 2 ** 63 - 1

_UINT_TEXT = re.compile(r"[0-9]{1,19}\Z")
# plain decimal notation as clients format floats (`2`, `0.5`, `.5`, `4.2e-05`,
# `0.30000000000000004`); no sign, `_`, spaces, nan/inf or other scripts' digits
_NUMBER_TEXT = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?\Z")
MAX_NUMBER_TEXT = 40


def too_large(limit: int = MAX_BODY) -> VapixFault:
    fault = malformed(f"Request body too large (at most {limit} bytes)")
    fault.http_status = 413
    return fault


def _int(text: str) -> int:
    if len(text) > 20:
        raise ValueError("integer out of range (64-bit)")
    value = int(text)
    if not INT_MIN <= value <= INT_MAX:
        raise ValueError("integer out of range (64-bit)")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _constant(name: str):
    raise ValueError(f"{name} is not allowed")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key in object")
    return obj


def _check_tree(value: Any, max_depth: int) -> None:
    """Bounded depth, and text that can be written back out as UTF-8 (json.loads accepts lone
    surrogate escapes). Iterative: the tree may be as deep as the recursion limit allowed."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise ValueError(f"nested deeper than {max_depth}")
        if isinstance(item, str):
            item.encode("utf-8")   # UnicodeEncodeError on a lone surrogate
        elif isinstance(item, dict):
            for key, child in item.items():
                key.encode("utf-8")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def parse(body: bytes, *, max_body: int = MAX_BODY, max_depth: int = MAX_DEPTH) -> Any:
    """A JSON body by the rules above, or a malformed fault (413 when too large)."""
    if len(body) > max_body:
        raise too_large(max_body)
    if body.startswith(codecs.BOM_UTF8):
        body = body[3:]
    try:
        value = json.loads(body.decode("utf-8"), object_pairs_hook=_unique_keys,
                           parse_constant=_constant, parse_float=_float, parse_int=_int)
        _check_tree(value, max_depth)
        return value
    except UnicodeEncodeError:
        raise malformed("Invalid JSON: text with a lone surrogate escape") from None
    except UnicodeError:
        raise malformed("The request body is not valid UTF-8") from None
    except (ValueError, RecursionError) as e:
        raise malformed(f"Invalid JSON: {str(e)[:120]}") from None


def read(stream, *, max_body: int = MAX_BODY, max_depth: int = MAX_DEPTH, empty: Any = None) -> Any:
    """Read at most max_body + 1 bytes of a request stream and parse them; `empty` for no body."""
    raw = stream.read(max_body + 1)
    if not raw.strip():
        return empty
    return parse(raw, max_body=max_body, max_depth=max_depth)


def query_uint(value: str | None, name: str, default: int, lo: int = 0, hi: int = INT_MAX) -> int:
    """A non-negative integer query parameter: plain decimal digits only (no sign, `_`, spaces or
    other scripts' digits, all of which Python's int() would take), within lo..hi."""
    if value is None:
        return default
    if not _UINT_TEXT.match(value) or not lo <= int(value) <= hi:
        raise invalid_arg(f"{name} must be an integer from {lo} to {hi}")
    return int(value)


def query_number(value: str | None, name: str, default: float, lo: float, hi: float) -> float:
    """A non-negative decimal number query parameter (`2`, `0.5`, `1e-3`) within lo..hi."""
    if value is None:
        return default
    if len(value) > MAX_NUMBER_TEXT or not _NUMBER_TEXT.match(value) or not lo <= float(value) <= hi:
        raise invalid_arg(f"{name} must be a number from {lo:g} to {hi:g}")
    return float(value)
