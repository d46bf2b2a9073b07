"""Large and odd numbers, deep nesting and hostile JSON answer 400 on every endpoint (issue 9's 500s:
`GET /api/events?after=99999999999999999999999999`, `PUT /api/door/bindings` with 5000 `[`).

Unit tests of daemon.api.jsonbody, then a real `doorstation run` (gunicorn + supervisor + SQLite):
the regressions one by one, and hypothesis over /api/events and /api/door/* like the one over
/vapix/call (tests/test_api_app.py), asserting no 5xx and a VAPIX fault body on every error."""
from __future__ import annotations

import json
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from daemon.api import jsonbody
from daemon.faults import VapixFault
from tests.harness import ADMIN, OPERATOR, VIEWER, Station

# -- unit: jsonbody ----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    b"[" * 5000, b"{\"a\":" * 5000, b"[" * 33 + b"]" * 33,
    b"99999999999999999999999999", b"[-9223372036854775809]", b"1" * 5000, b"1e999", b"-1e999",
    b"NaN", b"[Infinity]", b'{"a":1,"a":2}', b'"\\ud800"', b'{"\\udfff":1}', b"\xff", b"", b"[1,]",
])
def test_hostile_json_is_a_malformed_fault(raw):
    with pytest.raises(VapixFault) as e:
        jsonbody.parse(raw)
    assert e.value.http_status == 400 and e.value.subcode == "ter:MalformedRequest"


def test_json_within_the_bounds_parses():
    assert jsonbody.parse(b"[" * 32 + b"]" * 32) is not None
    assert jsonbody.parse(b"[9223372036854775807, -9223372036854775808, 1e308]") == [
        2 ** 63 - 1, -2 ** 63, 1e308]
    assert jsonbody.parse(b'\xef\xbb\xbf{"a": "\\u00e9"}') == {"a": "\u00e9"}


def test_body_too_large_is_413():
    with pytest.raises(VapixFault) as e:
        jsonbody.parse(b" " * (jsonbody.MAX_BODY + 1))
    assert e.value.http_status == 413


@pytest.mark.parametrize("text", ["99999999999999999999999999", "9223372036854775808", "-1", "+1",
                                  "1_0", " 1", "\u0663", "0x10", "", "1.0"])
def test_query_uint_takes_plain_digits_within_64_bits(text):
    with pytest.raises(VapixFault) as e:
        jsonbody.query_uint(text, "after", 0)
    assert e.value.http_status == 400 and "after" in e.value.reason


def test_query_numbers():
    assert jsonbody.query_uint(None, "after", 7) == 7
    assert jsonbody.query_uint("9223372036854775807", "after", 0) == 2 ** 63 - 1
    assert jsonbody.query_number("0.5", "wait", 0.0, 0.0, 30.0) == 0.5
    # as clients format floats: f"{x:g}" and repr
    for text, value in (("4.2e-05", 4.2e-05), ("0.30000000000000004", 0.30000000000000004), (".5", 0.5),
                        ("1e1", 10.0), ("30", 30.0), ("2.", 2.0)):
        assert jsonbody.query_number(text, "wait", 0.0, 0.0, 30.0) == value
    for text in ("nan", "inf", "1e2", "31", "-0", "+1", "1_0", " 1", "0x1", "\u0663", "1" * 41, "1e1000", "."):
        with pytest.raises(VapixFault):
            jsonbody.query_number(text, "wait", 0.0, 0.0, 30.0)


# -- the real stack -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def station(tmp_path_factory):
    st = Station(tmp_path_factory.mktemp("bounds") / "state").start()
    try:
        yield st
    finally:
        st.stop()


@pytest.fixture(scope="module")
def sessions(station):
    return {name: station.session(user) for name, user in
            (("admin", ADMIN), ("operator", OPERATOR), ("viewer", VIEWER))}


def assert_fault(r, status=400):
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["Fault"] == "env:Sender" and body["FaultCode"].startswith("ter:"), body


@pytest.mark.integration
@pytest.mark.parametrize("query", [
    "after=99999999999999999999999999", "after=9223372036854775808", "after=-1", "after=1_0",
    "after=%D9%A3", "limit=0", "limit=1001", "limit=99999999999999999999", "wait=nan", "wait=inf",
    "wait=31", "wait=1e2", "wait=1e999", "after=1&wait=-0"])
