"""The web page's server side without a browser: first use on a real `doorstation run --first-use`
(503 until the admin password is set, once, from the local network), session cookies beside
Digest (flags, CSRF token required on every write, logout, roles), plus unit tests of the session
store's bounds and the local-network check."""
from __future__ import annotations

import falcon
import falcon.testing
import pytest
import requests
from requests.auth import HTTPDigestAuth

from daemon.api.web.firstuse import is_local_address
from daemon.api.web.resources import CSP, SessionResource, SetupResource
from daemon.api.web.sessions import SessionStore
from tests.harness import VIEWER, Station, doorstation, free_port

pytestmark = pytest.mark.integration

ADMIN_PASSWORD = "first-use-pass-1"
PAGE = {"X-Doorstation-Page": "1"}


@pytest.fixture(scope="module")
def first_use(tmp_path_factory):
    """A station with no user at all, started with --first-use, also on HTTPS."""
    https_port = free_port()
    st = Station(tmp_path_factory.mktemp("web") / "state", with_users=False,
                 extra_args=["--first-use", "--https", f"127.0.0.1:{https_port}"])
    st.https_url = f"https://127.0.0.1:{https_port}"
    with st:
        yield st


def vapix(session: requests.Session, st: Station, command: str, params: dict | None = None, **kw):
    return session.post(f"{st.url}/vapix/call", json={f"axcall:{command}": params or {}}, timeout=15, **kw)


def login(st: Station, user: str, password: str, url: str | None = None, **kw) -> tuple[requests.Session, dict]:
    s = requests.Session()
    r = s.post(f"{url or st.url}/api/session", json={"User": user, "Password": password}, timeout=15, **kw)
    assert r.status_code == 200, r.text
    return s, r.json()


def test_first_use_then_sessions_csrf_and_logout(first_use):
    st = first_use
    assert "No admin yet: open http://127.0.0.1:" in "".join(st.output)
    # 1. no admin: the page is served, the API refuses everything with a clear reason
    page = requests.get(f"{st.url}/", timeout=15)
    assert page.status_code == 200 and page.headers["Content-Security-Policy"] == CSP
    assert requests.get(f"{st.url}/api/session", timeout=15).json() == {"FirstUse": True, "LocalNetwork": True}
    refused = vapix(requests.Session(), st, "GetCallStatuses")
    assert refused.status_code == 503 and "No admin password is set yet" in refused.json()["FaultReason"]
    assert requests.get(f"{st.url}/api/events?after=0", timeout=15).status_code == 503
    for path in ("/ui/app.js", "/ui/app.css", "/ui/index.html"):
        assert requests.get(f"{st.url}{path}", timeout=15).status_code == 200
    assert requests.get(f"{st.url}/ui/other.js", timeout=15).status_code == 503   # not a page file
    # 2. set-up: JSON only, the password's bounds named with its field, then once only
    form = requests.post(f"{st.url}/api/setup", data={"Password": ADMIN_PASSWORD}, timeout=15)
    assert form.status_code == 415
    short = requests.post(f"{st.url}/api/setup", json={"Password": "short"}, timeout=15)
    assert short.status_code == 400 and short.json()["Field"] == "Password"
    s = requests.Session()
    done = s.post(f"{st.url}/api/setup", json={"Password": ADMIN_PASSWORD}, timeout=15)
    assert done.status_code == 200 and done.json()["User"] == "admin" and done.json()["Role"] == "admin"
    csrf = done.json()["CSRF"]
    cookie = done.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=" in cookie
    assert "Secure" not in cookie      # plain HTTP: a Secure cookie would never come back
    again = requests.post(f"{st.url}/api/setup", json={"Password": "another-pass-2"}, timeout=15)
    assert again.status_code == 409
    # 3. the session is a user: GETs need nothing more, every other method the CSRF token (POST
    #    /vapix/call included, whatever the command: the method decides, not the command)
    page_status = s.get(f"{st.url}/api/status", timeout=15).json()
    assert page_status["User"] == {"Name": "admin", "Role": "admin"}
    # the hardware section: what hardware.toml configured, and what the board has (names to use)
    assert set(page_status["HardwareConfig"]["Present"]) == {"GPIOChips", "SoundCards"}
    assert vapix(s, st, "GetSIPConfiguration").status_code == 403
    assert vapix(s, st, "GetSIPConfiguration", headers={"X-CSRF-Token": csrf}).status_code == 200
    write = {"SIPConfiguration": {"CallingTimeout": 30}}
    for headers in ({}, {"X-CSRF-Token": "x" * 43}, {"X-CSRF-Token": ""}):
        r = vapix(s, st, "SetSIPConfiguration", write, headers=headers)
        assert r.status_code == 403 and "CSRF" in r.json()["FaultReason"], r.text
    assert s.post(f"{st.url}/api/door/open", timeout=15).status_code == 403      # no token, no door
    assert s.put(f"{st.url}/api/door/bindings", json={"DTMFEventIds": []}, timeout=15).status_code == 403
    assert vapix(s, st, "SetSIPConfiguration", write, headers={"X-CSRF-Token": csrf}).status_code == 200
    # 4. Digest and Basic with the password set on the page work as before
    digest = requests.Session()
    digest.auth = HTTPDigestAuth("admin", ADMIN_PASSWORD)
    assert vapix(digest, st, "GetCallStatuses").status_code == 200
    # 5. log-out needs the token too; afterwards the cookie is nobody
    assert s.delete(f"{st.url}/api/session", timeout=15).status_code == 403
    out = s.delete(f"{st.url}/api/session", headers={"X-CSRF-Token": csrf}, timeout=15)
    assert out.status_code == 200 and "Max-Age=0" in out.headers["Set-Cookie"]
    s.cookies.set("ds_session", done.cookies["ds_session"])
    ended = s.get(f"{st.url}/api/status", headers=PAGE, timeout=15)
    assert ended.status_code == 401 and "WWW-Authenticate" not in ended.headers   # no browser dialog
    plain = s.get(f"{st.url}/api/status", timeout=15)
    assert plain.status_code == 401 and "Digest" in plain.headers["WWW-Authenticate"]


