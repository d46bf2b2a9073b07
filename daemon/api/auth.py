"""Authentication for every API request: HTTP Digest (RFC 7616: SHA-256 and MD5, qop=auth) and
HTTP Basic, as a Falcon middleware. See docs/auth.md for the design in short.

- `Authenticator` is pure enough to unit test: the clock, the user lookup and the secret are passed in.
- `make_authenticator(state_dir)` wires the real ones: users read from the SQLite store through a
  read-only connection, a persistent nonce secret in `<state_dir>/api-secret`.

On success `req.context.user` is an `AuthUser(name, role)`; the roles are enforced by the command
layer (daemon.commands.role_allows), not here.

All state here (nonce counts, caches, failure counters) lives in one process: with several
gunicorn workers each worker keeps its own (see docs/auth.md, "Limits").
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
import struct
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import unquote_to_bytes, urlsplit

import falcon

from daemon.api.readstore import ReadStore, ReadStoreUnavailable
from daemon.faults import VapixFault, unavailable
from daemon.users import NAME_RE, REALM, UserRecord, get_user, scrypt_hash, verify_password

log = logging.getLogger(__name__)

SECRET_FILE = "api-secret"
SECRET_BYTES = 32

NONCE_LIFETIME = 300.0        # seconds; older nonces are answered with stale=true
NONCE_FUTURE_SKEW = 5.0       # a nonce "issued" further in the future than this is not ours
MAX_NONCES = 1024             # nonces whose nonce counts are remembered (LRU)
MAX_NC_PER_NONCE = 4096       # nonce counts remembered per nonce; then the client gets a new nonce
USER_CACHE_TTL = 2.0          # user removal / password change takes effect within this
# A verified Basic name:password skips scrypt until it goes unused this long. Each use extends it:
# a fixed expiry made every connection of a polling client miss at the same moment and queue for
# scrypt together (~140 ms each, two at a time). A changed password or a removed user still ends
# it within USER_CACHE_TTL (the entry remembers the stored hash it matched).
BASIC_CACHE_TTL = 60.0
MAX_CACHE_ENTRIES = 1024
FAILURE_LIMIT = 10            # failed attempts per (address, user name) within FAILURE_WINDOW before 429
ADDRESS_FAILURE_LIMIT = 30    # failed attempts per address (all names) before the address is slowed down
MAX_NAMES_PER_ADDRESS = 32    # user names whose failures are tracked per address
FAILURE_WINDOW = 300.0
MAX_BACKOFF = 60.0
MAX_ADDRESSES = 4096
MAX_AUTH_HEADER = 4096

# Digest algorithms in the order they are offered (strongest first).
DIGEST_ALGORITHMS: dict[str, Callable] = {"SHA-256": hashlib.sha256, "MD5": hashlib.md5}

_NC_RE = re.compile(r"[0-9a-fA-F]{8}")
_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_PARAM_RE = re.compile(r'(%s)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))[ \t]*' % _TOKEN)
_SEPARATORS_RE = re.compile(r"[ \t,]*")


@dataclass(frozen=True)
class AuthUser:
    name: str
    role: str


class UserStoreUnavailable(Exception):
    """The user lookup could not reach the user database (answered with 503, not 401)."""


class SecretError(Exception):
    """The nonce secret file exists but is not what we wrote."""


# -- small helpers ------------------------------------------------------------------------------

def parse_auth_params(text: str) -> dict[str, str] | None:
    """Parse `k=v, k="quoted", ...` (RFC 7235 auth-param list). None if malformed or a key repeats."""
    params: dict[str, str] = {}
    pos = 0
    while True:
        sep = _SEPARATORS_RE.match(text, pos)
        assert sep is not None  # the pattern also matches the empty string
        pos = sep.end()
        if pos >= len(text):
            return params
        m = _PARAM_RE.match(text, pos)
        if m is None:
            return None
        key = m.group(1).lower()
        value = re.sub(r"\\(.)", r"\1", m.group(2)) if m.group(2) is not None else m.group(3)
        if key in params:
            return None
        params[key] = value
        pos = m.end()
        if pos < len(text) and text[pos] != ",":
            return None


@dataclass(frozen=True)
class Credentials:
    """What an Authorization header offers, parsed once, before anything is verified."""
    scheme: str                              # "digest" | "basic"
    name: str                                # claimed user name; "" if malformed or not a valid name
    digest: dict[str, str] | None = None     # Digest parameters (None: malformed)
    basic: tuple[str, str] | None = None     # Basic (name, password) (None: malformed)


def parse_credentials(header: str | None) -> Credentials | None:
    """None when the header offers no credentials we check (absent, or a scheme we do not offer)."""
    if not header:
        return None
    scheme, rest = (header.split(None, 1) + [""])[:2]
    scheme = scheme.lower()
    if scheme not in ("digest", "basic"):
        return None
    if len(header) > MAX_AUTH_HEADER:
        return Credentials(scheme, "")
    if scheme == "digest":
        params = parse_auth_params(rest)
        name = (params or {}).get("username", "")
        return Credentials(scheme, name if NAME_RE.fullmatch(name) else "", digest=params)
    try:
        decoded = base64.b64decode(rest.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return Credentials(scheme, "")
    name, sep, password = decoded.partition(":")
    return Credentials(scheme, name if sep and NAME_RE.fullmatch(name) else "",
                       basic=(name, password) if sep else None)


def claimed_name(header: str | None) -> str | None:
    """The user name a header claims: None without credentials, "" when no valid name is given
    (such a request can never succeed)."""
    credentials = parse_credentials(header)
    return None if credentials is None else credentials.name


def _add_header_line(resp: falcon.Response, name: str, value: str) -> None:
    """Add `name: value` as a header line of its own.

    Falcon folds repeated headers into one comma-separated line (Set-Cookie excepted). Several
    challenges folded into one WWW-Authenticate line are valid HTTP but clients mis-parse them
    (curl and browsers take the parameters of the last challenge); separate lines work everywhere.
    Falcon 3 and 4 keep extra header lines in Response._extra_headers (emitted as they are); the
    tests check the lines on the wire. If a later Falcon drops that slot we fall back to folding.
    """
    if not hasattr(resp, "_extra_headers"):
        resp.append_header(name, value)
    elif resp._extra_headers is None:
        resp._extra_headers = [(name, value)]
    else:
        resp._extra_headers.append((name, value))


class _TTLCache:
    """A small bounded mapping whose entries expire (clock passed to each call)."""

    def __init__(self, ttl: float, max_entries: int):
        self.ttl, self.max_entries = ttl, max_entries
        self._items: OrderedDict = OrderedDict()

    def get(self, key, now: float, default=None, extend: bool = False):
        """The value if not expired; extend: a hit lives another ttl from now."""
        item = self._items.get(key)
        if item is None:
            return default
        expires, value = item
        if now >= expires:
            del self._items[key]
            return default
        if extend:
            self._items[key] = (now + self.ttl, value)
            self._items.move_to_end(key)
        return value

    def put(self, key, value, now: float) -> None:
        self._items.pop(key, None)
        self._items[key] = (now + self.ttl, value)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def __contains__(self, key) -> bool:
        return key in self._items


class NonceCounts:
    """Nonce counts seen per nonce, to reject a replayed request while accepting counts that arrive
    out of order (concurrent requests on one nonce). Bounded: LRU over nonces, and a cap on counts per
    nonce. When a nonce is forgotten, its issue time becomes a floor: an unknown nonce issued at or
    before the floor might be one we forgot, so it is answered as stale instead of trusted."""

    OK, REPLAY, RENEW = "ok", "replay", "renew"

    def __init__(self, max_nonces: int = MAX_NONCES, max_counts: int = MAX_NC_PER_NONCE):
        self.max_nonces, self.max_counts = max_nonces, max_counts
        self._seen: OrderedDict[str, tuple[int, set[int]]] = OrderedDict()
        self._floor = -1

    def use(self, nonce: str, issued: int, nc: int) -> str:
        entry = self._seen.get(nonce)
        if entry is None:
            if issued <= self._floor:
                return self.RENEW
            entry = (issued, set())
            self._seen[nonce] = entry
            while len(self._seen) > self.max_nonces:
                _, (old_issued, _) = self._seen.popitem(last=False)
                self._floor = max(self._floor, old_issued)
        else:
            self._seen.move_to_end(nonce)
        counts = entry[1]
        if nc in counts:
            return self.REPLAY
        if len(counts) >= self.max_counts:
            return self.RENEW
        counts.add(nc)
        return self.OK


@dataclass
class _Failures:
    times: deque = field(default_factory=deque)
    blocked_until: float = 0.0

    def prune(self, now: float, window: float) -> None:
        while self.times and self.times[0] <= now - window:
            self.times.popleft()

    def add(self, now: float, limit: int, max_backoff: float) -> None:
        """Record one failure; from the limit-th in the window on, block for 1, 2, 4, ... s (capped)."""
        self.times.append(now)
        # enough history to reach the cap; older entries add nothing
        while len(self.times) > limit + int(math.log2(max_backoff)) + 2:
            self.times.popleft()
        over = len(self.times) - limit
        if over >= 0:
            self.blocked_until = now + min(max_backoff, 2.0 ** over)


@dataclass
class _Address:
    total: _Failures = field(default_factory=_Failures)          # every failure from the address
    names: dict[str, _Failures] = field(default_factory=dict)    # per claimed user name


class FailureLimiter:
    """Failed logins counted per (remote address, claimed user name) and per remote address, in a
    sliding window (policy in docs/auth.md, "Failed logins").

    - A name's own failures: from the `limit`-th on, that name is blocked from that address for
      1 s, 2 s, 4 s, ... (capped) after each further failure. Only a success *of that name* from
      that address forgets them.
    - All failures of the address together: from the `address_limit`-th on, the address is blocked
      the same way, except for a name that has no failures of its own in the window: its
      credentials are still checked (so the right password of a user nobody guessed still gets
      in), and a wrong guess makes it a name with failures. No success resets the address count.
    - Memory: `max_addresses` addresses (LRU) and `max_names` names per address; a name beyond
      that (or a malformed header, name "") never gets the exemption, so cycling through names
      cannot push a guessed name out of the table.
    """

    def __init__(self, limit: int = FAILURE_LIMIT, window: float = FAILURE_WINDOW,
                 max_backoff: float = MAX_BACKOFF, max_addresses: int = MAX_ADDRESSES,
                 address_limit: int = ADDRESS_FAILURE_LIMIT, max_names: int = MAX_NAMES_PER_ADDRESS):
        if max_names > address_limit + int(math.log2(max_backoff)) + 2:
            # a full name table must imply a blocked address (see blocked_for)
            raise ValueError("max_names must not exceed the address history")
        self.limit, self.window, self.max_backoff = limit, window, max_backoff
        self.address_limit, self.max_names = address_limit, max_names
        self.max_addresses = max_addresses
        self._by_addr: OrderedDict[str, _Address] = OrderedDict()

    def _entry(self, addr: str, now: float) -> _Address | None:
        entry = self._by_addr.get(addr)
        if entry is not None:
            entry.total.prune(now, self.window)
            for failures in entry.names.values():
                failures.prune(now, self.window)
            # a block ends long before the window does, so a name without failures is not blocked
            entry.names = {n: f for n, f in entry.names.items() if f.times}
        return entry

    def blocked_for(self, addr: str, name: str, now: float) -> float:
        """Seconds the credentials of `name` from `addr` are refused without being checked (0: check)."""
        entry = self._entry(addr, now)
        if entry is None:
            return 0.0
        own = entry.names.get(name)
        if own is not None and own.blocked_until > now:
            return own.blocked_until - now
        address_wait = entry.total.blocked_until - now
        if address_wait <= 0:
            return 0.0
        if name and own is None and len(entry.names) < self.max_names:
            return 0.0  # nobody guessed this name from here: let the right password in
        return address_wait

    def failure(self, addr: str, name: str, now: float) -> float:
        """Record a failure of `name` ("" when no valid name was given); return how long that
        name is now refused from the address (0 if not)."""
        entry = self._entry(addr, now)
        if entry is None:
            entry = _Address()
        else:
            self._by_addr.pop(addr)
        entry.total.add(now, self.address_limit, self.max_backoff)
        own = entry.names.get(name) if name else None
        if own is None and name and len(entry.names) < self.max_names:
            own = entry.names[name] = _Failures()
        if own is not None:
            own.add(now, self.limit, self.max_backoff)
        self._by_addr[addr] = entry
        while len(self._by_addr) > self.max_addresses:
            self._by_addr.popitem(last=False)
        return self.blocked_for(addr, name, now)

    def success(self, addr: str, name: str) -> None:
        """`name` proved its password from `addr`: forget that name's failures, nobody else's."""
        entry = self._by_addr.get(addr)
        if entry is not None:
            entry.names.pop(name, None)


# Outcomes of checking an Authorization header other than success.
_CHALLENGE = "challenge"   # no (usable) credentials offered: plain challenge, not a failure
_STALE = "stale"           # right credentials, nonce too old (or forgotten): new nonce, not a failure
_FAILED = "failed"         # wrong credentials: challenge, counted against the address
_PLAIN_BASIC = "plain-basic"  # Basic over plain HTTP while that is switched off: not a failure


class Authenticator:
    """Falcon middleware: every request must authenticate with Digest or Basic."""

    def __init__(self, user_lookup: Callable[[str], UserRecord | None], secret: bytes,
                 clock: Callable[[], float] = time.time, realm: str = REALM, *,
                 nonce_lifetime: float = NONCE_LIFETIME, user_cache_ttl: float = USER_CACHE_TTL,
                 basic_cache_ttl: float = BASIC_CACHE_TTL, limiter: FailureLimiter | None = None,
                 nonce_counts: NonceCounts | None = None, basic_over_http: bool = True,
                 run_blocking: Callable | None = None):
        if len(secret) < 16:
            raise ValueError("secret too short")
        self._lookup_uncached = user_lookup
        self._secret = bytes(secret)
        self._clock = clock
        self.realm = realm
        self.nonce_lifetime = nonce_lifetime
        self.opaque = hmac.new(self._secret, b"opaque", hashlib.sha256).hexdigest()[:32]
        self._lock = threading.Lock()
        self._users = _TTLCache(user_cache_ttl, MAX_CACHE_ENTRIES)
        self._basic_ok = _TTLCache(basic_cache_ttl, MAX_CACHE_ENTRIES)
        self._limiter = limiter or FailureLimiter()
        self._nonce_counts = nonce_counts or NonceCounts()
        self.basic_over_http = basic_over_http  # False: Basic only on HTTPS (req.scheme)
        # scrypt (~140 ms, 16 MiB) runs through this: under the gevent worker a thread pool, so
        # one Basic check does not stop every other connection (hashlib releases the GIL).
        self._run_blocking = run_blocking or (lambda fn, *args: fn(*args))
        # Unknown Basic users are checked against this so they cost what a known user costs.
        self._dummy = UserRecord("", "viewer", realm, "", "", scrypt_hash(secrets.token_urlsafe()), 0.0)

    # -- falcon middleware -------------------------------------------------------------------
    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.context.get("user") is not None or req.context.get("public"):
            return  # the web page's gate: a session cookie (CSRF checked) or a page of its own
        addr = req.remote_addr or ""
        now = self._clock()
        credentials = parse_credentials(req.get_header("Authorization"))
        name = credentials.name if credentials is not None else None
        if name is not None:  # credentials offered: are they refused unchecked for now?
            with self._lock:
                wait = self._limiter.blocked_for(addr, name, now)
            if wait > 0:
                self._reply_too_many(resp, wait)
                return
        try:
            outcome = self._authenticate(req, credentials, now)
        except UserStoreUnavailable as e:
            log.error("user database unavailable: %s", e)
            self._reply(resp, 503, unavailable("The user database is not available"), [])
            return
        if isinstance(outcome, AuthUser):
            with self._lock:
                self._limiter.success(addr, outcome.name)
            req.context.user = outcome
            return
        basic = self.basic_over_http or req.scheme == "https"
        if outcome == _PLAIN_BASIC:
            fault = VapixFault("env:Sender", "ter:NotAuthorized", "ter:AuthenticationFailed",
                               "Basic authentication is accepted only over HTTPS; use Digest",
                               http_status=401)
            self._reply(resp, 401, fault, self.challenges(now, basic=False))
            return
        if outcome == _FAILED:
            with self._lock:
                blocked = self._limiter.failure(addr, name or "", now)
            if blocked:
                log.warning("authentication from %s as %r blocked for %.0f s after repeated failures",
                            addr, name or "?", blocked)
        self._reply(resp, 401, _auth_fault(), self.challenges(now, stale=outcome == _STALE, basic=basic))

    # -- the web page's login (daemon/api/web) ------------------------------------------------
    def login(self, addr: str, name: str, password: str) -> tuple[AuthUser, UserRecord] | float | None:
        """Check a name and password as Basic would, under the same failure limits: the user and
        its record, None when wrong, or the seconds that name is refused from `addr` for now."""
        now = self._clock()
        if not NAME_RE.fullmatch(name or ""):
            name = ""
        with self._lock:
            wait = self._limiter.blocked_for(addr, name, now)
        if wait > 0:
            return wait
        outcome = self._basic(name, password, now)   # may raise UserStoreUnavailable
        if isinstance(outcome, AuthUser):
            with self._lock:
                self._limiter.success(addr, outcome.name)
            record = self._user(outcome.name, now)
            if record is not None:
                return outcome, record
        with self._lock:
            self._limiter.failure(addr, name, now)
        return None

    def current_record(self, name: str) -> UserRecord | None:
        """The user as stored now (cached for USER_CACHE_TTL): a session checks its user is
        still there with the same role and password."""
        return self._user(name, self._clock())

    # -- challenge and replies -----------------------------------------------------------------
    def challenges(self, now: float, stale: bool = False, basic: bool = True) -> list[tuple[str, str]]:
        nonce = self.make_nonce(now)
        lines = []
        for algorithm in DIGEST_ALGORITHMS:
            value = (f'Digest realm="{self.realm}", qop="auth", algorithm={algorithm}, '
                     f'nonce="{nonce}", opaque="{self.opaque}"')
            if stale:
                value += ", stale=true"
            lines.append(("WWW-Authenticate", value))
        if basic:
            lines.append(("WWW-Authenticate", f'Basic realm="{self.realm}", charset="UTF-8"'))
        return lines

    def _reply(self, resp: falcon.Response, status: int, fault: VapixFault,
               headers: list[tuple[str, str]]) -> None:
        resp.status = status
        resp.content_type = falcon.MEDIA_JSON
        resp.text = json.dumps(fault.to_dict())
        for name, value in headers:
            _add_header_line(resp, name, value)
        resp.complete = True  # falcon 4: skip routing and the responder, still run process_response

    def _reply_too_many(self, resp: falcon.Response, wait: float) -> None:
        fault = VapixFault("env:Sender", "ter:NotAuthorized", "ter:TooManyAttempts",
                           "Too many failed authentication attempts", http_status=429)
        resp.set_header("Retry-After", str(max(1, math.ceil(wait))))
        self._reply(resp, 429, fault, [])

    # -- nonces ---------------------------------------------------------------------------------
    def make_nonce(self, now: float) -> str:
        """base64url(issue time (8 bytes) + 16 random bytes + HMAC-SHA256 of both, truncated to 24)."""
        body = struct.pack(">Q", max(0, int(now))) + secrets.token_bytes(16)
        return base64.urlsafe_b64encode(body + self._nonce_mac(body)).decode("ascii")

    def _nonce_mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, b"nonce:" + body, hashlib.sha256).digest()[:24]

    def nonce_issued(self, nonce: str) -> int | None:
        """Issue time of a nonce we made, or None if it is not ours."""
        if len(nonce) != 64:
            return None
        try:
            raw = base64.b64decode(nonce.encode("ascii"), altchars=b"-_", validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            return None
        body, mac = raw[:24], raw[24:]
        if not hmac.compare_digest(mac, self._nonce_mac(body)):
            return None
        return struct.unpack(">Q", body[:8])[0]

    # -- checking credentials ----------------------------------------------------------------
    def _authenticate(self, req: falcon.Request, credentials: Credentials | None, now: float):
        if credentials is None:
            return _CHALLENGE  # none offered, or a scheme we do not offer: no password guess
        if credentials.digest is not None:
            return self._digest(req, credentials.digest, now)
        if credentials.basic is not None:
            if not self.basic_over_http and req.scheme != "https":
                return _PLAIN_BASIC  # refused before the password is looked at
            return self._basic(*credentials.basic, now)
        return _FAILED  # malformed or too long

    def _user(self, name: str, now: float) -> UserRecord | None:
        with self._lock:
            missing = object()
            record = self._users.get(name, now, missing)
        if record is not missing:
            return record
        record = self._lookup_uncached(name)  # may raise UserStoreUnavailable
        with self._lock:
            self._users.put(name, record, now)
        return record

    def _digest(self, req: falcon.Request, p: dict[str, str], now: float):
        if any(k not in p for k in ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")):
            return _FAILED  # includes RFC 2069 style (no qop) and username* (not supported)
        if p.get("userhash", "false").lower() != "false":
            return _FAILED  # userhash is not supported (we offer userhash=false implicitly)
        hash_fn = DIGEST_ALGORITHMS.get(p.get("algorithm", "MD5").upper())
        if (hash_fn is None or p["realm"] != self.realm or p["qop"].lower() != "auth"
                or ("opaque" in p and p["opaque"] != self.opaque) or not _NC_RE.fullmatch(p["nc"])
                or not _uri_matches(req, p["uri"])):
            return _FAILED
        issued = self.nonce_issued(p["nonce"])
        if issued is None:
            return _FAILED
        record = self._user(p["username"], now)
        if record is None:
            return _FAILED
        ha1 = record.ha1_sha256 if hash_fn is hashlib.sha256 else record.ha1_md5

        def h(s: str) -> str:
            return hash_fn(s.encode("utf-8")).hexdigest()

        ha2 = h(f"{req.method}:{p['uri']}")
        expected = h(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:{p['qop']}:{ha2}")
        if not hmac.compare_digest(expected.encode(), p["response"].lower().encode("utf-8", "replace")):
            return _FAILED
        # The digest is right: from here on only the nonce can be wrong (RFC 7616: stale=true).
        if now - issued > self.nonce_lifetime or issued > now + NONCE_FUTURE_SKEW:
            return _STALE
        with self._lock:
            verdict = self._nonce_counts.use(p["nonce"], issued, int(p["nc"], 16))
        if verdict == NonceCounts.REPLAY:
            log.warning("replayed digest nonce count from %s for %s", req.remote_addr, record.name)
            return _FAILED
        if verdict == NonceCounts.RENEW:
            return _STALE
        return AuthUser(record.name, record.role)

    def _basic(self, name: str, password: str, now: float):
        if not name or len(password) > 1024:
            return _FAILED
        # keyed BLAKE2 (a MAC; CPython's own C, 1 us against HMAC-SHA256's 4 us through OpenSSL)
        key = hashlib.blake2b(f"basic:{name}:{password}".encode("utf-8"), key=self._secret[:64],
                              digest_size=32).digest()
        record = self._user(name, now)
        with self._lock:
            cached_hash = self._basic_ok.get(key, now, extend=True)
        if record is None:
            self._run_blocking(verify_password, self._dummy, password)  # same cost as a known user
            return _FAILED
        # The cache remembers which stored hash the password matched: a changed password or a
        # removed user (seen within USER_CACHE_TTL) invalidates it.
        if cached_hash is not None and hmac.compare_digest(cached_hash, record.pw_hash):
            return AuthUser(record.name, record.role)
        if not self._run_blocking(verify_password, record, password):
            return _FAILED
        with self._lock:
            self._basic_ok.put(key, record.pw_hash, now)
        return AuthUser(record.name, record.role)


def _auth_fault() -> VapixFault:
    return VapixFault("env:Sender", "ter:NotAuthorized", "ter:AuthenticationFailed",
                      "Authentication required", http_status=401)


def _uri_matches(req: falcon.Request, uri: str) -> bool:
    """Does the Digest `uri` name this request's target (path and query)?

    Exact match against the raw request target when the server provides it (gunicorn's RAW_URI);
    otherwise compare the percent-decoded path with SCRIPT_NAME + PATH_INFO (which WSGI servers
    decode) and the query string byte for byte. Absolute-form URIs are reduced to path + query."""
    env = req.env
    raw = env.get("RAW_URI") or env.get("REQUEST_URI")
    if raw is not None and uri == raw:
        return True
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    if parts.netloc and parts.scheme not in ("http", "https"):
        return False
    path = unquote_to_bytes(parts.path).decode("latin-1")
    return (path == env.get("SCRIPT_NAME", "") + env.get("PATH_INFO", "")
            and parts.query == env.get("QUERY_STRING", ""))


# -- wiring the real dependencies ---------------------------------------------------------------

class StoreUserLookup:
    """user_lookup over the API process's read-only connection to the store."""

    def __init__(self, store: ReadStore):
        self._store = store

    def __call__(self, name: str) -> UserRecord | None:
        try:
            return self._store.read(lambda store: get_user(store, name))
        except ReadStoreUnavailable as e:
            raise UserStoreUnavailable(str(e)) from e


def load_or_create_secret(state_dir: str | os.PathLike) -> bytes:
    """The nonce/cache secret in <state_dir>/api-secret: 32 random bytes, mode 0600.

    Several gunicorn workers may start at once: each writes a complete candidate to a private temp
    file (O_CREAT|O_EXCL, 0600) and publishes it with link(), which fails if the name exists, so
    exactly one candidate wins and nobody ever reads a half-written secret."""
    directory = Path(state_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / SECRET_FILE
    if not path.exists():
        tmp = directory / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            try:
                os.write(fd, secrets.token_bytes(SECRET_BYTES))
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another worker won; use its secret
        finally:
            tmp.unlink(missing_ok=True)
    data = path.read_bytes()
    if len(data) != SECRET_BYTES:
        raise SecretError(f"{path} should hold {SECRET_BYTES} bytes, has {len(data)}")
    return data


def make_authenticator(state_dir: str | os.PathLike, clock: Callable[[], float] = time.time,
                       basic_over_http: bool = True, run_blocking: Callable | None = None,
                       store: ReadStore | None = None) -> Authenticator:
    return Authenticator(StoreUserLookup(store or ReadStore(state_dir)), load_or_create_secret(state_dir), clock=clock,
                         basic_over_http=basic_over_http, run_blocking=run_blocking)
