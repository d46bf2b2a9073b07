"""First use: while the store has no admin, the page at / asks for the admin password, accepted
only from a local-network source address, and the rest of the API answers 503.

Threat model (docs/web.md "First use"): whoever reaches the station first from the local network
sets the password. A source address is the socket's peer (gunicorn trusts no X-Forwarded-*), so
it cannot be chosen by a remote peer that cannot route packets to us with a local source.
"""
from __future__ import annotations

import ipaddress
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable

from daemon.store import Store, StoreError

LOCAL_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "127.0.0.0/8", "169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",   # IPv4
    "::1/128", "fe80::/10", "fc00::/7"))                                                 # IPv6
NEGATIVE_TTL = 1.0      # "no admin yet" is re-read at most once a second


def is_local_address(text: str | None) -> bool:
    """Loopback, link-local, RFC 1918 or ULA (IPv4-mapped IPv6 judged as its IPv4 address)."""
    try:
        addr = ipaddress.ip_address((text or "").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in LOCAL_NETWORKS if net.version == addr.version)


class AdminPresence:
    """Does the store hold an admin? Once it does it always will (the last admin cannot be removed
    or demoted), so True is remembered for good and only False is re-read."""

    def __init__(self, state_dir: str | os.PathLike, clock: Callable[[], float] = time.monotonic):
        self.state_dir = Path(state_dir)
        self._clock = clock
        self._present = False
        self._checked_at: float | None = None
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        if self._present:
            return True
        now = self._clock()
        with self._lock:
            if self._checked_at is not None and now - self._checked_at < NEGATIVE_TTL:
                return False
            self._checked_at = now
            self._present = self._read()
            return self._present

    def mark_present(self) -> None:
        self._present = True

    def _read(self) -> bool:
        try:
            store = Store.open(self.state_dir, readonly=True)
        except (StoreError, sqlite3.Error):
            return False
        try:
            return bool(store.conn.execute("SELECT COUNT(*) FROM users WHERE role = 'admin'").fetchone()[0])
        except sqlite3.Error:
            return False
        finally:
            store.close()
