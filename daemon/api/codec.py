"""The VAPIX simplified key-value format, both ways.

Request side: `Key_Sub_0_Leaf=value` pairs (already URL-decoded by `parse_query`) become nested
dicts and lists. Response side: nested data becomes one `key=value` line per scalar.

Rules (spec, "JSON and simplified key-value requests"):
- levels are joined by `_` (VAPIX field names never contain `_`); a numeric level is a list index;
- `true` / `false` are booleans, `null` is None, anything else is a string; a string may be wrapped
  in double quotes, and a quoted value is always a string (`"true"` is the text true);
- numbers stay strings on the way in (the command handlers coerce them by type: `lenient=True`).

Decisions where the spec is silent:
- lists must be dense (indices 0..n-1, any order); `A=1&A_B=2`, `A_0=1&A_B=2` and repeated keys are
  malformed, not "last one wins", because guessing would silently drop data;
- a single `_` key (jQuery's cache buster) is ignored;
- on the way out strings are quoted and URL-encoded with `+` for space (as the spec's
  `StatusText="Does+not+register"`), keeping `_ : . - @ ~ [ ] ( ) / , ! * '` readable;
  the empty string is `""`; empty lists and dicts produce no line (the spec's own example omits
  `TURNServers: []`), so they do not survive a round trip.
"""
from __future__ import annotations

import math
import re
from urllib.parse import quote_plus, unquote_to_bytes

from daemon.faults import VapixFault, malformed

MAX_PAIRS = 1000        # key-value pairs in one request
MAX_DEPTH = 12          # levels in one key (SIPAccount_0_SIPProxy_1_Server is 5)
MAX_INDEX = 999         # the spec recommends at most 100 entities per type
MAX_KEY_LENGTH = 256

CONTROL_KEYS = frozenset({"format", "action"})  # envelope keys, never command parameters

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9:.\-]*\Z")
_INDEX = re.compile(r"(0|[1-9][0-9]{0,5})\Z")
_SAFE = "_:.-@~[]()/,!*'"


# --------------------------------------------------------------------------------------- parsing

def to_bytes(query: str | bytes) -> bytes:
    """WSGI hands the query string over as latin-1 text (PEP 3333): get the raw bytes back."""
    if isinstance(query, bytes):
        return query
    try:
        return query.encode("latin-1")
    except UnicodeEncodeError:  # a test client that already passed real text
        return query.encode("utf-8", "surrogatepass")


def parse_query(query: str | bytes) -> list[tuple[str, str]]:
    """URL-decode a query string / form body into pairs, exactly once, strictly UTF-8.

    Raises a malformed fault for bad UTF-8 or too many pairs.
    """
    # Our own loop: urllib's parse_qsl cannot decode bytes as UTF-8 strictly.
    fields = [f for f in to_bytes(query).split(b"&") if f]
    if len(fields) > MAX_PAIRS:
        raise malformed(f"Too many parameters (at most {MAX_PAIRS})")
    pairs = []
    try:
        for f in fields:
            key, _, value = f.partition(b"=")
            pairs.append((_unquote(key), _unquote(value)))
    except UnicodeDecodeError:
        raise malformed("Parameters are not valid UTF-8") from None
    return pairs


def _unquote(raw: bytes) -> str:
    return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")


def decode_value(raw: str):
    if raw == "true":
        return True
    if raw == "false":
        return False
    if raw == "null":
        return None
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        return raw[1:-1]
    return raw


def _split_key(key: str) -> list[str | int]:
    if len(key) > MAX_KEY_LENGTH:
        raise malformed(f"Key too long: {key[:40]}...")
    segments: list[str | int] = []
    for part in key.split("_"):
        if _INDEX.match(part):
            index = int(part)
            if index > MAX_INDEX:
                raise malformed(f"List index too large in key {key[:80]}")
            segments.append(index)
        elif _NAME.match(part):
            segments.append(part)
        else:
            raise malformed(f"Invalid key: {key[:80]}")
    if len(segments) > MAX_DEPTH:
        raise malformed(f"Key nested too deep: {key[:80]}")
    if isinstance(segments[0], int):
        raise malformed(f"Key must start with a name: {key[:80]}")
    return segments


class _Node(dict):
    """Interior node while building: keys are names or indices, decided below."""


def decode(pairs: list[tuple[str, str]]) -> dict:
    """Simplified key-value pairs -> nested parameters. `format` and `action` are skipped."""
    if len(pairs) > MAX_PAIRS:
        raise malformed(f"Too many parameters (at most {MAX_PAIRS})")
    root = _Node()
    for key, raw in pairs:
        if key in CONTROL_KEYS or key == "_":
            continue
        segments = _split_key(key)
        node = root
        for depth, segment in enumerate(segments):
            last = depth == len(segments) - 1
            if segment in node:
                existing = node[segment]
                if last or not isinstance(existing, _Node):
                    raise malformed(f"Conflicting keys at {key[:80]}")
                node = existing
            elif last:
                node[segment] = decode_value(raw)
            else:
                node[segment] = node = _Node()
    return _finish(root, "")


def _finish(node: _Node, path: str):
    indices = [k for k in node if isinstance(k, int)]
    if indices:
        if len(indices) != len(node):
            raise malformed(f"Both list indices and names under {path or 'the top level'}")
        if sorted(indices) != list(range(len(indices))):
            raise malformed(f"List {path} is not numbered 0..{len(indices) - 1}")
        return [_finish_value(node[i], f"{path}_{i}") for i in range(len(indices))]
    return {k: _finish_value(v, f"{path}_{k}" if path else k) for k, v in node.items()}


def _finish_value(value, path: str):
    return _finish(value, path) if isinstance(value, _Node) else value


# -------------------------------------------------------------------------------------- encoding

def encode_scalar(value) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "null"
        # repr gives the shortest exact form; drop the '+' a client would read as a space
        return repr(value).replace("e+", "e")
    return '"' + quote_plus(str(value), safe=_SAFE, errors="replace") + '"'


def flatten(obj, prefix: str = "") -> list[tuple[str, str]]:
    """Nested data -> [(key, encoded value)] in document order."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[str, object]] = [(prefix, obj)]
    while stack:
        key, value = stack.pop()
        if isinstance(value, dict):
            items = [(f"{key}_{k}" if key else str(k), v) for k, v in value.items()]
        elif isinstance(value, (list, tuple)):
            items = [(f"{key}_{i}", v) for i, v in enumerate(value)]
        else:
            out.append((key, encode_scalar(value)))
            continue
        stack.extend(reversed(items))
    return out


def encode(obj: dict) -> str:
    """A response body in the simplified format: one `key=value` per line, trailing newline."""
    lines = [f"{k}={v}" for k, v in flatten(obj)]
    return "".join(line + "\n" for line in lines)


def encode_fault(fault: VapixFault) -> str:
    """`Fault="env:Receiver"` ... `FaultMsg=null`, as the spec's simplified fault example."""
    return encode(fault.to_dict())
