"""daemon.api.auth: unit tests through falcon's TestClient (injected clock and user lookup), then the
real stack: gunicorn on a loopback port, a real SQLite state directory, curl and requests as clients."""
from __future__ import annotations

import base64
import hashlib
import http.client
import json
import multiprocessing
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import falcon
import falcon.testing
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from requests.auth import HTTPBasicAuth, HTTPDigestAuth

from daemon import users
from daemon.api import auth
from daemon.api.auth import (
    Authenticator,
    FailureLimiter,
    NonceCounts,
    UserStoreUnavailable,
    load_or_create_secret,
    make_authenticator,
    parse_auth_params,
)
from daemon.store import Store

REPO = Path(__file__).resolve().parent.parent
SECRET = bytes(range(32))


# -- helpers -------------------------------------------------------------------------------------

class Clock:
    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_record(name: str, role: str, password: str) -> users.UserRecord:
    return users.UserRecord(name, role, users.REALM, users.digest_ha1("MD5", name, password),
                            users.digest_ha1("SHA-256", name, password), users.scrypt_hash(password), 0.0)


class WhoAmI:
    def on_get(self, req, resp):
        resp.media = {"name": req.context.user.name, "role": req.context.user.role}

    on_post = on_get


def build_app(authenticator: Authenticator) -> falcon.App:
    app = falcon.App(middleware=[authenticator])
    app.add_route("/whoami", WhoAmI())
    app.add_route("/vapix/call", WhoAmI())
    return app


def raw_call(app, path="/whoami", query_string="", headers=None, remote_addr="10.0.0.1", method="GET"):
    """Call the WSGI app directly to see the header *lines* (TestClient folds repeated headers)."""
    env = falcon.testing.create_environ(path=path, query_string=query_string, headers=headers or {},
                                        method=method)
    env["REMOTE_ADDR"] = remote_addr
    srmock = falcon.testing.StartResponseMock()
    body = b"".join(app(env, srmock))
    return srmock.status, srmock.headers, body


def challenges(header_lines) -> list[tuple[str, dict]]:
    out = []
    for name, value in header_lines:
        if name.lower() == "www-authenticate":
            scheme, _, rest = value.partition(" ")
            out.append((scheme, parse_auth_params(rest)))
    return out


def digest_challenge(app, algorithm="MD5", **kw) -> dict:
    _, lines, _ = raw_call(app, **kw)
    for scheme, params in challenges(lines):
        if scheme == "Digest" and params["algorithm"] == algorithm:
            return params
    raise AssertionError(f"no Digest {algorithm} challenge in {lines}")


def digest_authorization(challenge: dict, user: str, password: str, method: str, uri: str, count: int = 1,
                         client_nonce: str = "0a4f113b", algorithm: str = "MD5", **override) -> str:
    """Build the Authorization header by the RFC 7616 formulas, independently of the server code."""
    h = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[algorithm.removesuffix("-sess")]

    def hx(s: str) -> str:
        return h(s.encode()).hexdigest()

    realm, nonce = challenge["realm"], challenge["nonce"]
    ncs, cnonce = f"{count:08x}", client_nonce
    ha1 = hx(f"{user}:{realm}:{password}")
    if algorithm.endswith("-sess"):
        ha1 = hx(f"{ha1}:{nonce}:{cnonce}")
    ha2 = hx(f"{method}:{uri}")
    fields = {"username": user, "realm": realm, "nonce": nonce, "uri": uri, "algorithm": algorithm,
              "qop": "auth", "nc": ncs, "cnonce": cnonce, "opaque": challenge["opaque"],
              "response": hx(f"{ha1}:{nonce}:{ncs}:{cnonce}:auth:{ha2}")}
    if override.pop("rfc2069", False):  # the old form: no qop, nc, cnonce
        fields.update(qop=None, nc=None, cnonce=None, response=hx(f"{ha1}:{nonce}:{ha2}"))
    fields.update(override)
    unquoted = {"algorithm", "qop", "nc"}
    return "Digest " + ", ".join(f"{k}={v}" if k in unquoted else f'{k}="{v}"'
                                 for k, v in fields.items() if v is not None)