def test_events_odd_numbers_answer_400(station, sessions, query):
    assert_fault(sessions["viewer"].get(f"{station.url}/api/events?{query}", timeout=10))


@pytest.mark.integration
def test_events_largest_after_is_served(station, sessions):
    r = sessions["viewer"].get(f"{station.url}/api/events?after={2 ** 63 - 1}&limit=1000", timeout=10)
    assert r.status_code == 200 and r.json() == {"events": [], "next": 2 ** 63 - 1}


HOSTILE_BODIES = [b"[" * 5000, b'{"DTMFEventIds":' + b"[" * 100 + b"]" * 100 + b"}",
                  b'{"DTMFEventIds": [99999999999999999999999999]}', b'{"DTMFEventIds": [1e999]}',
                  b'{"DTMFEventIds": ["a\\r\\nb"]}', b'{"DTMFEventIds": "dtmf_event_0"}',
                  b'{"DTMFEventIds": [' + b'"x",' * 200 + b'"x"]}', b"\xff\xfe", b"not json"]


@pytest.mark.integration
@pytest.mark.parametrize("body", HOSTILE_BODIES)
def test_door_bindings_hostile_bodies_answer_400(station, sessions, body):
    assert_fault(sessions["admin"].put(f"{station.url}/api/door/bindings", data=body, timeout=10))


@pytest.mark.integration
@pytest.mark.parametrize("body", [
    b"[" * 5000, b'{"axcall:GetCallStatus":' + b"[" * 5000 + b"}",
    b'{"axcall:GetCallStatus": {"CallId": 99999999999999999999999999}}',
    b'{"axcall:SetSIPConfiguration": {"SIPConfiguration": {"SIPPort": 1e999}}}',
    b'{"axcall:SetSIPConfiguration": {"SIPConfiguration": {"SIPPort": 9223372036854775807}}}',
    b'{"axcall:SetSIPConfiguration": {"SIPConfiguration": {"CallingTimeout": -9223372036854775808}}}',
    b'{"jsonrpc": "2.0", "id": 99999999999999999999999999, "method": "GetSIPAccounts"}',
    b'{"apiVersion": "1.0", "context": ' + b"[" * 40 + b"]" * 40 + b', "method": "GetSIPAccounts"}',
])
def test_vapix_call_odd_numbers_and_nesting_answer_400(station, sessions, body):
    r = sessions["admin"].post(f"{station.url}/vapix/call", data=body,
                               headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400, r.text
    assert "Fault" in r.json() or "error" in r.json()


@pytest.mark.integration
@pytest.mark.parametrize("path", ["/axis-cgi/io/portmanagement.cgi", "/axis-cgi/basicdeviceinfo.cgi",
                                  "/axis-cgi/apidiscovery.cgi", "/axis-cgi/mqtt/client.cgi",
                                  "/axis-cgi/mqtt/event.cgi"])
@pytest.mark.parametrize("body", [b"[" * 5000, b'{"apiVersion": "1.0", "method": "getPorts", "params": '
                                  + b"[" * 40 + b"]" * 40 + b"}",
                                  b'{"apiVersion": "1.0", "method": "getPorts", "params": {"p": 1e999}}',
                                  b'{"apiVersion": "1.0", "method": "getPorts", "params": 99999999999999999999999}',
                                  b'{"apiVersion": "1.0", "method": "getPorts", "method": "x"}'])
def test_axis_json_apis_refuse_hostile_json(station, sessions, path, body):
    """The Axis JSON APIs read bodies with the same strict reader: Axis's 2101 "invalid JSON"."""
    r = sessions["admin"].post(f"{station.url}{path}", data=body, timeout=10)
    assert r.status_code < 500 and r.json()["error"]["code"] == 2101, r.text


@pytest.mark.integration
@pytest.mark.parametrize("query", ["format=simple&action=axcall:GetCallStatus&CallId=" + "9" * 30,
                                   "format=simple&action=axcall:SetSIPConfiguration"
                                   "&SIPConfiguration_SIPPort=99999999999999999999999999"])
def test_simple_format_big_numbers_answer_400(station, sessions, query):
    r = sessions["admin"].get(f"{station.url}/vapix/call?{query}", timeout=10)
    assert r.status_code == 400 and r.text.startswith('Fault="env:Sender"'), r.text


@pytest.mark.integration
def test_crlf_in_user_id_is_a_fault_and_nothing_is_stored(station, sessions):
    """Issue 9: "UserId": "a\r\nVia: evil" was stored, echoed in SIPURI, and broke every SIP apply."""
    before = station.ok("GetSIPAccounts")
    r = station.call("SetSIPAccount", {"SIPAccount": {"UserId": "a\r\nVia: evil", "Registrar": "127.0.0.1"}})
    assert_fault(r)
    assert r.json()["FaultCode"] == "ter:InvalidArgVal" and "UserId" in r.json()["FaultReason"]
    r = sessions["admin"].get(f"{station.url}/vapix/call?format=simple&action=axcall:SetSIPAccount"
                              "&SIPAccount_UserId=a%0D%0AVia:+evil", timeout=10)
    assert r.status_code == 400 and "UserId" in r.text, r.text
    r = station.call("Call", {"To": "sip:x@127.0.0.1\r\nVia: evil"})
    assert_fault(r)
    assert "To" in r.json()["FaultReason"]
    assert station.ok("GetSIPAccounts") == before
    assert station.ok("GetCallStatuses") == {"CallStatus": []}


# hypothesis over /api/events and /api/door/*: no 5xx, and every error a VAPIX fault ----------------

numbers = st.sampled_from(["0", "1", "-1", "30", "31", "0.5", "1000", "1001", "nan", "inf", "-inf",
                           "1e3", "1_0", " 1", "\u0663", "", "9" * 19, "9" * 30, str(2 ** 63 - 1),
                           str(2 ** 63), "0x1", "+1", "1.", ".5"]) | st.integers().map(str)
param_names = st.sampled_from(["after", "wait", "limit", "after", "x", ""])
queries = st.lists(st.tuples(param_names, numbers | st.text(max_size=12)), max_size=4).map(
    lambda pairs: "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs))
json_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                | st.text(max_size=70) | st.sampled_from(["dtmf_event_0", "", "a\r\nb", "x" * 65]))
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=4)
                           | st.dictionaries(st.sampled_from(["DTMFEventIds", "a", ""]) | st.text(max_size=5),
                                             c, max_size=4), max_leaves=20)
