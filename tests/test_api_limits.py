"""Unit tests of the front end's limits (daemon/api/limits.py), the worker's error mapping
(daemon/api/worker.py) and the HTTPS redirect (daemon/api/redirect.py). The same behaviour over real
sockets is in tests/test_frontend.py and tests/test_https.py."""
from __future__ import annotations

import json

import falcon
import falcon.testing
import pytest
from gunicorn.http import errors as http_errors

from daemon.api.limits import ConnectionCounter, Limits, LongPollGate, peer_key
from daemon.api.redirect import HttpsRedirect
from daemon.api.worker import fault_for_parse_error, fault_response, parse_ports
from daemon.faults import VapixFault


def test_limits_from_env():
    assert Limits.from_env({}) == Limits()
    limits = Limits.from_env({"DOORSTATION_HEADER_TIMEOUT": "2.5", "DOORSTATION_MAX_PER_ADDRESS": "3"})
    assert (limits.header_timeout, limits.max_per_address) == (2.5, 3)
    assert Limits.from_env(limits.to_env()) == limits
    for bad in ("x", "0", "-1"):
        with pytest.raises(ValueError, match="DOORSTATION_MAX_CONNECTIONS"):
            Limits.from_env({"DOORSTATION_MAX_CONNECTIONS": bad})


def test_connection_counter_caps_per_address_then_in_total():
    c = ConnectionCounter(max_total=3, max_per_address=2)
    assert c.admit("a") is None and c.admit("a") is None
    fault = c.admit("a")
    assert fault.http_status == 429 and fault.subcode == "ter:TooManyConnections"
    assert c.admit("b") is None
    fault = c.admit("c")
    assert fault.http_status == 503
    c.release("a")
    assert c.admit("c") is None
    for addr in ("a", "b", "c"):
        c.release(addr)
    assert c.total == 0 and c.of("a") == 0


def test_ipv6_peers_count_per_64():
    assert peer_key("192.0.2.7") == "192.0.2.7"
    assert peer_key("2001:db8:1:2:aaaa::1") == peer_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert peer_key("2001:db8:1:3::1") != peer_key("2001:db8:1:2::1")
    assert peer_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert peer_key("fe80::1%eth0") == "fe80::/64"
    assert peer_key("") == ""
    c = ConnectionCounter(max_total=10, max_per_address=2)
    assert c.admit("2001:db8::1") is None and c.admit("2001:db8::2") is None
    assert c.admit("2001:db8::3").http_status == 429  # same /64
    assert c.admit("2001:db8:0:1::1") is None
    c.release("2001:db8::1")
    assert c.of("2001:db8::77") == 1


class User:
    def __init__(self, name):
        self.name = name


def test_longpoll_gate_counts_per_user_and_releases():
    seen = []

    class Events:
        def on_get(self, req, resp):
            seen.append(gate.open_for(req.context.user.name))
            if req.get_param("nested") and gate.open_for("v") < 3:
                # a second long-poll of the same user while this one is open
                try:
                    gate.on_get(req, resp)
                except VapixFault as fault:
                    seen.append(fault.http_status)
            resp.media = {"events": []}

    class Auth:
        def process_request(self, req, resp):
            req.context.user = User(req.get_header("X-User"))

    gate = LongPollGate(Events(), cap=2)
    app = falcon.App(middleware=[Auth()])
    app.add_route("/api/events", gate)
    client = falcon.testing.TestClient(app)
    assert client.simulate_get("/api/events", params={"wait": "5", "nested": "1"},
                               headers={"X-User": "v"}).status_code == 200
    assert seen == [1, 2, 429]  # the third concurrent long-poll of "v" was refused
    assert gate.open_for("v") == 0
    seen.clear()
    client.simulate_get("/api/events", headers={"X-User": "v"})  # no wait: not counted
    assert seen == [0]
    # the cap over all users answers 503
    gate.cap, gate.total_cap = 5, 2
    seen.clear()
    client.simulate_get("/api/events", params={"wait": "5", "nested": "1"}, headers={"X-User": "v"})
    assert seen == [1, 2, 503]


def test_gunicorn_parse_errors_map_to_faults():
    cases = [(http_errors.InvalidRequestLine("x"), 400), (http_errors.LimitRequestHeaders("x"), 431),
             (http_errors.LimitRequestLine(9000, 4094), 414), (http_errors.InvalidHeader("x"), 400)]
    for exc, status in cases:
        fault = fault_for_parse_error(exc)
        assert fault.http_status == status and fault.fault == "env:Sender"
    assert fault_for_parse_error(ValueError("a bug")) is None
    wire = fault_response(fault_for_parse_error(http_errors.LimitRequestHeaders("x")))
    head, _, body = wire.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 ") and b"Content-Type: application/json" in head
    assert json.loads(body)["FaultSubCode"] == "ter:HeadersTooLarge"


def test_parse_ports():
    assert parse_ports("443") == {443}
    assert parse_ports("443, 8443") == {443, 8443}
    assert parse_ports("") == frozenset()


@pytest.mark.parametrize("host, location", [
    ("door.local", "https://door.local/vapix/call?a=1"),
    ("door.local:80", "https://door.local/vapix/call?a=1"),
    ("[fe80::1]:80", "https://[fe80::1]/vapix/call?a=1"),
    ("evil.example/\r\nX: y", None),
    ("two words", None),
])
def test_https_redirect_location(host, location):
    app = falcon.App(middleware=[HttpsRedirect(443)])
    client = falcon.testing.TestClient(app)
    r = client.simulate_post("/vapix/call", query_string="a=1", headers={"Host": host})
    if location is None:
        assert r.status_code == 400
    else:
        assert r.status_code == 308 and r.headers["Location"] == location
