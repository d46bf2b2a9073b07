"""Waking the SIP engine thread out of `libHandleEvents(timeout)`.

The engine sleeps in pjlib's select() until SIP traffic or a pjsip timer, for up to a second when
nothing happens (idle CPU ~0). Work handed over by other threads (a request from the supervisor's
loop, a DTMF digit from pjmedia's thread) must interrupt that sleep. pjsua2 exposes no way to add
our own descriptor to pjlib's I/O queue, so the waker sends a CRLF datagram to the station's own UDP
SIP transport: pjsip drops a packet of only CR/LF silently (the keep-alive rule of RFC 5626 §4.4.1,
sip_transport.c "Skip leading newlines"), and select() returns. With no UDP transport open (SIP
disabled) the engine sleeps on an Event instead, which `wake()` also sets.
"""
from __future__ import annotations

import ipaddress
import socket
import threading

CRLF = b"\r\n"


def wake_address(local_address: str) -> tuple[str, int] | None:
    """Where to send wake-ups for a UDP transport bound to `local_address` ("0.0.0.0:5060",
    "[::]:5060", "192.0.2.7:5060"): the wildcard becomes the loopback address of its family."""
    host, sep, port = local_address.rpartition(":")
    if not sep or not port.isdigit():
        return None
    host = host.strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.is_unspecified:
        ip = ipaddress.ip_address("::1" if ip.version == 6 else "127.0.0.1")
    return str(ip), int(port)


class Waker:
    def __init__(self) -> None:
        self._event = threading.Event()
        self._target: tuple[str, int] | None = None
        self._sock: socket.socket | None = None
        self._pending = False

    @property
    def has_target(self) -> bool:
        return self._target is not None

    def set_target(self, target: tuple[str, int] | None) -> None:
        """Engine thread: the UDP transport to poke (None: no UDP transport open)."""
        old, self._sock = self._sock, None
        if old is not None:
            old.close()
        self._target = None
        if target is not None:
            family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            self._sock, self._target = sock, target
        self._pending = False

    def wake(self) -> None:
        """Any thread: make the engine's current (or next) sleep return at once."""
        self._event.set()
        sock, target = self._sock, self._target
        if sock is None or target is None or self._pending:
            return
        self._pending = True      # one datagram per sleep is enough
        try:
            sock.sendto(CRLF, target)
        except OSError:
            self._pending = False  # closed meanwhile or the buffer is full: the event still fires

    def wait(self, seconds: float) -> None:
        """Engine thread, when there is no UDP transport to poll: sleep until woken."""
        self._event.wait(seconds)

    def rearm(self) -> None:
        """Engine thread, after each sleep and before draining its queues."""
        self._event.clear()
        self._pending = False

    def close(self) -> None:
        self.set_target(None)