def test_login_roles_and_secure_cookie_over_https(first_use):
    st = first_use
    if requests.get(f"{st.url}/api/session", timeout=15).json()["FirstUse"]:
        assert requests.post(f"{st.url}/api/setup", json={"Password": ADMIN_PASSWORD}, timeout=15).ok
    added = doorstation("user", "add", VIEWER[0], "--role", "viewer", "--password-stdin",
                        state_dir=st.state_dir, input=VIEWER[1] + "\n")
    assert added.returncode == 0, added.stderr
    wrong = requests.post(f"{st.url}/api/session", json={"User": "admin", "Password": "wrong-password"}, timeout=15)
    assert wrong.status_code == 401 and wrong.json()["Field"] == "Password"
    assert "WWW-Authenticate" not in wrong.headers
    viewer, me = login(st, *VIEWER)
    assert me["Role"] == "viewer"
    token = {"X-CSRF-Token": me["CSRF"]}
    assert vapix(viewer, st, "GetSIPAccounts", headers=token).status_code == 200
    denied = vapix(viewer, st, "SetSIPConfiguration", {"SIPConfiguration": {"CallingTimeout": 30}}, headers=token)
    assert denied.status_code == 403 and denied.json()["FaultSubCode"] == "ter:OperationProhibited"
    assert viewer.post(f"{st.url}/api/door/open", headers=token, timeout=15).status_code == 403
    # a password change ends the user's sessions
    changed = doorstation("user", "add", VIEWER[0], "--role", "viewer", "--password-stdin", "--replace",
                          state_dir=st.state_dir, input="viewer-secret-2\n")
    assert changed.returncode == 0
    import time
    time.sleep(2.5)    # the authenticator's user cache (USER_CACHE_TTL)
    assert viewer.get(f"{st.url}/api/status", headers=PAGE, timeout=15).status_code == 401
    # over HTTPS the cookie is Secure
    r = requests.post(f"{st.https_url}/api/session", json={"User": "admin", "Password": ADMIN_PASSWORD},
                      verify=str(st.state_dir / "tls" / "station.crt"), timeout=15)
    assert r.status_code == 200 and "; Secure" in r.headers["Set-Cookie"]


# -- unit tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("addr,local", [
    ("127.0.0.1", True), ("10.1.2.3", True), ("172.16.0.9", True), ("172.31.255.1", True),
    ("192.168.1.20", True), ("169.254.3.4", True), ("::1", True), ("fe80::1%eth0", True),
    ("fd12:3456::1", True), ("::ffff:192.168.1.2", True),
    ("172.32.0.1", False), ("8.8.8.8", False), ("100.64.0.1", False), ("2001:db8::1", False),
    ("::ffff:8.8.8.8", False), ("", False), (None, False), ("not-an-address", False)])
