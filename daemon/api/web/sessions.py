"""Server-side sessions for the web page: a random cookie names a session held in this process's
memory (the API runs one worker), with its user, a CSRF token and an expiry.

Bounded: at most `max_sessions` in total and `max_per_user` per user; the least recently used one
goes first. A session ends on logout, after `idle_timeout` without a request, after `lifetime` in
any case, and when its user's role or password changes or the user is removed (checked on every
request through the authenticator's user cache, within its 2 s TTL).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

COOKIE = "ds_session"
CSRF_HEADER = "X-CSRF-Token"
MAX_SESSIONS = 64
MAX_PER_USER = 8
IDLE_TIMEOUT = 30 * 60.0
LIFETIME = 12 * 3600.0
TOKEN_RE_LEN = 43          # secrets.token_urlsafe(32)


@dataclass
class Session:
    name: str
    role: str
    fingerprint: str       # of the password verifier it was opened with
    csrf: str
    created: float
    last_used: float


def verifier_fingerprint(pw_hash: str) -> str:
    return hashlib.sha256(pw_hash.encode("utf-8")).hexdigest()[:16]


class SessionStore:
    def __init__(self, clock: Callable[[], float], max_sessions: int = MAX_SESSIONS,
                 max_per_user: int = MAX_PER_USER, idle_timeout: float = IDLE_TIMEOUT,
                 lifetime: float = LIFETIME):
        self._clock = clock
        self.max_sessions, self.max_per_user = max_sessions, max_per_user
        self.idle_timeout, self.lifetime = idle_timeout, lifetime
        self._lock = threading.Lock()
        # keyed by SHA-256 of the cookie value: a memory dump does not hand out live cookies
        self._items: OrderedDict[bytes, Session] = OrderedDict()

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", "replace")).digest()

    def create(self, name: str, role: str, pw_hash: str) -> tuple[str, Session]:
        now = self._clock()
        token = secrets.token_urlsafe(32)
        session = Session(name, role, verifier_fingerprint(pw_hash), secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._prune(now)
            mine = [k for k, s in self._items.items() if s.name == name]
            for key in mine[:max(0, len(mine) - self.max_per_user + 1)]:
                del self._items[key]
            self._items[self._key(token)] = session
            while len(self._items) > self.max_sessions:
                self._items.popitem(last=False)
        return token, session

    def get(self, token: str) -> Session | None:
        if not token or len(token) != TOKEN_RE_LEN:
            return None
        now = self._clock()
        key = self._key(token)
        with self._lock:
            session = self._items.get(key)
            if session is None:
                return None
            if self._expired(session, now):
                del self._items[key]
                return None
            session.last_used = now
            self._items.move_to_end(key)
            return session

    def drop(self, token: str) -> None:
        with self._lock:
            self._items.pop(self._key(token), None)

    def __len__(self) -> int:
        return len(self._items)

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last_used > self.idle_timeout or now - session.created > self.lifetime

    def _prune(self, now: float) -> None:
        for key in [k for k, s in self._items.items() if self._expired(s, now)]:
            del self._items[key]


def csrf_ok(session: Session, header: str | None) -> bool:
    return bool(header) and hmac.compare_digest(session.csrf.encode(), (header or "").encode("utf-8", "replace"))


def cookie_header(token: str, secure: bool, max_age: int) -> str:
    """Set-Cookie value: HttpOnly (no script reads it), SameSite=Strict (no cross-site request
    carries it), Secure over HTTPS (a plain-HTTP station cannot set a Secure cookie)."""
    parts = [f"{COOKIE}={token}", "Path=/", "HttpOnly", "SameSite=Strict", f"Max-Age={max_age}"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
