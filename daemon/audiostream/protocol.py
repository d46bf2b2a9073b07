"""The per-stream Unix socket between the API process and the supervisor.

One connection per HTTP stream. The API sends one JSON line, the supervisor answers one JSON line,
then audio flows one way until either side closes: to the supervisor (transmit) S16_LE mono PCM
at the hub's rate, from it (receive) G.711 mu-law at 8 kHz (the hub encodes once for all):

    API -> {"kind": "receive" | "transmit", "peer": "<client address>", "user": "<name>"}\\n
    supervisor -> {"ok": true, "id": 7, "rate": 16000}\\n            then PCM
               or {"ok": false, "status": 503, "reason": "..."}\\n  then close

Why a socket per stream and not frames on the control socket: the control socket carries JSON
requests and answers; audio on it would need framing, base64 and a demultiplexer on both ends, and
one slow stream would delay the door's commands behind it. A stream socket gives each stream its
own kernel buffer (backpressure: a transmitter that sends faster than real time is slowed by TCP
all the way back to the client), and closing it is the stream's end in both directions.
"""
from __future__ import annotations

import json

MAX_HEADER = 1024
KINDS = ("receive", "transmit")


class ProtocolError(ValueError):
    pass


def encode(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict:
    if len(line) > MAX_HEADER or not line.endswith(b"\n"):
        raise ProtocolError("header line missing or too long")
    try:
        doc = json.loads(line)
    except ValueError:
        raise ProtocolError("header is not JSON") from None
    if not isinstance(doc, dict):
        raise ProtocolError("header must be an object")
    return doc