def test_local_address(addr, local):
    assert is_local_address(addr) is local


def test_session_store_bounds_and_expiry():
    now = [1000.0]
    store = SessionStore(lambda: now[0], max_sessions=5, max_per_user=2, idle_timeout=60, lifetime=300)
    a1, _ = store.create("a", "admin", "h")
    a2, _ = store.create("a", "admin", "h")
    a3, _ = store.create("a", "admin", "h")
    assert store.get(a1) is None and store.get(a2) and store.get(a3)     # two per user: oldest gone
    others = [store.create(f"u{i}", "viewer", "h")[0] for i in range(5)]
    assert len(store) == 5 and store.get(a2) is None and all(store.get(t) for t in others)
    now[0] += 61
    assert store.get(others[0]) is None                                   # idle too long
    t, _ = store.create("b", "viewer", "h")
    for _ in range(6):
        now[0] += 50
        assert store.get(t) is not None                                   # used: stays...
    now[0] += 50
    assert store.get(t) is None                                           # ...until its lifetime
    assert store.get("") is None and store.get("x" * 10_000) is None


class _Control:
    def __init__(self):
        self.requests = []

    def request(self, command, args, timeout=None):
        self.requests.append((command, args))
        return {}


def test_setup_refused_from_outside_the_local_network():
    control = _Control()
    sessions = SessionStore(lambda: 0.0)
    session = SessionResource(sessions, None, lambda *a: None, lambda: False)
    app = falcon.App()
    app.add_route("/api/setup", SetupResource(control, lambda: False, lambda: None, session))
    client = falcon.testing.TestClient(app)
    r = client.simulate_post("/api/setup", json={"Password": "long-enough-1"}, remote_addr="203.0.113.7")
    assert r.status_code == 403 and "local network" in r.json["FaultReason"]
    assert control.requests == []


def test_login_refused_over_plain_http_when_basic_is_https_only():
    tried = []
    session = SessionResource(SessionStore(lambda: 0.0), None, lambda *a: tried.append(a), lambda: True,
                              password_over_http=False)
    app = falcon.App()
    app.add_route("/api/session", session)
    r = falcon.testing.TestClient(app).simulate_post("/api/session", json={"User": "admin", "Password": "x" * 10})
    assert r.status_code == 403 and "HTTPS" in r.json["FaultReason"] and tried == []


def test_gate_accepts_a_session_and_wants_its_token_on_every_unsafe_method():
    from daemon.api.web.gate import SessionAuth, WebGate
    from daemon.users import UserRecord
    records = {"ann": UserRecord("ann", "operator", "doorstation", "", "", "hash-1", 0.0)}
    sessions = SessionStore(lambda: 0.0)
    token, session = sessions.create("ann", "operator", "hash-1")
    seen = []

    class Echo:
        def _reply(self, req, resp):
            seen.append(req.context.get("user"))
            resp.media = {"ok": True}
        on_get = on_post = on_put = on_delete = _reply

    app = falcon.App(middleware=[WebGate(lambda: True, SessionAuth(sessions, records.get))])
    app.add_route("/x", Echo())
    client = falcon.testing.TestClient(app)
    cookie = {"Cookie": f"ds_session={token}"}
    assert client.simulate_get("/x", headers=cookie).status_code == 200
    assert seen[-1].name == "ann" and seen[-1].role == "operator"
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        r = client.simulate_request(method, "/x", headers=cookie)
        assert r.status_code == 403 and "CSRF" in r.json["FaultReason"], method
        r = client.simulate_request(method, "/x", headers={**cookie, "X-CSRF-Token": session.csrf})
        assert r.status_code in (200, 405), method
    # credentials in the request: the Authenticator's, the cookie is not looked at
    seen.clear()
    client.simulate_post("/x", headers={**cookie, "Authorization": "Digest username=\"x\""})
    assert seen == [None]
    # a changed role ends the session
    records["ann"] = UserRecord("ann", "viewer", "doorstation", "", "", "hash-1", 0.0)
    r = client.simulate_get("/x", headers={**cookie, "X-Doorstation-Page": "1"})
    assert r.status_code == 401 and "WWW-Authenticate" not in r.headers
    assert sessions.get(token) is None