def basic_authorization(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def user_db():
    return {"alice": make_record("alice", "admin", "alice-secret"),
            "olga": make_record("olga", "operator", "olga-secret-1"),
            "vic": make_record("vic", "viewer", "vic-secret-12")}


@pytest.fixture
def authenticator(clock, user_db):
    return Authenticator(user_db.get, SECRET, clock=clock)


@pytest.fixture
def app(authenticator):
    return build_app(authenticator)


@pytest.fixture
def client(app):
    return falcon.testing.TestClient(app)


# -- unit: challenge --------------------------------------------------------------------------------

def test_missing_authorization_gets_401_with_both_digest_challenges_and_basic(app):
    status, lines, body = raw_call(app)
    assert status.startswith("401")
    found = challenges(lines)
    assert [(s, p.get("algorithm")) for s, p in found] == [("Digest", "SHA-256"), ("Digest", "MD5"), ("Basic", None)]
    sha, md5, basic = (p for _, p in found)
    for p in (sha, md5):
        assert p["realm"] == "doorstation" and p["qop"] == "auth" and p["opaque"] and "stale" not in p
    assert sha["nonce"] == md5["nonce"] and sha["opaque"] == md5["opaque"]
    assert basic["realm"] == "doorstation"
    assert json.loads(body) == {"Fault": "env:Sender", "FaultCode": "ter:NotAuthorized",
                                "FaultSubCode": "ter:AuthenticationFailed",
                                "FaultReason": "Authentication required", "FaultMsg": None}
    assert dict((k.lower(), v) for k, v in lines)["content-type"].startswith("application/json")


def test_missing_authorization_through_testclient(client):
    result = client.simulate_get("/whoami")
    assert result.status_code == 401
    assert result.json["FaultSubCode"] == "ter:AuthenticationFailed"


def test_challenges_are_not_failures(client):
    for _ in range(25):
        assert client.simulate_get("/whoami", remote_addr="10.0.0.9").status_code == 401


def test_fresh_nonce_each_challenge(app):
    assert digest_challenge(app)["nonce"] != digest_challenge(app)["nonce"]


# -- unit: digest ------------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_digest_succeeds(app, client, algorithm):
    ch = digest_challenge(app, algorithm)
    header = digest_authorization(ch, "olga", "olga-secret-1", "GET", "/whoami", algorithm=algorithm)
    result = client.simulate_get("/whoami", headers={"Authorization": header})
    assert result.status_code == 200, result.text
    assert result.json == {"name": "olga", "role": "operator"}


def test_digest_without_algorithm_means_md5(app, client):
    ch = digest_challenge(app)
    header = digest_authorization(ch, "vic", "vic-secret-12", "GET", "/whoami", algorithm="MD5")
    header = header.replace("algorithm=MD5, ", "")
    assert "algorithm" not in header
    assert client.simulate_get("/whoami", headers={"Authorization": header}).json["name"] == "vic"


def test_digest_uri_with_query_and_post(app, client):
    ch = digest_challenge(app, "SHA-256")
    uri = "/vapix/call?format=simple&action=axcall%3AGetSIPConfiguration"
    header = digest_authorization(ch, "alice", "alice-secret", "POST", uri, algorithm="SHA-256")
    result = client.simulate_post("/vapix/call", query_string=uri.split("?", 1)[1],
                                  headers={"Authorization": header})
    assert result.status_code == 200 and result.json["role"] == "admin"


@pytest.mark.parametrize("case", ["wrong password", "unknown user", "other uri", "other query",
                                  "other method", "wrong realm", "no qop (RFC 2069)", "qop auth-int",
                                  "MD5-sess", "userhash", "wrong opaque", "bad nc", "forged nonce",
                                  "garbage"])
def test_digest_failures(app, client, case):
    ch = digest_challenge(app)
    user, password, method, uri, kw = "olga", "olga-secret-1", "GET", "/whoami", {}
    if case == "wrong password":
        password = "olga-secret-2"
    elif case == "unknown user":
        user = "mallory"
    elif case == "other uri":
        uri = "/vapix/call"
    elif case == "other query":
        uri = "/whoami?x=1"
    elif case == "other method":
        method = "POST"
    elif case == "wrong realm":
        kw["realm"] = "elsewhere"
    elif case == "no qop (RFC 2069)":
        kw["rfc2069"] = True
    elif case == "qop auth-int":
        kw["qop"] = "auth-int"
    elif case == "MD5-sess":
        kw["algorithm"] = "MD5-sess"  # a correct MD5-sess response: not offered, so refused
    elif case == "userhash":
        kw["userhash"] = "true"
    elif case == "wrong opaque":
        kw["opaque"] = "0" * 32
    elif case == "bad nc":
        kw["nc"] = "1"
    elif case == "forged nonce":
        other = Authenticator(lambda name: None, b"x" * 32, clock=Clock())
        kw["nonce"] = other.make_nonce(Clock().now)
    algorithm = kw.pop("algorithm", "MD5")
    header = digest_authorization(ch, user, password, method, uri, algorithm=algorithm, **kw)
    if case == "garbage":
        header = 'Digest username="olga", realm'
    result = client.simulate_get("/whoami", headers={"Authorization": header})
    assert result.status_code == 401
    assert "stale" not in result.headers.get("WWW-Authenticate", "")


def test_stale_nonce_gets_stale_true_then_new_nonce_works(app, client, clock):
    ch = digest_challenge(app, "SHA-256")
    clock.advance(301)
    header = digest_authorization(ch, "alice", "alice-secret", "GET", "/whoami", algorithm="SHA-256")
    status, lines, _ = raw_call(app, headers={"Authorization": header})
    assert status.startswith("401")
    digests = [p for s, p in challenges(lines) if s == "Digest"]
    assert len(digests) == 2 and all(p.get("stale") == "true" for p in digests)
    fresh = digests[0]
    assert fresh["nonce"] != ch["nonce"]
    header = digest_authorization(fresh, "alice", "alice-secret", "GET", "/whoami", algorithm="SHA-256")
    assert client.simulate_get("/whoami", headers={"Authorization": header}).status_code == 200


def test_nonce_within_lifetime_is_not_stale(app, client, clock):
    ch = digest_challenge(app)
    clock.advance(299)
    header = digest_authorization(ch, "vic", "vic-secret-12", "GET", "/whoami")
    assert client.simulate_get("/whoami", headers={"Authorization": header}).status_code == 200


def test_stale_nonce_with_wrong_password_is_a_plain_failure(app, clock):
    ch = digest_challenge(app)
    clock.advance(400)
    header = digest_authorization(ch, "vic", "wrong-password", "GET", "/whoami")
    status, lines, _ = raw_call(app, headers={"Authorization": header})
    assert status.startswith("401")
    assert all("stale" not in p for _, p in challenges(lines))


def test_replayed_nonce_count_is_rejected(app, client):
    ch = digest_challenge(app)
    header = digest_authorization(ch, "olga", "olga-secret-1", "GET", "/whoami", count=1)
    assert client.simulate_get("/whoami", headers={"Authorization": header}).status_code == 200
    assert client.simulate_get("/whoami", headers={"Authorization": header}).status_code == 401


def test_out_of_order_nonce_counts_are_accepted_once_each(app, client):
    ch = digest_challenge(app)

    def get(nc):
        header = digest_authorization(ch, "olga", "olga-secret-1", "GET", "/whoami", count=nc, client_nonce=f"c{nc}")
        return client.simulate_get("/whoami", headers={"Authorization": header}).status_code

    assert [get(nc) for nc in (3, 1, 7, 2, 5)] == [200] * 5
    assert [get(nc) for nc in (2, 7)] == [401, 401]
    assert get(4) == 200


def test_nonce_counts_cap_asks_for_a_new_nonce(clock, user_db):
    authn = Authenticator(user_db.get, SECRET, clock=clock, nonce_counts=NonceCounts(max_nonces=8, max_counts=3))
    app = build_app(authn)
    ch = digest_challenge(app)
    statuses = []
    for nc in (1, 2, 3, 4):
        header = digest_authorization(ch, "vic", "vic-secret-12", "GET", "/whoami", count=nc)
        status, lines, _ = raw_call(app, headers={"Authorization": header})
        statuses.append(status[:3])
    assert statuses == ["200", "200", "200", "401"]
    assert all(p.get("stale") == "true" for s, p in challenges(lines) if s == "Digest")


def test_forgotten_nonce_cannot_be_replayed(clock, user_db):
    """A nonce evicted from the bounded table must not start over with an empty nc set."""
    authn = Authenticator(user_db.get, SECRET, clock=clock, nonce_counts=NonceCounts(max_nonces=2))
    app = build_app(authn)
    first = digest_challenge(app)
    first_header = digest_authorization(first, "vic", "vic-secret-12", "GET", "/whoami")
    assert raw_call(app, headers={"Authorization": first_header})[0].startswith("200")
    clock.advance(1)
    for _ in range(2):  # two newer nonces push the first one out
        ch = digest_challenge(app)
        h = digest_authorization(ch, "vic", "vic-secret-12", "GET", "/whoami")
        assert raw_call(app, headers={"Authorization": h})[0].startswith("200")
    status, lines, _ = raw_call(app, headers={"Authorization": first_header})
    assert status.startswith("401")
    assert all(p.get("stale") == "true" for s, p in challenges(lines) if s == "Digest")


# -- unit: basic ---------------------------------------------------------------------------------------

def test_basic_succeeds_and_fails(client):
    ok = client.simulate_get("/whoami", headers={"Authorization": basic_authorization("vic", "vic-secret-12")})
    assert ok.status_code == 200 and ok.json == {"name": "vic", "role": "viewer"}
    for user, password in (("vic", "vic-secret-13"), ("nobody", "vic-secret-12"), ("vic", "")):
        bad = client.simulate_get("/whoami", headers={"Authorization": basic_authorization(user, password)})
        assert bad.status_code == 401
    for header in ("Basic !!!notbase64", "Basic " + base64.b64encode(b"no-colon").decode()):
        assert client.simulate_get("/whoami", headers={"Authorization": header}).status_code == 401


def test_basic_verification_is_cached(client, clock, monkeypatch):
    calls = []
    real_verify = auth.verify_password

    def counting_verify(record, password):
        calls.append(record.name)
        return real_verify(record, password)

    monkeypatch.setattr(auth, "verify_password", counting_verify)
    header = {"Authorization": basic_authorization("olga", "olga-secret-1")}
    for _ in range(5):
        assert client.simulate_get("/whoami", headers=header).status_code == 200
    assert calls == ["olga"]
    for _ in range(3):   # in use: each request extends it, so a polling client never queues for scrypt
        clock.advance(40)
        assert client.simulate_get("/whoami", headers=header).status_code == 200
    assert calls == ["olga"]
    clock.advance(61)  # unused for longer than the TTL: verified again
    assert client.simulate_get("/whoami", headers=header).status_code == 200
    assert calls == ["olga", "olga"]
    # a wrong password is never served from the cache
    bad = {"Authorization": basic_authorization("olga", "olga-secret-X")}
    assert client.simulate_get("/whoami", headers=bad).status_code == 401


def test_password_change_and_removal_take_effect_within_two_seconds(client, clock, user_db):
    basic = {"Authorization": basic_authorization("olga", "olga-secret-1")}
    assert client.simulate_get("/whoami", headers=basic).status_code == 200
    user_db["olga"] = make_record("olga", "operator", "olga-secret-NEW")
    clock.advance(2.1)
    assert client.simulate_get("/whoami", headers=basic).status_code == 401  # cached Basic result dropped
    new = {"Authorization": basic_authorization("olga", "olga-secret-NEW")}
    assert client.simulate_get("/whoami", headers=new).status_code == 200
    del user_db["olga"]
    clock.advance(2.1)
    assert client.simulate_get("/whoami", headers=new).status_code == 401


def test_unsupported_scheme_is_answered_with_a_challenge(client):
    for _ in range(15):
        assert client.simulate_get("/whoami", headers={"Authorization": "Bearer abc"}).status_code == 401
    ok = client.simulate_get("/whoami", headers={"Authorization": basic_authorization("vic", "vic-secret-12")})
    assert ok.status_code == 200


def test_user_database_unavailable_is_503(clock):
    def broken(name):
        raise UserStoreUnavailable("no database")

    client = falcon.testing.TestClient(build_app(Authenticator(broken, SECRET, clock=clock)))
    result = client.simulate_get("/whoami", headers={"Authorization": basic_authorization("vic", "vic-secret-12")})
    assert result.status_code == 503
    assert result.json["FaultCode"] == "ter:Action"


# -- unit: lockout -------------------------------------------------------------------------------------

def test_lockout_after_ten_failures_then_recovery(client, clock):
    addr = "192.0.2.7"
    bad = {"Authorization": basic_authorization("vic", "wrong-password")}
    good = {"Authorization": basic_authorization("vic", "vic-secret-12")}
    for _ in range(10):
        assert client.simulate_get("/whoami", headers=bad, remote_addr=addr).status_code == 401
    blocked = client.simulate_get("/whoami", headers=good, remote_addr=addr)
    assert blocked.status_code == 429
    assert blocked.headers["Retry-After"] == "1"
    assert blocked.json["FaultCode"] == "ter:NotAuthorized"
    # another address is not affected
    assert client.simulate_get("/whoami", headers=good, remote_addr="192.0.2.8").status_code == 200
    clock.advance(0.5)
    assert client.simulate_get("/whoami", headers=good, remote_addr=addr).status_code == 429
    clock.advance(0.6)
    assert client.simulate_get("/whoami", headers=good, remote_addr=addr).status_code == 200
    # the success reset the counter: one more failure is a plain 401, no block
    assert client.simulate_get("/whoami", headers=bad, remote_addr=addr).status_code == 401
    assert client.simulate_get("/whoami", headers=good, remote_addr=addr).status_code == 200


def test_lockout_backoff_grows_exponentially_and_is_capped(client, clock):
    addr = "192.0.2.9"
    bad = {"Authorization": basic_authorization("vic", "wrong-password")}
    for _ in range(10):
        client.simulate_get("/whoami", headers=bad, remote_addr=addr)
    seen = []
    for _ in range(8):
        r = client.simulate_get("/whoami", headers=bad, remote_addr=addr)
        assert r.status_code == 429  # not checked, not counted
        wait = int(r.headers["Retry-After"])
        seen.append(wait)
        clock.advance(wait)
        assert client.simulate_get("/whoami", headers=bad, remote_addr=addr).status_code == 401
    assert seen == [1, 2, 4, 8, 16, 32, 60, 60]


def test_failures_outside_the_window_are_forgotten(client, clock):
    addr = "192.0.2.10"
    bad = {"Authorization": basic_authorization("vic", "wrong-password")}
    for _ in range(9):
        assert client.simulate_get("/whoami", headers=bad, remote_addr=addr).status_code == 401
        clock.advance(40)  # 9 failures spread over 360 s: never 10 inside 300 s
    assert client.simulate_get("/whoami", headers=bad, remote_addr=addr).status_code == 401
    assert client.simulate_get("/whoami", headers=bad, remote_addr=addr).status_code == 401


def test_digest_failures_count_and_digest_success_resets(app, client, clock):
    addr = "192.0.2.11"
    for _ in range(10):
        ch = digest_challenge(app, remote_addr=addr)
        h = digest_authorization(ch, "olga", "not-her-password", "GET", "/whoami")
        assert client.simulate_get("/whoami", headers={"Authorization": h}, remote_addr=addr).status_code == 401
    # a request without credentials still gets a challenge (a Digest client needs the nonce)...
    ch = digest_challenge(app, remote_addr=addr)
    # ...but olga's credentials, even the right ones, wait
    h = digest_authorization(ch, "olga", "olga-secret-1", "GET", "/whoami")
    r = client.simulate_get("/whoami", headers={"Authorization": h}, remote_addr=addr)
    assert r.status_code == 429
    clock.advance(int(r.headers["Retry-After"]))
    ch = digest_challenge(app, remote_addr=addr)
    h = digest_authorization(ch, "olga", "olga-secret-1", "GET", "/whoami")
    assert client.simulate_get("/whoami", headers={"Authorization": h}, remote_addr=addr).status_code == 200


def test_limiter_memory_is_bounded():
    limiter = FailureLimiter(limit=1, max_addresses=3)
    for i in range(10):
        limiter.failure(f"10.0.0.{i}", "vic", 0.0)
    assert limiter.blocked_for("10.0.0.9", "vic", 0.0) > 0
    assert limiter.blocked_for("10.0.0.0", "vic", 0.0) == 0  # evicted
    assert len(limiter._by_addr) == 3
    for i in range(1000):  # names per address are bounded too
        limiter.failure("10.0.0.9", f"name{i}", 0.0)
    assert len(limiter._by_addr["10.0.0.9"].names) == limiter.max_names
    assert len(limiter._by_addr["10.0.0.9"].total.times) <= limiter.address_limit + 10


def _basic_get(client, user, password, addr):
    return client.simulate_get("/whoami", headers={"Authorization": basic_authorization(user, password)},
                               remote_addr=addr)


def test_another_users_login_does_not_reset_the_guessed_users_count(client, clock):
    """The probe's finding: a viewer logging in between guesses reset the counter of the address,
    so the admin password could be guessed without ever meeting the slow-down."""
    addr = "192.0.2.20"
    for i in range(30):
        r = _basic_get(client, "alice", f"guess-{i}", addr)
        if r.status_code == 429:
            break
        assert r.status_code == 401
        assert _basic_get(client, "vic", "vic-secret-12", addr).status_code == 200
    assert i == 10, "the 11th guess of alice's password must meet the slow-down"
    assert r.headers["Retry-After"] == "1"
    # the viewer keeps working meanwhile; alice's own right password waits for the block to end
    assert _basic_get(client, "vic", "vic-secret-12", addr).status_code == 200
    assert _basic_get(client, "alice", "alice-secret", addr).status_code == 429
    clock.advance(1.1)
    assert _basic_get(client, "alice", "alice-secret", addr).status_code == 200


def test_admin_not_locked_out_by_other_users_failures(client, clock):
    """The probe's finding: while an address was slowed down, the right admin password was refused."""
    addr = "192.0.2.21"
    for i in range(30):  # wrong guesses for other names (known and unknown) until the address is slowed
        assert _basic_get(client, ["vic", "olga", "nobody"][i % 3], "wrong-password", addr).status_code == 401
    r = _basic_get(client, "vic", "vic-secret-12", addr)
    assert r.status_code == 429   # vic had failures of its own: even the right password waits
    assert _basic_get(client, "olga", "olga-secret-1", addr).status_code == 429
    assert _basic_get(client, "nobody", "whatever-pass", addr).status_code == 429
    # nobody guessed alice's password from here: the right one gets in, with Digest and Basic
    assert _basic_get(client, "alice", "alice-secret", addr).status_code == 200
    # and a request without credentials still gets its challenge
    assert client.simulate_get("/whoami", remote_addr=addr).status_code == 401


def test_spraying_names_during_an_address_block_gets_one_guess_per_name(client, clock):
    addr = "192.0.2.22"
    for i in range(30):  # one guess each for 30 names: no name reaches its own limit
        assert _basic_get(client, f"name{i}", "wrong-password", addr).status_code == 401
    assert _basic_get(client, "name0", "wrong-password", addr).status_code == 429
    # a fresh name is checked once (a wrong guess is a plain 401), then it waits like the rest
    assert _basic_get(client, "alice", "wrong-password", addr).status_code == 401
    assert _basic_get(client, "alice", "alice-secret", addr).status_code == 429
    # other addresses are not affected
    assert _basic_get(client, "alice", "alice-secret", "192.0.2.23").status_code == 200
    # the block ends (capped at 60 s) and alice's success then clears only alice's record
    clock.advance(61)
    assert _basic_get(client, "alice", "alice-secret", addr).status_code == 200
    # the address count was kept: the next wrong guess (checked, the block is over) blocks again
    assert _basic_get(client, "name0", "wrong-password", addr).status_code == 401
    assert _basic_get(client, "name0", "wrong-password", addr).status_code == 429


def test_full_name_table_gives_no_exemption():
    limiter = FailureLimiter(address_limit=5, max_names=4)
    for i in range(4):
        limiter.failure("a", f"n{i}", 0.0)
    limiter.failure("a", "n0", 0.0)   # 5 failures: the address is blocked, the name table is full
    assert limiter.blocked_for("a", "fresh", 0.0) > 0
    assert limiter.blocked_for("a", "", 0.0) > 0
    limiter2 = FailureLimiter(address_limit=5, max_names=8)
    for _ in range(5):
        limiter2.failure("a", "n0", 0.0)
    assert limiter2.blocked_for("a", "fresh", 0.0) == 0


def test_claimed_name():
    assert auth.claimed_name(None) is None
    assert auth.claimed_name("Bearer abc") is None
    assert auth.claimed_name(basic_authorization("vic", "pw:with:colons")) == "vic"
    assert auth.claimed_name('Digest username="olga", realm="doorstation"') == "olga"
    assert auth.claimed_name("Digest garbage") == ""
    assert auth.claimed_name("Basic !!!") == ""
    assert auth.claimed_name(basic_authorization("bad name", "x")) == ""
    assert auth.claimed_name("Basic " + "A" * 5000) == ""


# -- unit: parsing, secret ---------------------------------------------------------------------------

def test_parse_auth_params():
    assert parse_auth_params('a="x, y", b=tok, c="q\\"d"') == {"a": "x, y", "b": "tok", "c": 'q"d'}
    assert parse_auth_params("A=1") == {"a": "1"}
    assert parse_auth_params("a=1 b=2") is None
    assert parse_auth_params("a=1, a=2") is None
    assert parse_auth_params('a="unterminated') is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_parse_auth_params_never_raises(text):
    result = parse_auth_params(text)
    assert result is None or isinstance(result, dict)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scheme=st.sampled_from(["Digest ", "Basic ", "digest\t", "", "Bearer "]),
       rest=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=200),
       addr=st.ip_addresses(v=4).map(str))
