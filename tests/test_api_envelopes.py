"""Request envelopes: every style a VAPIX client sends, decoded, and the answer in the same style."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon import faults
from daemon.api import envelopes
from daemon.api.envelopes import GOOGLE, JSONRPC, SIMPLE, VAPIX, EnvelopeError
from daemon.faults import VapixFault

FORM = "application/x-www-form-urlencoded"  # what curl -d sends, JSON or not


def decode(body: str | bytes = b"", query: str = "", command: str | None = None,
           content_type: str | None = FORM) -> envelopes.Request:
    if isinstance(body, str):
        body = body.encode("utf-8")
    return envelopes.decode(path_command=command, query=query, content_type=content_type, body=body)


def decode_error(**kwargs) -> EnvelopeError:
    with pytest.raises(EnvelopeError) as info:
        decode(**kwargs)
    return info.value


# ------------------------------------------------------------------------------- a) and b) JSON

def test_spec_json_request_with_prefix():
    req = decode('{"axcall:GetSIPConfiguration":{}}')
    assert (req.action, req.params, req.lenient, req.style.kind) == ("GetSIPConfiguration", {}, False, VAPIX)


def test_json_request_without_prefix_and_nested_params():
    req = decode('{"SetSIPAccount": {"SIPAccount": {"UserId": "6001", "Password": "secure"}}}')
    assert req.action == "SetSIPAccount"
    assert req.params == {"SIPAccount": {"UserId": "6001", "Password": "secure"}}


def test_json_null_parameters_mean_none():
    assert decode('{"axcall:GetSIPAccounts": null}').params == {}


def test_json_with_bom_whitespace_and_json_content_type():
    req = decode(b"\xef\xbb\xbf \n{\"axcall:GetSIPAccounts\": {}}", content_type="application/json")
    assert req.action == "GetSIPAccounts"


def test_json_with_format_simple_in_query_answers_simple():
    req = decode('{"axcall:GetSIPAccounts": {}}', query="format=simple")
    assert req.style.kind == SIMPLE and req.lenient is False


# ------------------------------------------------------------------------------- c) path command

def test_path_command_empty_body():
    req = decode(command="GetSIPAccounts")
    assert (req.action, req.params, req.style.kind) == ("GetSIPAccounts", {}, VAPIX)


def test_path_command_with_prefix_in_path():
    assert decode(command="axcall:GetSIPAccounts").action == "GetSIPAccounts"


def test_path_command_json_params():
    req = decode('{"SIPAccountId": "sip_account_0"}', command="GetSIPAccountStatus")
    assert req.params == {"SIPAccountId": "sip_account_0"} and req.lenient is False


def test_path_command_accepts_the_usual_envelope_too():
    req = decode('{"axcall:GetSIPAccountStatus": {"SIPAccountId": "a"}}', command="GetSIPAccountStatus")
    assert req.params == {"SIPAccountId": "a"}


def test_path_command_form_params():
    req = decode("SIPAccountId_0=a&SIPAccountId_1=b", command="GetSIPAccountStatuses")
    assert req.params == {"SIPAccountId": ["a", "b"]} and req.lenient is True
    assert req.style.kind == VAPIX  # no format=simple: the answer is JSON


def test_path_command_with_agreeing_action_and_simple_format():
    req = decode(command="GetSIPAccounts", query="action=axcall:GetSIPAccounts&format=simple")
    assert req.action == "GetSIPAccounts" and req.style.kind == SIMPLE


def test_path_and_query_action_must_agree():
    err = decode_error(command="GetSIPAccounts", query="action=axcall:RemoveSIPAccounts&format=simple")
    assert err.fault.subcode == "ter:MalformedRequest" and err.style.kind == SIMPLE


def test_query_action_with_json_params_body():
    req = decode('{"CallId": "x"}', query="action=axcall:TerminateCall")
    assert (req.action, req.params) == ("TerminateCall", {"CallId": "x"})


def test_params_in_query_and_json_body_is_malformed():
    err = decode_error(body='{"CallId": "x"}', query="action=axcall:TerminateCall&CallId=y")
    assert err.fault.subcode == "ter:MalformedRequest"


# ------------------------------------------------------------------------------ f) simple format

def test_simple_get_query():
    req = decode(query="format=simple&action=axcall:SetSIPAccount&SIPAccount_UserId=peer-to-peer")
    assert (req.action, req.params, req.lenient, req.style.kind) == (
        "SetSIPAccount", {"SIPAccount": {"UserId": "peer-to-peer"}}, True, SIMPLE)


def test_simple_form_body():
    req = decode("format=simple&action=axcall:Call&To=sip%3A6002%40example.axis.com")
    assert (req.action, req.params, req.style.kind) == ("Call", {"To": "sip:6002@example.axis.com"}, SIMPLE)


def test_simple_query_in_url_and_form_body_are_merged():
    req = decode("To=VMS_CALL", query="format=simple&action=axcall:Call")
    assert (req.action, req.params, req.style.kind) == ("Call", {"To": "VMS_CALL"}, SIMPLE)


def test_simple_without_action_is_malformed_in_simple_style():
    err = decode_error(query="format=simple")
    assert err.fault.subcode == "ter:MalformedRequest" and err.style.kind == SIMPLE


def test_simple_unknown_action_prefix():
    err = decode_error(query="format=simple&action=axast:PerformSpeakerTest")
    assert err.fault.code == "ter:ActionNotSupported" and err.style.kind == SIMPLE


def test_conflicting_actions_in_query_and_body():
    err = decode_error(body="action=axcall:Call", query="format=simple&action=axcall:TerminateCall")
    assert err.fault.subcode == "ter:MalformedRequest"


def test_repeated_action_in_query_that_agrees_is_fine():
    assert decode(query="action=axcall:Call&action=axcall:Call&To=x").action == "Call"


def test_unknown_format():
    err = decode_error(query="format=xml&action=axcall:Call")
    assert err.fault.subcode == "ter:MalformedRequest" and err.style.kind == VAPIX


def test_bad_utf8_query_still_answers_simple_when_asked():
    err = decode_error(query="format=simple&action=axcall:Call&To=%FF")
    assert err.fault.subcode == "ter:MalformedRequest" and err.style.kind == SIMPLE


def test_nothing_at_all():
    err = decode_error()
    assert err.fault.subcode == "ter:MalformedRequest" and err.style.kind == VAPIX


# ------------------------------------------------------------------------------- d) Google style

def test_google_request():
    req = decode('{"apiVersion": "1.0", "context": "abc", "method": "GetSIPAccounts", "params": {"A": 1}}')
    assert (req.action, req.params, req.style.kind) == ("GetSIPAccounts", {"A": 1}, GOOGLE)
    reply = envelopes.encode_result(req.style, {"SIPAccount": []})
    assert reply.status == 200
    assert json.loads(reply.body) == {"apiVersion": "1.0", "context": "abc", "method": "GetSIPAccounts",
                                      "data": {"SIPAccount": []}}


def test_google_prefixed_method_no_context_no_params():
    req = decode('{"apiVersion": "1.0", "method": "axcall:GetSIPAccounts"}')
    assert req.action == "GetSIPAccounts" and req.params == {}
    assert json.loads(envelopes.encode_result(req.style, {}).body) == {
        "apiVersion": "1.0", "method": "axcall:GetSIPAccounts", "data": {}}


@pytest.mark.parametrize("body, code", [
    ('{"apiVersion": "2.0", "context": "c", "method": "GetSIPAccounts"}', 2100),
    ('{"apiVersion": 1, "method": "GetSIPAccounts"}', 2100),
    ('{"apiVersion": "1.0", "context": "c"}', 2103),
    ('{"apiVersion": "1.0", "method": 5}', 2104),
    ('{"apiVersion": "1.0", "method": "GetSIPAccounts", "params": [1]}', 2104),
    ('{"apiVersion": "1.0", "method": "axast:PerformSpeakerTest"}', 2102),
    ('{"apiVersion": "1.0", "method": "GetSIPAccounts", "params": {', 2101),
])
def test_google_errors(body, code):
    err = decode_error(body=body)
    assert err.style.kind == GOOGLE
    reply = envelopes.encode_fault(err.style, err.fault, err.code)
    answer = json.loads(reply.body)
    assert answer["error"]["code"] == code and answer["error"]["message"]
    assert answer["apiVersion"] == "1.0"
    if '"context": "c"' in body:
        assert answer["context"] == "c"
    assert reply.status == 400


def test_google_command_faults_are_mapped():
    style = envelopes.Style(GOOGLE, method="GetSIPAccount")
    cases = [(faults.invalid_arg("bad"), 2104), (faults.not_found("No such account", "sip_account_9"), 2104),
             (faults.missing_arg("SIPAccountId is required"), 2103), (faults.unknown_action("X"), 2102),
             (faults.not_supported("TURN"), 2102), (faults.action_failed("boom"), 1100),
             (faults.unavailable(), 1100), (faults.not_authorized(), 1100)]
    for fault, code in cases:
        reply = envelopes.encode_fault(style, fault)
        error = json.loads(reply.body)["error"]
        assert error["code"] == code, fault
        assert fault.reason in error["message"]
        assert reply.status == fault.http_status
    # not found keeps what was not found in the message
    body = json.loads(envelopes.encode_fault(style, cases[1][0]).body)
    assert body["error"]["message"] == "No such account: sip_account_9"


# ------------------------------------------------------------------------------------ e) JSON-RPC

def test_jsonrpc_request_and_result():
    req = decode('{"jsonrpc": "2.0", "method": "axcall:GetSIPAccountStatus", '
                 '"params": {"SIPAccountId": "a"}, "id": 7}')
    assert (req.action, req.params, req.style.kind) == ("GetSIPAccountStatus", {"SIPAccountId": "a"}, JSONRPC)
    reply = envelopes.encode_result(req.style, {"SIPAccountStatus": {}})
    assert (reply.status, json.loads(reply.body)) == (
        200, {"jsonrpc": "2.0", "result": {"SIPAccountStatus": {}}, "id": 7})


def test_jsonrpc_string_id_and_empty_positional_params():
    req = decode('{"jsonrpc": "2.0", "method": "GetSIPAccounts", "params": [], "id": "q1"}')
    assert req.params == {} and req.style.rpc_id == "q1"


def test_jsonrpc_fault_carries_the_vapix_fault():
    req = decode('{"jsonrpc": "2.0", "method": "GetSIPAccount", "id": 3}')
    fault = faults.not_found("No such account")
    reply = envelopes.encode_fault(req.style, fault)
    assert json.loads(reply.body) == {"jsonrpc": "2.0", "id": 3, "error": {
        "code": -32602, "message": "No such account", "data": fault.to_dict()}}
    assert reply.status == 400


def test_jsonrpc_unavailable_is_server_error_503():
    req = decode('{"jsonrpc": "2.0", "method": "GetSIPAccounts", "id": 1}')
    reply = envelopes.encode_fault(req.style, faults.unavailable())
    assert reply.status == 503 and json.loads(reply.body)["error"]["code"] == -32000


def test_jsonrpc_notification_gets_no_body():
    req = decode('{"jsonrpc": "2.0", "method": "TerminateCall", "params": {"CallId": "x"}}')
    assert req.style.notification
    assert envelopes.encode_result(req.style, {}) == envelopes.Reply(204, None, b"")
    assert envelopes.encode_fault(req.style, faults.invalid_arg("x")).body == b""


@pytest.mark.parametrize("body, code, rpc_id", [
    ('{"jsonrpc": "2.0", "method": "GetSIPAccounts", "id": 1', -32700, None),
    (b'{"jsonrpc": "2.0", "method": "\xff", "id": 1}', -32700, None),
    ('{"jsonrpc": "1.0", "method": "GetSIPAccounts", "id": 1}', -32600, 1),
    ('{"jsonrpc": "2.0", "method": 4, "id": 1}', -32600, 1),
    ('{"jsonrpc": "2.0", "method": "GetSIPAccounts", "id": [1]}', -32600, None),
    ('{"jsonrpc": "2.0", "method": "NoSuchThing!", "id": 2}', -32601, 2),
    ('{"jsonrpc": "2.0", "method": "GetSIPAccounts", "params": [1], "id": 2}', -32602, 2),
    ('{"jsonrpc": "2.0", "method": "GetSIPAccounts", "params": "x", "id": 2}', -32602, 2),
    ('[{"jsonrpc": "2.0", "method": "GetSIPAccounts", "id": 2}]', -32600, None),
    ('{"jsonrpc": "2.0", "method": "GetSIPAccounts"}', None, None),  # notification: no body
])
def test_jsonrpc_errors(body, code, rpc_id):
    if code is None:  # control case: a valid notification decodes
        assert decode(body).style.notification
        return
    err = decode_error(body=body)
    assert err.style.kind == JSONRPC
    answer = json.loads(envelopes.encode_fault(err.style, err.fault, err.code).body)
    assert answer["error"]["code"] == code
    assert answer["id"] == rpc_id
    assert answer["error"]["data"]["Fault"] == "env:Sender"


def test_jsonrpc_method_must_agree_with_path():
    err = decode_error(body='{"jsonrpc": "2.0", "method": "Call", "id": 1}', command="TerminateCall")
    assert envelopes.encode_fault(err.style, err.fault, err.code).status == 400
    assert err.code == -32600


# ---------------------------------------------------------------------------------- JSON errors

@pytest.mark.parametrize("body, reason", [
    ('{"axcall:GetSIPAccounts":', "Invalid JSON"),
    ('[1, 2]', "must be an object"),
    ('{"axcall:A": {}, "axcall:B": {}}', "exactly one command"),
    ('{}', "No command"),
    ('{"axcall:A": {}, "axcall:A": {}}', "duplicate key"),
    ('{"axcall:Call": {"To": NaN}}', "Invalid JSON"),
    ('{"axcall:Call": {"To": 1e999}}', "Invalid JSON"),
    ('{"axcall:Call": {"To": "\\ud800"}}', "Invalid JSON"),
    ('{"axcall:Call": [1]}', "must be a JSON object"),
    ('{"axcall:Call": "x"}', "must be a JSON object"),
    ('[' * 5000 + ']' * 5000, "Invalid JSON"),
    ('{"a":' * 40 + '1' + '}' * 40, "nested deeper"),
    (b'{"axcall:Call": {"To": "\xc3\x28"}}', "not valid UTF-8"),
    ('9' * 6000, "Invalid"),
])
def test_json_errors_are_malformed_faults(body, reason):
    err = decode_error(body=body, content_type="application/json")
    assert err.fault.subcode == "ter:MalformedRequest", err.fault.reason
    assert reason in err.fault.reason
    assert err.style.kind == VAPIX
    reply = envelopes.encode_fault(err.style, err.fault, err.code)
    assert reply.status == 400 and json.loads(reply.body)["Fault"] == "env:Sender"


def test_unknown_command_key():
    err = decode_error(body='{"axast:PerformSpeakerTest": {}}')
    assert err.fault.code == "ter:ActionNotSupported"


def test_body_too_large():
    body = '{"axcall:SetSIPAccount": {"SIPAccount": {"CallerId": "' + "x" * envelopes.MAX_BODY + '"}}}'
    err = decode_error(body=body, query="format=simple")
    assert err.fault.http_status == 413 and err.style.kind == SIMPLE


def test_body_at_the_limit_is_accepted():
    prefix, suffix = '{"axcall:Call": {"To": "', '"}}'
    body = prefix + "x" * (envelopes.MAX_BODY - len(prefix) - len(suffix)) + suffix
    assert len(body) == envelopes.MAX_BODY
    assert decode(body).action == "Call"


# ------------------------------------------------------------------------------------ answering

def test_vapix_answers():
    style = envelopes.Style(VAPIX)
    ok = envelopes.encode_result(style, {"SIPAccountId": "sip_account_0"})
    assert (ok.status, ok.content_type, json.loads(ok.body)) == (
        200, "application/json", {"SIPAccountId": "sip_account_0"})
    fault = VapixFault("env:Receiver", "ter:Action", "axast:DeviceNotCalibrated",
                       "The Auto Speaker Test cannot be done without prior calibration.")
    bad = envelopes.encode_fault(style, fault)
    assert bad.status == 400 and json.loads(bad.body) == {
        "Fault": "env:Receiver", "FaultCode": "ter:Action", "FaultSubCode": "axast:DeviceNotCalibrated",
        "FaultReason": "The Auto Speaker Test cannot be done without prior calibration.", "FaultMsg": None}


def test_simple_answers():
    style = envelopes.Style(SIMPLE)
    ok = envelopes.encode_result(style, {"SIPAccountId": "sip_account_0"})
    assert (ok.status, ok.content_type, ok.body) == (200, "text/plain; charset=utf-8",
                                                     b'SIPAccountId="sip_account_0"\n')
    bad = envelopes.encode_fault(style, faults.unavailable())
    assert bad.status == 503 and bad.body.startswith(b'Fault="env:Receiver"\nFaultCode="ter:Action"\n')


def test_non_ascii_answer_is_utf8():
    reply = envelopes.encode_result(envelopes.Style(VAPIX), {"CallerId": "Ångström"})
    assert json.loads(reply.body.decode("utf-8")) == {"CallerId": "Ångström"}


# ----------------------------------------------------------------------------------------- fuzz

json_fragments = st.sampled_from(['{', '}', '[', ']', '"jsonrpc"', '"2.0"', '"method"', '"apiVersion"',
                                  '"axcall:Call"', '"params"', '"id"', ':', ',', 'null', '1', '"x"',
                                  '"\\ud800"', 'NaN', '\xff'])


@settings(max_examples=400)
@given(body=st.one_of(st.binary(max_size=120), st.lists(json_fragments, max_size=30).map("".join)),
       query=st.sampled_from(["", "format=simple", "action=axcall:Call", "format=simple&action=GetX&A_1=2"]),
       command=st.sampled_from([None, "Call", "axcall:Call", "bad name", ""]),
       content_type=st.sampled_from([None, FORM, "application/json", "text/plain"]))
def test_fuzz_decode_only_raises_envelope_errors(body, query, command, content_type):
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    try:
        req = envelopes.decode(path_command=command or None, query=query, content_type=content_type, body=body)
    except EnvelopeError as err:
        reply = envelopes.encode_fault(err.style, err.fault, err.code)
        assert 400 <= reply.status < 500
    else:
        assert isinstance(req.params, dict) and req.action
        assert envelopes.encode_result(req.style, req.params).status in (200, 204)
