"""RTSP/1.0 messages (RFC 2326), strictly bounded, and the RTP packets of the event stream.

Pure functions: parse one request from a byte buffer, format one response, build one RTP packet.
Only what an event stream needs; anything else is refused by the server with a status code.
"""
from __future__ import annotations

import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import parse_qsl, urlsplit

MAX_HEAD = 8192            # request line + headers
MAX_HEADERS = 48
MAX_BODY = 4096            # we never need a request body; a small one is read and ignored
RTP_PAYLOAD_TYPE = 98      # dynamic
RTP_CLOCK = 90000
METHODS = ("OPTIONS", "DESCRIBE", "SETUP", "PLAY", "TEARDOWN", "GET_PARAMETER")
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 413: "Request Entity Too Large", 431: "Request Header Fields Too Large",
           454: "Session Not Found", 455: "Method Not Valid in This State", 459: "Aggregate Operation Not Allowed",
           461: "Unsupported Transport", 500: "Internal Server Error", 501: "Not Implemented",
           503: "Service Unavailable", 505: "RTSP Version Not Supported", 551: "Option not supported"}


class RtspError(Exception):
    """A request we answer with `status` (and then, if `close`, hang up)."""

    def __init__(self, status: int, message: str = "", close: bool = False):
        super().__init__(message or REASONS.get(status, ""))
        self.status = status
        self.close = close


@dataclass
class Request:
    method: str
    url: str
    headers: dict[str, str]        # lower-case names; a repeated header keeps its first value
    body: bytes = b""

    @property
    def cseq(self) -> str:
        return self.headers.get("cseq", "0")

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, str]:
        try:
            return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True, max_num_fields=16))
        except ValueError:
            raise RtspError(400, "too many or malformed query parameters") from None


def parse_request(buffer: bytes) -> tuple[Request | None, int]:
    """(request, bytes consumed) when `buffer` starts with a whole request, (None, 0) when more is
    needed. Raises RtspError(close=True) for anything malformed or too large."""
    if buffer[:1] == b"$":
        raise RtspError(400, "interleaved data is not accepted (use RTP over UDP)", close=True)
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_HEAD:
            raise RtspError(431, close=True)
        return None, 0
    if end > MAX_HEAD:
        raise RtspError(431, close=True)
    try:
        head = buffer[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise RtspError(400, "request head is not UTF-8", close=True) from None
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].replace("_", "").isalpha() or not parts[1]:   # GET_PARAMETER
        raise RtspError(400, f"bad request line {lines[0][:80]!r}", close=True)
    if parts[2] != "RTSP/1.0":
        raise RtspError(505, close=True)
    if len(lines) - 1 > MAX_HEADERS:
        raise RtspError(431, close=True)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or name != name.strip() or not line.isprintable():
            raise RtspError(400, "bad header line", close=True)
        headers.setdefault(name.lower(), value.strip())
    length = headers.get("content-length", "0")
    if not length.isdigit() or int(length) > MAX_BODY:
        raise RtspError(413, close=True)
    total = end + 4 + int(length)
    if len(buffer) < total:
        return None, 0
    return Request(parts[0], parts[1], headers, bytes(buffer[end + 4:total])), total


def format_response(status: int, cseq: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b"",
                    now: float | None = None) -> bytes:
    """One response as one byte string: the server writes it with one write (axis v60 parses one
    response per TCP read)."""
    lines = [f"RTSP/1.0 {status} {REASONS.get(status, 'Error')}", f"CSeq: {cseq}",
             f"Date: {formatdate(time.time() if now is None else now, usegmt=True)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


@dataclass
class ClientTransport:
    rtp_port: int
    rtcp_port: int


def parse_transport(value: str) -> ClientTransport:
    """`RTP/AVP;unicast;client_port=a-b` (UDP unicast only; a `destination` is ignored: packets
    go only to the address the request came from, so the stream cannot be aimed at a third party)."""
    for spec in value.split(",")[:4]:
        params = [p.strip() for p in spec.split(";")]
        if params[0] not in ("RTP/AVP", "RTP/AVP/UDP") or "multicast" in params:
            continue
        for p in params[1:]:
            name, _, ports = p.partition("=")
            if name == "client_port":
                a, _, b = ports.partition("-")
                if a.isdigit() and 0 < int(a) < 65536 and (not b or (b.isdigit() and 0 < int(b) < 65536)):
                    return ClientTransport(int(a), int(b) if b else int(a) + 1)
    raise RtspError(461, "only RTP/AVP over UDP unicast with client_port")


@dataclass
class RtpSequence:
    """RTP header fields of one stream: random SSRC, sequence and timestamp bases (RFC 3550)."""
    ssrc: int
    seq: int
    ts_base: int
    started: float = field(default_factory=time.monotonic)

    def packet(self, payload: bytes, now: float | None = None) -> bytes:
        elapsed = (time.monotonic() if now is None else now) - self.started
        ts = (self.ts_base + int(elapsed * RTP_CLOCK)) & 0xFFFFFFFF
        header = struct.pack("!BBHII", 0x80, 0x80 | RTP_PAYLOAD_TYPE, self.seq, ts, self.ssrc)
        self.seq = (self.seq + 1) & 0xFFFF
        return header + payload