def test_arbitrary_authorization_headers_never_authenticate_or_crash(client, scheme, rest, addr):
    result = client.simulate_get("/whoami", headers={"Authorization": scheme + rest}, remote_addr=addr)
    assert result.status_code in (401, 429)  # 429 only if hypothesis repeats an address 10 times


def test_digest_header_with_tab_after_scheme(app, client):
    ch = digest_challenge(app)
    header = digest_authorization(ch, "vic", "vic-secret-12", "GET", "/whoami").replace("Digest ", "Digest\t", 1)
    assert client.simulate_get("/whoami", headers={"Authorization": header}).status_code == 200


def test_secret_file_created_0600_and_reused(tmp_path):
    state = tmp_path / "state"
    first = load_or_create_secret(state)
    path = state / "api-secret"
    assert len(first) == 32 and path.read_bytes() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(state) == first
    assert [p.name for p in state.iterdir()] == ["api-secret"]  # no temp files left


def _secret_in_child(state_dir, queue):
    queue.put(load_or_create_secret(state_dir).hex())


def test_secret_creation_race_between_processes(tmp_path):
    ctx = multiprocessing.get_context("fork")
    for round_ in range(3):
        state = tmp_path / f"s{round_}"
        state.mkdir()
        queue = ctx.Queue()
        procs = [ctx.Process(target=_secret_in_child, args=(state, queue)) for _ in range(6)]
        for p in procs:
            p.start()
        results = [queue.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(timeout=30)
            assert p.exitcode == 0
        assert len(set(results)) == 1
        assert bytes.fromhex(results[0]) == (state / "api-secret").read_bytes()


def test_damaged_secret_is_refused(tmp_path):
    (tmp_path / "api-secret").write_bytes(b"short")
    with pytest.raises(auth.SecretError):
        load_or_create_secret(tmp_path)


def test_make_authenticator_reads_the_store(tmp_path, clock):
    store = Store.open(tmp_path)
    try:
        users.add_user(store, "sam", "operator", "sam-password")
        client = falcon.testing.TestClient(build_app(make_authenticator(tmp_path, clock=clock)))
        good = {"Authorization": basic_authorization("sam", "sam-password")}
        assert client.simulate_get("/whoami", headers=good).json == {"name": "sam", "role": "operator"}
        users.remove_user(store, "sam")
        clock.advance(2.1)
        assert client.simulate_get("/whoami", headers=good).status_code == 401
    finally:
        store.close()


def test_make_authenticator_before_the_database_exists(tmp_path, clock):
    authn = make_authenticator(tmp_path / "new", clock=clock)
    client = falcon.testing.TestClient(build_app(authn))
    good = {"Authorization": basic_authorization("sam", "sam-password")}
    assert client.simulate_get("/whoami", headers=good).status_code == 503
    store = Store.open(tmp_path / "new")
    try:
        users.add_user(store, "sam", "viewer", "sam-password")
        assert client.simulate_get("/whoami", headers=good).status_code == 200
    finally:
        store.close()


# -- real stack: gunicorn + SQLite + curl + requests -----------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """gunicorn serving tests.authapp on a random loopback port (the listening socket is created here
    and handed over as fd://, so there is no window in which another process can take the port)."""
    state = tmp_path_factory.mktemp("auth-state")
    store = Store.open(state)
    users.add_user(store, "admin", "admin", "admin-password-1")
    users.add_user(store, "door", "operator", "door-password-2")
    users.add_user(store, "temp", "viewer", "temp-password-3")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    env = dict(os.environ, DOORSTATION_STATE_DIR=str(state))
    log = open(state / "gunicorn.log", "wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"fd://{listener.fileno()}",
         "--workers", "2", "--threads", "4", "--graceful-timeout", "2", "--log-level", "warning",
         "tests.authapp:app"],
        cwd=REPO, env=env, pass_fds=[listener.fileno()], stdout=log, stderr=subprocess.STDOUT)
    listener.close()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (state / "gunicorn.log").read_text()
            try:
                if requests.get(base + "/whoami", timeout=2).status_code == 401:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer within 30 s"
            time.sleep(0.1)
        yield {"base": base, "port": port, "store": store, "state": state}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        store.close()


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}", *args],
                          capture_output=True, text=True, timeout=30)


