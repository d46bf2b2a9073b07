"""The Falcon app through falcon.testing (no sockets except the get_app wiring test).

The control object is a small fake that runs canned command handlers the way the supervisor does
(reply dict, or a VapixFault); the role check is the real daemon.commands.role_allows over a
canned registry.
"""
from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import types
from dataclasses import dataclass

import falcon
import falcon.testing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon import faults
from daemon.api import app as app_module
from daemon.api import codec
from daemon.api.app import create_app
from daemon.commands import role_allows

ACCOUNTS = {
    "sip_account_0": {"Id": "sip_account_0", "Username": "local_account_ipv4_udp", "Password": None,
                      "IsDefault": False, "Transport": "udp"},
    "sip_account_1": {"Id": "sip_account_1", "Username": "1234", "CallerId": "Entrance Door",
                      "IsDefault": True, "Transport": "udp"},
}


def get_sip_accounts(params, lenient):
    return {"SIPAccount": list(ACCOUNTS.values())}


def get_sip_account_status(params, lenient):
    account_id = params.get("SIPAccountId")
    if not isinstance(account_id, str):
        raise faults.missing_arg("SIPAccountId is required")
    if account_id not in ACCOUNTS:
        raise faults.not_found("No such SIP account", account_id)
    return {"SIPAccountStatus": {"SIPAccountId": account_id, "SIPURI": "sip:192.168.0.90:5060",
                                 "RegURI": "", "Status": 0, "StatusText": "Does not register"}}


def call(params, lenient):
    to = params.get("To")
    if not isinstance(to, str) or not to:
        raise faults.invalid_arg("To must be a SIP URI or VMS_CALL")
    return {"CallId": "Out-0-1401964712.117694-gIRuBDTzh7BDKXw-5mDFKF"}


def set_sip_configuration(params, lenient):
    port = (params.get("SIPConfiguration") or {}).get("SIPPort", 5060)
    if lenient and isinstance(port, str) and port.isdigit():
        port = int(port)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise faults.invalid_arg("SIPPort out of range")
    return {}


def boom(params, lenient):
    raise RuntimeError("a bug in a handler")


def down(params, lenient):
    raise faults.unavailable()


def weird(params, lenient):
    return ["not", "a", "dict"]


HANDLERS = {"GetSIPAccounts": (get_sip_accounts, "viewer"),
            "GetSIPAccountStatus": (get_sip_account_status, "viewer"),
            "Call": (call, "operator"),
            "SetSIPConfiguration": (set_sip_configuration, "admin")}
BROKEN = {"Boom": (boom, "viewer"), "Down": (down, "viewer"), "Weird": (weird, "viewer")}


class FakeControl:
    """Stands in for daemon.control.client.ControlClient: request(command, args) -> dict | VapixFault."""

    def __init__(self, handlers):
        self.handlers = handlers
        self.calls: list[dict] = []

    def request(self, command: str, args: dict) -> dict:
        assert command == "vapix"
        self.calls.append(args)
        handler, _role = self.handlers[args["action"]]
        return handler(args["params"], args["lenient"])


def command_role_from(handlers):
    def command_role(action: str) -> str:
        if action not in handlers:
            raise faults.unknown_action(action)
        return handlers[action][1]
    return command_role


@dataclass
class User:
    name: str
    role: str


class RoleFromHeader:
    """Test-only stand-in for the auth middleware: the role comes from X-Test-Role."""

    def process_request(self, req, resp):
        req.context.user = User("tester", req.get_header("X-Test-Role") or "admin")


ROLE_FROM_HEADER = RoleFromHeader()


def make_client(handlers=None, authenticator=ROLE_FROM_HEADER, **kwargs):
    handlers = handlers if handlers is not None else {**HANDLERS, **BROKEN}
    control = FakeControl(handlers)
    app = create_app(control, authenticator, command_role=command_role_from(handlers),
                     role_allows=role_allows, **kwargs)
    return falcon.testing.TestClient(app), control


@pytest.fixture
def client():
    return make_client()[0]


