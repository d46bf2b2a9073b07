"""Limits that keep one LAN peer from starving the API: connection caps (per client address and in
total), read deadlines, and a cap on concurrent long-polls per user.

The counting here is plain logic (unit tested); daemon/api/worker.py applies the connection caps and
deadlines to sockets, and LongPollGate wraps the /api/events resource.

Every refusal is a VAPIX fault with a clear HTTP status: 429 (this address or user has too many),
503 (the station as a whole is full), 408 (the request did not arrive in time).
"""
from __future__ import annotations

import ipaddress
import os
import threading
from collections import Counter
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from daemon.faults import VapixFault

if TYPE_CHECKING:  # not imported at run time: gunicorn's master loads this module via the worker
    import falcon  # class, and Falcon would add ~17 MiB to the master


@dataclass(frozen=True)
class Limits:
    header_timeout: float = 10.0        # s from the first wait for a request to its last header line
    body_timeout: float = 30.0          # s for the whole request body, once the headers are in
    send_timeout: float = 30.0          # s for one write to a client that does not read
    max_connections: int = 512          # open client connections, all addresses together
    max_per_address: int = 64           # open client connections from one address
    max_longpolls_per_user: int = 8     # concurrent GET /api/events?wait=... of one user
    max_longpolls: int = 128            # ... of all users; below the control pool's 256
                                        # connections, so short requests always find one
    max_event_streams: int = 64         # WebSocket event streams, all addresses together
    max_event_streams_per_address: int = 8
    max_event_streams_per_user: int = 16    # one user's credentials (any role) from many addresses
    event_stream_queue: int = 256       # messages waiting for one stream; full: it is dropped
    event_stream_configure_timeout: float = 30.0   # s from the upgrade to the first events:configure
    event_stream_idle_timeout: float = 60.0        # s without a frame from the client (ping at 1/3)

    ENV_PREFIX = "DOORSTATION_"

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "Limits":
        """Defaults, overridden by DOORSTATION_HEADER_TIMEOUT, DOORSTATION_MAX_PER_ADDRESS, ..."""
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = env.get(cls.ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            kind = float if f.type in ("float", float) else int
            try:
                value = kind(raw)
            except ValueError:
                raise ValueError(f"{cls.ENV_PREFIX}{f.name.upper()}={raw!r} is not a number") from None
            if value <= 0:
                raise ValueError(f"{cls.ENV_PREFIX}{f.name.upper()} must be positive")
            values[f.name] = value
        # each value has its own field's type (float or int), converted above
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        return {self.ENV_PREFIX + f.name.upper(): str(getattr(self, f.name)) for f in fields(self)}


class BodyTimeout(Exception):
    """The request body did not arrive within Limits.body_timeout (answered 408). Not an OSError on
    purpose: gunicorn logs socket errors with a traceback, and a slow client is not a server fault."""


def too_many_connections(addr: str, what: str = "connections") -> VapixFault:
    return VapixFault("env:Receiver", "ter:Action", "ter:TooManyConnections",
                      f"Too many open {what} from {addr[:64]}", http_status=429)


def station_busy(what: str = "connections") -> VapixFault:
    return VapixFault("env:Receiver", "ter:Action", "ter:ServiceUnavailable",
                      f"The door station has too many open {what}", http_status=503)


def request_timeout(what: str) -> VapixFault:
    return VapixFault("env:Sender", "ter:InvalidArgs", "ter:RequestTimeout",
                      f"The request {what} did not arrive in time", http_status=408)


def too_many_longpolls(user: str, cap: int) -> VapixFault:
    return VapixFault("env:Sender", "ter:NotAuthorized", "ter:TooManyRequests",
                      f"User {user[:64]} already has {cap} event long-polls open", http_status=429)


def peer_key(addr: str) -> str:
    """What the per-address cap counts: an IPv4 address, or the /64 of an IPv6 one (a single host
    commonly holds many addresses of its /64, and picks new ones at will). IPv4-mapped IPv6
    addresses count as their IPv4 address."""
    try:
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
    except ValueError:
        return addr
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


class ConnectionCounter:
    """Open connections per peer (peer_key of the address) and in total. admit() -> None
    (admitted; call release(addr) later) or the fault to answer with."""

    def __init__(self, max_total: int, max_per_address: int):
        self.max_total, self.max_per_address = max_total, max_per_address
        self._by_addr: Counter[str] = Counter()
        self._total = 0
        self._lock = threading.Lock()

    def admit(self, addr: str) -> VapixFault | None:
        addr = peer_key(addr)
        with self._lock:
            if self._by_addr[addr] >= self.max_per_address:
                return too_many_connections(addr)
            if self._total >= self.max_total:
                return station_busy()
            self._by_addr[addr] += 1
            self._total += 1
            return None

    def release(self, addr: str) -> None:
        addr = peer_key(addr)
        with self._lock:
            self._total -= 1
            left = self._by_addr[addr] - 1
            if left > 0:
                self._by_addr[addr] = left
            else:
                del self._by_addr[addr]

    @property
    def total(self) -> int:
        return self._total

    def of(self, addr: str) -> int:
        return self._by_addr.get(peer_key(addr), 0)


class LongPollGate:
    """Wraps the events resource: at most `cap` concurrent long-polls (wait > 0) per user (the next
    one answers 429 at once) and `total_cap` of all users (503). A long-poll holds a control-socket
    connection for its whole wait; the total cap keeps some for everything else. Requests without
    wait are short and not counted."""

    def __init__(self, resource, cap: int, total_cap: int = Limits.max_longpolls):
        self.resource = resource
        self.cap = cap
        self.total_cap = total_cap
        self._open: Counter[str] = Counter()
        self._total = 0
        self._lock = threading.Lock()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = getattr(req.context.get("user"), "name", None)
        if user is None or req.get_param("wait") in (None, "", "0"):
            self.resource.on_get(req, resp)
            return
        with self._lock:
            if self._open[user] >= self.cap:
                fault = too_many_longpolls(user, self.cap)
            elif self._total >= self.total_cap:
                fault = station_busy("event long-polls")
            else:
                self._open[user] += 1
                self._total += 1
                fault = None
        if fault is not None:
            raise fault
        try:
            self.resource.on_get(req, resp)
        finally:
            with self._lock:
                self._total -= 1
                self._open[user] -= 1
                if self._open[user] <= 0:
                    del self._open[user]

    def open_for(self, user: str) -> int:
        return self._open.get(user, 0)