def test_real_challenge_lines_on_the_wire(server):
    conn = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=10)
    try:
        conn.request("GET", "/whoami")
        resp = conn.getresponse()
        body = resp.read()
        lines = resp.msg.get_all("WWW-Authenticate")
    finally:
        conn.close()
    assert resp.status == 401
    assert len(lines) == 3
    assert "algorithm=SHA-256" in lines[0] and "algorithm=MD5" in lines[1] and lines[2].startswith("Basic ")
    assert json.loads(body)["FaultCode"] == "ter:NotAuthorized"


def test_real_curl_digest_uses_sha256(server):
    done = curl("-v", "--digest", "-u", "door:door-password-2", server["base"] + "/whoami?a=1&b=x%20y")
    body, code = done.stdout.rsplit("\n", 1)
    assert code == "200", done.stderr
    assert json.loads(body) == {"name": "door", "role": "operator", "path": "/whoami", "query": "a=1&b=x%20y"}
    sent = [line for line in done.stderr.splitlines() if line.startswith("> Authorization: Digest")]
    assert len(sent) == 1 and "algorithm=SHA-256" in sent[0]


def test_real_curl_anyauth_post_like_the_spec_examples(server):
    done = curl("--anyauth", "-u", "admin:admin-password-1", "-d", '{"axcall:GetSIPConfiguration":{}}',
                server["base"] + "/vapix/call")
    body, code = done.stdout.rsplit("\n", 1)
    assert code == "200", done.stderr
    assert json.loads(body)["role"] == "admin"