def simple_lines(result) -> list[str]:
    return result.text.splitlines()


# --------------------------------------------------------------------------------------- styles

def test_spec_json_request(client):
    r = client.simulate_post("/vapix/call", body='{"axcall:GetSIPAccounts":{}}',
                             content_type="application/x-www-form-urlencoded")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json == {"SIPAccount": list(ACCOUNTS.values())}


def test_forwarded_arguments():
    client, control = make_client()
    client.simulate_post("/vapix/call", body='{"axcall:Call": {"To": "sip:6002@example.axis.com"}}')
    client.simulate_get("/vapix/call", query_string="format=simple&action=axcall:Call&To=VMS_CALL",
                        headers={"X-Test-Role": "operator"})
    assert control.calls == [
        {"action": "Call", "params": {"To": "sip:6002@example.axis.com"}, "lenient": False, "role": "admin"},
        {"action": "Call", "params": {"To": "VMS_CALL"}, "lenient": True, "role": "operator"}]


def test_spec_simple_get(client):
    r = client.simulate_get("/vapix/call",
                            query_string="format=simple&action=axcall:GetSIPAccountStatus&SIPAccountId=sip_account_0")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert simple_lines(r) == ['SIPAccountStatus_SIPAccountId="sip_account_0"',
                               'SIPAccountStatus_SIPURI="sip:192.168.0.90:5060"',
                               'SIPAccountStatus_RegURI=""',
                               "SIPAccountStatus_Status=0",
                               'SIPAccountStatus_StatusText="Does+not+register"']


def test_simple_form_post_and_lenient_numbers(client):
    r = client.simulate_post("/vapix/call", body="format=simple&action=axcall:SetSIPConfiguration"
                                                 "&SIPConfiguration_SIPPort=5070",
                             content_type="application/x-www-form-urlencoded")
    assert (r.status_code, r.text) == (200, "")


def test_simple_post_with_query_and_empty_body(client):
    r = client.simulate_post("/vapix/call", query_string="format=simple&action=axcall:Call&To=VMS_CALL")
    assert simple_lines(r) == ['CallId="Out-0-1401964712.117694-gIRuBDTzh7BDKXw-5mDFKF"']


def test_path_command_json_and_trailing_slash(client):
    r = client.simulate_post("/vapix/call/GetSIPAccountStatus", json={"SIPAccountId": "sip_account_1"})
    assert r.json["SIPAccountStatus"]["SIPAccountId"] == "sip_account_1"
    r = client.simulate_get("/vapix/call/GetSIPAccounts/")
    assert r.status_code == 200 and len(r.json["SIPAccount"]) == 2


def test_path_command_simple(client):
    r = client.simulate_get("/vapix/call/axcall:GetSIPAccounts", query_string="format=simple")
    assert 'SIPAccount_1_CallerId="Entrance+Door"' in simple_lines(r)


def test_google_style(client):
    r = client.simulate_post("/vapix/call", json={"apiVersion": "1.0", "context": "abc",
                                                  "method": "GetSIPAccountStatus",
                                                  "params": {"SIPAccountId": "nope"}})
    assert r.status_code == 400
    assert r.json == {"apiVersion": "1.0", "context": "abc", "method": "GetSIPAccountStatus",
                      "error": {"code": 2104, "message": "No such SIP account: nope"}}
    r = client.simulate_post("/vapix/call", json={"apiVersion": "1.0", "method": "axcall:Call",
                                                  "params": {"To": "VMS_CALL"}})
    assert r.status_code == 200 and r.json["data"] == {"CallId": "Out-0-1401964712.117694-gIRuBDTzh7BDKXw-5mDFKF"}