raw_bodies = (json_values.map(lambda v: json.dumps(v).encode())
              | json_values.map(lambda v: json.dumps({"DTMFEventIds": v}).encode())
              | st.sampled_from(HOSTILE_BODIES) | st.binary(max_size=64)
              | st.integers(1, 3000).map(lambda n: b"[" * n) | st.integers(1, 60).map(
                  lambda n: b'{"DTMFEventIds":' + b"[" * n + b"]" * n + b"}"))
requests_ = st.one_of(
    st.tuples(st.just("GET"), st.just("/api/events"), queries, st.just(b"")),
    st.tuples(st.sampled_from(["GET", "PUT", "POST"]), st.just("/api/door/bindings"), queries, raw_bodies),
    st.tuples(st.sampled_from(["POST", "GET"]), st.just("/api/door/open"), queries, raw_bodies))


@pytest.mark.integration
@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=requests_, role=st.sampled_from(["admin", "operator", "viewer"]))
def test_fuzz_api_endpoints_never_answer_5xx(station, sessions, request, role):
    method, path, query, body = request
    if path == "/api/events":
        for key, _, value in (part.partition("=") for part in query.split("&")):
            if key == "wait":  # a valid wait long-polls: keep the examples fast
                try:
                    assume(jsonbody.query_number(unquote(value), "wait", 0.0, 0.0, 30.0) <= 0.2)
                except VapixFault:
                    pass
        query += "&wait=0"   # whichever wait falcon takes, none long-polls
    r = sessions[role].request(method, f"{station.url}{path}?{query}", data=body or None, timeout=15)
    assert r.status_code < 500, (method, path, query, body[:200], r.status_code, r.text)
    if r.status_code >= 400:
        answer = r.json()
        assert answer["Fault"].startswith("env:") and answer["FaultCode"].startswith("ter:"), answer
