"""Digest authentication for the RTSP server, with the API's users (daemon.users: the stored
MD5 HA1 of realm "doorstation", so the same names and passwords work for HTTP and RTSP).

RTSP clients answer Digest challenges RFC 2069 style (axis v60: no qop, no nc) or RFC 2617 style
(qop=auth). Without qop there is no nonce count, so the nonce is bound to one TCP connection: a
captured Authorization header is worthless on any other connection. Challenges end with
`stale=FALSE|TRUE` (axis v60 reads the challenge by position and needs realm, nonce, then stale).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

from daemon.api.auth import parse_auth_params
from daemon.users import REALM, UserRecord

NONCE_LIFETIME = 300.0
MAX_AUTH_HEADER = 4096


@dataclass(frozen=True)
class RtspUser:
    name: str
    role: str


@dataclass
class ConnectionNonce:
    """The nonce of one TCP connection, and the highest nonce count seen (qop=auth clients)."""
    value: str = field(default_factory=lambda: secrets.token_hex(16))
    issued: float = field(default_factory=time.monotonic)
    last_nc: int = 0


class DigestVerifier:
    def __init__(self, user_lookup: Callable[[str], UserRecord | None], realm: str = REALM,
                 clock: Callable[[], float] = time.monotonic):
        self._lookup = user_lookup
        self.realm = realm
        self._clock = clock

    def challenge(self, nonce: ConnectionNonce, stale: bool = False) -> str:
        return (f'Digest realm="{self.realm}", nonce="{nonce.value}", algorithm=MD5, '
                f'stale={"TRUE" if stale else "FALSE"}')

    @staticmethod
    def claimed_name(header: str | None) -> str:
        """The user name a Digest header claims ("" when there is none or it is malformed)."""
        if not header or len(header) > MAX_AUTH_HEADER:
            return ""
        scheme, _, rest = header.partition(" ")
        params = parse_auth_params(rest) if scheme.lower() == "digest" else None
        name = (params or {}).get("username", "")
        return name if 0 < len(name) <= 64 else ""

    def check(self, method: str, header: str | None, nonce: ConnectionNonce, allowed_paths: tuple[str, ...]):
        """An RtspUser, or "challenge" (no or unusable credentials), "failed" (a wrong guess) or
        "stale" (right password, old nonce: the client retries with the new one)."""
        if not header:
            return "challenge"
        if len(header) > MAX_AUTH_HEADER:
            return "failed"
        scheme, _, rest = header.partition(" ")
        if scheme.lower() != "digest":
            return "challenge"
        p = parse_auth_params(rest)
        if p is None or any(k not in p for k in ("username", "realm", "nonce", "uri", "response")):
            return "failed"
        if (p["realm"] != self.realm or p.get("algorithm", "MD5").upper() != "MD5"
                or not hmac.compare_digest(p["nonce"].encode(), nonce.value.encode())
                or urlsplit(p["uri"]).path.rstrip("/") not in allowed_paths):
            return "failed"
        qop = p.get("qop")
        if qop is not None and (qop.lower() != "auth" or "nc" not in p or "cnonce" not in p
                                or len(p["nc"]) != 8 or not all(c in "0123456789abcdefABCDEF" for c in p["nc"])):
            return "failed"
        record = self._lookup(p["username"])
        if record is None or not record.ha1_md5:
            return "failed"
        ha2 = _md5(f"{method}:{p['uri']}")
        if qop is None:
            expected = _md5(f"{record.ha1_md5}:{nonce.value}:{ha2}")
        else:
            expected = _md5(f"{record.ha1_md5}:{nonce.value}:{p['nc']}:{p['cnonce']}:{qop}:{ha2}")
        if not hmac.compare_digest(expected.encode(), p["response"].lower().encode("utf-8", "replace")):
            return "failed"
        if self._clock() - nonce.issued > NONCE_LIFETIME:
            return "stale"
        if qop is not None:
            nc = int(p["nc"], 16)
            if nc <= nonce.last_nc:
                return "failed"
            nonce.last_nc = nc
        return RtspUser(record.name, record.role)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()