def test_jsonrpc(client):
    r = client.simulate_post("/vapix/call", json={"jsonrpc": "2.0", "method": "GetSIPAccountStatus",
                                                  "params": {}, "id": 9})
    assert r.status_code == 400
    assert r.json["error"]["code"] == -32602 and r.json["id"] == 9
    assert r.json["error"]["data"]["FaultCode"] == "ter:InvalidArgs"
    r = client.simulate_post("/vapix/call", json={"jsonrpc": "2.0", "method": "Call",
                                                  "params": {"To": "VMS_CALL"}, "id": "a"})
    assert r.json == {"jsonrpc": "2.0", "id": "a",
                      "result": {"CallId": "Out-0-1401964712.117694-gIRuBDTzh7BDKXw-5mDFKF"}}


def test_jsonrpc_notification(client):
    r = client.simulate_post("/vapix/call", json={"jsonrpc": "2.0", "method": "Call", "params": {"To": "x"}})
    assert (r.status_code, r.content) == (204, b"")


# --------------------------------------------------------------------------------------- faults

def test_command_fault_json_and_simple(client):
    r = client.simulate_post("/vapix/call", json={"axcall:GetSIPAccountStatus": {"SIPAccountId": "x"}})
    assert r.status_code == 400
    assert r.json == {"Fault": "env:Sender", "FaultCode": "ter:InvalidArgVal", "FaultSubCode": "ter:NotFound",
                      "FaultReason": "No such SIP account", "FaultMsg": "x"}
    r = client.simulate_get("/vapix/call", query_string="format=simple&action=axcall:GetSIPAccountStatus"
                                                        "&SIPAccountId=x")
    assert r.status_code == 400 and simple_lines(r) == [
        'Fault="env:Sender"', 'FaultCode="ter:InvalidArgVal"', 'FaultSubCode="ter:NotFound"',
        'FaultReason="No+such+SIP+account"', 'FaultMsg="x"']


def test_unknown_action(client):
    r = client.simulate_post("/vapix/call", body='{"axcall:NoSuchCommand": {}}')
    assert r.status_code == 400 and r.json["FaultCode"] == "ter:ActionNotSupported"


def test_malformed_json(client):
    r = client.simulate_post("/vapix/call", body='{"axcall:GetSIPAccounts":')
    assert r.status_code == 400 and r.json["FaultSubCode"] == "ter:MalformedRequest"


def test_body_too_large(client):
    r = client.simulate_post("/vapix/call", query_string="format=simple",
                             body="To=" + "x" * (70 * 1024) + "&action=axcall:Call")
    assert r.status_code == 413 and r.text.startswith('Fault="env:Sender"')


def test_supervisor_down_is_503(client):
    r = client.simulate_post("/vapix/call", json={"axcall:Down": {}})
    assert r.status_code == 503 and r.json["FaultSubCode"] == "ter:ServiceUnavailable"
    r = client.simulate_get("/vapix/call", query_string="format=simple&action=axcall:Down")
    assert r.status_code == 503 and simple_lines(r)[0] == 'Fault="env:Receiver"'


def test_handler_bug_is_500_fault_and_logged(client, caplog):
    with caplog.at_level(logging.ERROR):
        r = client.simulate_post("/vapix/call", json={"jsonrpc": "2.0", "method": "Boom", "id": 1})
    assert r.status_code == 500
    assert r.json["error"]["code"] == -32000 and r.json["error"]["data"]["Fault"] == "env:Receiver"
    assert "Traceback" not in r.text and "a bug in a handler" not in r.text
    assert any("a bug in a handler" in (rec.exc_text or "") or rec.exc_info for rec in caplog.records)


def test_non_dict_reply_is_action_failed(client):
    r = client.simulate_post("/vapix/call", json={"axcall:Weird": {}})
    assert r.status_code == 400 and r.json["FaultCode"] == "ter:Action"


# ----------------------------------------------------------------------------------------- roles