def test_real_curl_wrong_password_and_no_auth_get_401(server):
    body, code = curl("--digest", "-u", "door:wrong-password", server["base"] + "/whoami").stdout.rsplit("\n", 1)
    assert code == "401"
    assert json.loads(body)["FaultSubCode"] == "ter:AuthenticationFailed"
    assert curl(server["base"] + "/whoami").stdout.rsplit("\n", 1)[1] == "401"


def test_real_requests_digest_session_reuses_nonce(server):
    with requests.Session() as s:
        s.auth = HTTPDigestAuth("admin", "admin-password-1")
        first = s.get(server["base"] + "/whoami", timeout=10)
        assert first.status_code == 200 and first.json()["name"] == "admin"
        assert [r.status_code for r in first.history] == [401]  # the challenge round trip
        for i in range(6):
            r = s.get(server["base"] + f"/whoami?i={i}", timeout=10)
            assert r.status_code == 200, r.text
            assert r.history == []  # sent pre-emptively with nc = 2, 3, ...: no new challenge
            assert r.json()["query"] == f"i={i}"
        assert "nc=00000007" in r.request.headers["Authorization"]


def test_real_requests_digest_from_many_threads(server):
    auth_obj = HTTPDigestAuth("door", "door-password-2")  # thread-local state inside requests
    results, errors = [], []

    def worker():
        try:
            with requests.Session() as s:
                s.auth = auth_obj
                for _ in range(5):
                    r = s.get(server["base"] + "/vapix/call", timeout=15)
                    results.append((r.status_code, r.json().get("name")))
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert results == [(200, "door")] * 40


