"""The control socket's framing: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.

Request  {"id": int, "command": str, "args": {...}}
Reply    {"id": int, "ok": true, "data": ...}
         {"id": int, "ok": false, "error": {"kind": "fault", "fault": {...VapixFault.to_wire()}}}
         {"id": int, "ok": false, "error": {"kind": "error", "message": str}}
Messages are bounded (MAX_MESSAGE) so a confused peer cannot make the other side buffer without end.
"""
from __future__ import annotations

import json
import struct

MAX_MESSAGE = 1 << 20
HEADER = struct.Struct(">I")


class ProtocolError(Exception):
    """The peer sent something that is not a valid frame."""


def encode(message: dict) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    if len(body) > MAX_MESSAGE:
        raise ProtocolError(f"message of {len(body)} bytes exceeds {MAX_MESSAGE}")
    return HEADER.pack(len(body)) + body


def frame_length(header: bytes) -> int:
    (length,) = HEADER.unpack(header)
    if length > MAX_MESSAGE:
        raise ProtocolError(f"frame of {length} bytes exceeds {MAX_MESSAGE}")
    return length


def decode(body: bytes) -> dict:
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProtocolError(f"frame is not JSON: {e}") from e
    if not isinstance(message, dict):
        raise ProtocolError("frame is not a JSON object")
    return message