@pytest.mark.parametrize("role, action, params, allowed", [
    ("viewer", "GetSIPAccounts", {}, True),
    ("viewer", "Call", {"To": "VMS_CALL"}, False),
    ("operator", "Call", {"To": "VMS_CALL"}, True),
    ("operator", "SetSIPConfiguration", {}, False),
    ("admin", "SetSIPConfiguration", {}, True),
    ("nobody", "GetSIPAccounts", {}, False),
])
def test_roles(role, action, params, allowed):
    client, control = make_client()
    r = client.simulate_post("/vapix/call", json={f"axcall:{action}": params}, headers={"X-Test-Role": role})
    if allowed:
        assert r.status_code == 200 and len(control.calls) == 1
    else:
        assert r.status_code == 403 and r.json["FaultCode"] == "ter:NotAuthorized"
        assert control.calls == []


def test_forbidden_in_simple_style():
    client, _ = make_client()
    r = client.simulate_get("/vapix/call", query_string="format=simple&action=axcall:Call&To=x",
                            headers={"X-Test-Role": "viewer"})
    assert r.status_code == 403 and 'FaultCode="ter:NotAuthorized"' in simple_lines(r)


def test_no_user_means_no_access():
    client, control = make_client(authenticator=None)
    r = client.simulate_post("/vapix/call", json={"axcall:GetSIPAccounts": {}})
    assert r.status_code == 403 and control.calls == []


# ------------------------------------------------------------------------ Falcon's own errors

def test_other_path_is_404_fault(client):
    r = client.simulate_get("/vapix/other")
    assert r.status_code == 404 and r.json["Fault"] == "env:Sender"


def test_wrong_method_is_405_fault_with_allow(client):
    r = client.simulate_put("/vapix/call", body="{}")
    assert r.status_code == 405 and r.json["FaultCode"] == "ter:ActionNotSupported"
    assert "POST" in r.headers["allow"]


class Challenge:
    def process_request(self, req, resp):
        raise falcon.HTTPUnauthorized(title="Authentication required",
                                      challenges=['Digest realm="doorstation", nonce="n", qop="auth"'])


class Refuse:
    def process_request(self, req, resp):
        raise faults.not_authorized("Account disabled")


class Broken:
    def process_request(self, req, resp):
        raise KeyError("middleware bug")


def test_auth_challenge_keeps_its_header():
    client, _ = make_client(authenticator=Challenge())
    r = client.simulate_post("/vapix/call", json={"axcall:GetSIPAccounts": {}})
    assert r.status_code == 401 and r.json["FaultCode"] == "ter:NotAuthorized"
    assert r.headers["www-authenticate"].startswith("Digest realm=")
    r = client.simulate_get("/vapix/call", query_string="format=simple&action=axcall:GetSIPAccounts")
    assert r.status_code == 401 and r.text.startswith('Fault="env:Sender"')


def test_fault_from_middleware():
    client, _ = make_client(authenticator=Refuse())
    r = client.simulate_get("/vapix/call", query_string="action=axcall:GetSIPAccounts")
    assert r.status_code == 403 and r.json["FaultReason"] == "Account disabled"


def test_bug_in_middleware_is_500_fault(caplog):
    client, _ = make_client(authenticator=Broken())
    with caplog.at_level(logging.ERROR):
        r = client.simulate_get("/vapix/call")
    assert r.status_code == 500 and r.json["Fault"] == "env:Receiver"
    assert "middleware bug" not in r.text
    assert caplog.records


def test_extra_routes_hook():
    class Events:
        def on_get(self, req, resp):
            resp.media = {"events": []}
    client, _ = make_client(extra_routes={"/api/events": Events()})
    assert client.simulate_get("/api/events").json == {"events": []}


# --------------------------------------------------------------------------------- get_app wiring

def test_get_app_needs_state_dir(monkeypatch):
    monkeypatch.delenv("DOORSTATION_STATE_DIR", raising=False)
    with pytest.raises(RuntimeError):
        app_module.get_app()


def _fake_auth_module(seen: list):
    module = types.ModuleType("daemon.api.auth")

    def make_authenticator(state_dir, store=None):
        seen.append(str(state_dir))
        return RoleFromHeader()
    module.make_authenticator = make_authenticator
    return module


