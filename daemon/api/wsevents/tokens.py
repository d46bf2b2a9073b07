"""Short-lived tokens for WebSocket clients that cannot send an Authorization header (browsers):
`GET /axis-cgi/wssession.cgi` (any authenticated user) answers a token, then
`ws(s)://HOST/vapix/ws-data-stream?wssession=<token>&sources=events` opens the stream as that user.

A token is 19 random decimal digits (Axis's are digits too; clients read the answer as JSON),
valid TOKEN_LIFETIME seconds, good for one connection, and bound to the user and the role it was
issued to: if that user was removed or changed role meanwhile, it is refused. Tokens live in the
memory of the API process that issued them (docs/events.md: one API worker, the default).
"""
from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable

import falcon

from daemon.faults import VapixFault, unavailable

TOKEN_LIFETIME = 15.0
MAX_TOKENS = 256               # outstanding tokens in one process
MAX_TOKENS_PER_USER = 16
TOKEN_DIGITS = 19
QUERY_PARAM = "wssession"


@dataclass(frozen=True)
class TokenUser:
    """The user a token stands for (the same fields as daemon.api.auth.AuthUser)."""
    name: str
    role: str


class UserDatabaseDown(Exception):
    """The user lookup could not reach the user database (answered 503)."""


@dataclass(frozen=True)
class _Issued:
    user: str
    role: str
    expires: float


class WsSessionTokens:
    def __init__(self, clock: Callable[[], float] = time.monotonic, lifetime: float = TOKEN_LIFETIME):
        self._clock = clock
        self.lifetime = lifetime
        self._tokens: dict[str, _Issued] = {}
        self._lock = threading.Lock()

    def issue(self, user: TokenUser) -> str | None:
        """A new token for `user`, or None when too many are outstanding."""
        now = self._clock()
        with self._lock:
            self._prune(now)
            mine = sum(1 for t in self._tokens.values() if t.user == user.name)
            if len(self._tokens) >= MAX_TOKENS or mine >= MAX_TOKENS_PER_USER:
                return None
            token = str(secrets.randbelow(9 * 10 ** (TOKEN_DIGITS - 1)) + 10 ** (TOKEN_DIGITS - 1))
            self._tokens[token] = _Issued(user.name, user.role, now + self.lifetime)
            return token

    def redeem(self, token: str) -> TokenUser | None:
        """The user the token was issued to, once; None when unknown, used or expired."""
        if not (token.isascii() and token.isdigit() and len(token) == TOKEN_DIGITS):
            return None
        now = self._clock()
        with self._lock:
            found = next((k for k in self._tokens if hmac.compare_digest(k, token)), None)
            issued = self._tokens.pop(found, None) if found is not None else None
        if issued is None or issued.expires < now:
            return None
        return TokenUser(issued.user, issued.role)

    def _prune(self, now: float) -> None:
        for token in [k for k, t in self._tokens.items() if t.expires < now]:
            del self._tokens[token]

    def __len__(self) -> int:
        return len(self._tokens)


class WsSessionResource:
    """GET /axis-cgi/wssession.cgi: one token as the body (text/plain, digits only)."""

    def __init__(self, tokens: WsSessionTokens):
        self.tokens = tokens

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = req.context.get("user")
        token = self.tokens.issue(user) if user is not None else None
        if token is None:
            fault = VapixFault("env:Receiver", "ter:Action", "ter:TooManyRequests",
                               "Too many WebSocket session tokens outstanding", http_status=429)
            resp.status = fault.http_status
            resp.content_type = falcon.MEDIA_JSON
            resp.media = fault.to_dict()
            return
        resp.content_type = "text/plain"
        resp.set_header("Cache-Control", "no-store")
        resp.text = token


class TokenOrHeaderAuth:
    """Falcon middleware in place of the API's authenticator: on the stream's path a `wssession`
    query parameter authenticates the request (and nothing else does then: a wrong token is a
    401 with the usual challenges); every other request goes to the authenticator as before."""

    def __init__(self, authenticator, tokens: WsSessionTokens, path: str,
                 user_role: Callable[[str], str | None]):
        self.authenticator = authenticator
        self.tokens = tokens
        self.path = path
        self._user_role = user_role

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = req.get_param(QUERY_PARAM) if req.path.rstrip("/") == self.path else None
        if token is None:
            self.authenticator.process_request(req, resp)
            return
        user = self.tokens.redeem(token)
        try:
            current = self._user_role(user.name) if user is not None else None
        except UserDatabaseDown:
            fault = unavailable("The user database is not available")
            resp.status, resp.content_type, resp.media = 503, falcon.MEDIA_JSON, fault.to_dict()
            resp.complete = True
            return
        if user is None or current != user.role:
            fault = VapixFault("env:Sender", "ter:NotAuthorized", "ter:AuthenticationFailed",
                               "The WebSocket session token is unknown, used or expired", http_status=401)
            resp.status, resp.content_type, resp.media = 401, falcon.MEDIA_JSON, fault.to_dict()
            from daemon.api.auth import _add_header_line
            for name, value in self.authenticator.challenges(time.time()):
                _add_header_line(resp, name, value)   # one line per challenge, as the API does
            resp.complete = True
            return
        req.context.user = user
        req.context.via_token = True