def test_real_requests_basic(server):
    r = requests.get(server["base"] + "/whoami", auth=HTTPBasicAuth("door", "door-password-2"), timeout=10)
    assert r.status_code == 200 and r.json()["role"] == "operator"
    r = requests.get(server["base"] + "/whoami", auth=HTTPBasicAuth("door", "door-password-X"), timeout=10)
    assert r.status_code == 401


def test_real_user_removal_takes_effect(server):
    url = server["base"] + "/whoami"
    good = HTTPBasicAuth("temp", "temp-password-3")
    assert requests.get(url, auth=good, timeout=10).status_code == 200
    users.remove_user(server["store"], "temp")
    statuses = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        statuses.append(requests.get(url, auth=good, timeout=10).status_code)
        if statuses[-1] == 401:
            break
        time.sleep(0.25)
    assert statuses[-1] == 401, statuses


# -- the probe's brute-force sequences against a real `doorstation run` (one gunicorn worker) --------

@pytest.mark.integration
def test_real_station_brute_force_meets_the_slow_down_and_admin_still_gets_in(tmp_path):
    from tests.harness import ADMIN, VIEWER, Station
    with Station(tmp_path / "state") as station:
        url = f"{station.url}/vapix/call?format=simple&action=axcall:GetServiceCapabilities"

        def get(user: str, password: str) -> int:
            return requests.get(url, auth=HTTPBasicAuth(user, password), timeout=20).status_code

        # 1. guesses of the admin password, each followed by a viewer login (which used to reset the count)
        codes = []
        for i in range(12):
            codes.append(get("admin", f"guess-{i}"))
            assert get(*VIEWER) == 200
        assert codes[:10] == [401] * 10 and codes[10] == 429, codes
        time.sleep(1.2)   # the first block is 1 s
        assert get(*ADMIN) == 200

    with Station(tmp_path / "state2") as station:
        url = f"{station.url}/vapix/call?format=simple&action=axcall:GetServiceCapabilities"
        # 2. 30 wrong guesses spread over other names slow the address down...
        for i in range(30):
            assert requests.get(url, auth=HTTPBasicAuth(["viewer", "oper", "ghost"][i % 3], "wrong-pass"),
                                timeout=20).status_code == 401
        assert requests.get(url, auth=HTTPBasicAuth(*VIEWER), timeout=20).status_code == 429
        # ...but the admin, whose password nobody guessed, still gets in (Digest and Basic)
        assert requests.get(url, auth=HTTPDigestAuth(*ADMIN), timeout=20).status_code == 200
        assert requests.get(url, auth=HTTPBasicAuth(*ADMIN), timeout=20).status_code == 200