def test_get_app_without_supervisor_answers_503(monkeypatch, tmp_path):
    seen: list[str] = []
    monkeypatch.setitem(sys.modules, "daemon.api.auth", _fake_auth_module(seen))
    monkeypatch.setenv("DOORSTATION_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("DOORSTATION_CONTROL_SOCKET", raising=False)
    client = falcon.testing.TestClient(app_module.get_app())
    r = client.simulate_post("/vapix/call", json={"axcall:GetSIPAccounts": {}})
    assert seen == [str(tmp_path)]
    assert r.status_code == 503 and r.json["FaultSubCode"] == "ter:ServiceUnavailable"
    r = client.simulate_get("/api/events", query_string="after=0&wait=0")  # wired to the same control
    assert r.status_code == 503 and r.json["FaultSubCode"] == "ter:ServiceUnavailable"


def test_get_app_uses_the_control_socket_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "daemon.api.auth", _fake_auth_module([]))
    path = tmp_path / "elsewhere.sock"
    monkeypatch.setenv("DOORSTATION_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DOORSTATION_CONTROL_SOCKET", str(path))
    monkeypatch.setenv("DOORSTATION_CONTROL_TIMEOUT", "2")
    accepted = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)
        server.settimeout(5)

        def accept_once():  # a "supervisor" that reads the request and hangs up without answering
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                accepted.append(conn.recv(65536) != b"")
        thread = threading.Thread(target=accept_once)
        thread.start()
        client = falcon.testing.TestClient(app_module.get_app())
        r = client.simulate_post("/vapix/call", json={"axcall:GetSIPAccounts": {}})
        thread.join(6)
    assert accepted == [True]
    assert r.status_code == 503


# ----------------------------------------------------------------------------------------- fuzz

fuzz_client = make_client(handlers=HANDLERS)[0]  # no deliberately broken handlers in here
query_parts = st.sampled_from(["format=simple", "format=json", "format=x", "action=axcall:Call",
                               "action=axcall:GetSIPAccounts", "action=GetSIPAccountStatus", "action=",
                               "To=VMS_CALL", "SIPAccountId=sip_account_0", "SIPAccountId_1=x", "A_0=1",
                               "A=1", "%FF=1", "x=%22", "SIPConfiguration_SIPPort=99999", "_=1", "&", "=",
                               "SIPConfiguration_SIPPort=5061"])
bodies = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda parts: "&".join(parts).encode(), st.lists(query_parts, max_size=6)),
    st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
                 lambda c: st.one_of(st.lists(c, max_size=3),
                                     st.dictionaries(st.sampled_from(
                                         ["axcall:Call", "Call", "To", "jsonrpc", "method", "params", "id",
                                          "apiVersion", "context", "axcall:GetSIPAccountStatus",
                                          "SIPAccountId", "SIPConfiguration", "SIPPort", "x"]), c, max_size=4)),
                 max_leaves=12).map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
       path=st.sampled_from(["/vapix/call", "/vapix/call/", "/vapix/call/Call", "/vapix/call/GetSIPAccounts",
                             "/vapix/call/axcall:GetSIPAccountStatus", "/vapix/call/bad%20name",
                             "/vapix/call/Call/extra", "/vapix", "/"]),
       query=st.lists(query_parts, max_size=5).map("&".join),
       body=bodies,
       content_type=st.sampled_from([None, "application/json", "application/x-www-form-urlencoded", "text/plain",
                                     "multipart/form-data; boundary=x", "application/json; charset=latin-1"]),
       role=st.sampled_from(["viewer", "operator", "admin", "bogus"]))
def test_fuzz_app_never_answers_5xx(method, path, query, body, content_type, role):
    headers = {"X-Test-Role": role}
    if content_type:
        headers["Content-Type"] = content_type
    r = fuzz_client.simulate_request(method, path, query_string=query, body=body, headers=headers)
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        if r.headers.get("content-type", "").startswith("text/plain"):
            assert r.text.startswith('Fault="')
            assert codec.decode(codec.parse_query("&".join(r.text.splitlines())))["Fault"].startswith("env:")
        else:
            answer = r.json
            assert "Fault" in answer or "error" in answer
