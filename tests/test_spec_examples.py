"""Every JSON and simplified example of the spec, replayed against a real `doorstation run`
(gunicorn on a loopback port, supervisor, real SQLite file). Addresses in the spec's examples that
are not loopback are only stored, never contacted: SIP stays disabled while they are configured."""
from urllib.parse import quote

import pytest

from tests.harness import ADMIN, OPERATOR, VIEWER

pytestmark = pytest.mark.integration

SPEC_DEFAULT_SIP_CONFIGURATION = {
    "SIPEnabled": False, "TURNServers": [], "STUNServers": [], "ICEEnabled": False,
    "AllowIncomingCalls": False, "TURNEnabled": False, "STUNEnabled": False,
    "ApplyUserAuthentication": False, "AllowedUsers": [], "SIPPort": 5060, "SIPTLSPort": 5061,
    "ApplyAllowedURIs": False, "AllowedURIs": [],
}


def simple_lines(text: str) -> dict:
    out = {}
    for line in text.strip().splitlines():
        key, _, value = line.partition("=")
        out[key] = value
    return out


def test_get_sip_configuration_json_and_simple(station):
    config = station.ok("GetSIPConfiguration")["SIPConfiguration"]
    for key, value in SPEC_DEFAULT_SIP_CONFIGURATION.items():
        assert config[key] == value, key
    r = station.simple("format=simple&action=axcall:GetSIPConfiguration")
    assert r.status_code == 200
    lines = simple_lines(r.text)
    for key in ("SIPEnabled", "STUNEnabled", "TURNEnabled", "ICEEnabled", "AllowIncomingCalls",
                "ApplyUserAuthentication", "ApplyAllowedURIs"):
        assert lines[f"SIPConfiguration_{key}"] == "false"
    assert lines["SIPConfiguration_SIPPort"] == "5060"
    assert lines["SIPConfiguration_SIPTLSPort"] == "5061"


def test_enable_sip_example_round_trips(station):
    body = dict(SPEC_DEFAULT_SIP_CONFIGURATION, SIPEnabled=True, SIPPort=station.sip_port)
    assert station.ok("SetSIPConfiguration", {"SIPConfiguration": body}) == {}
    config = station.ok("GetSIPConfiguration")["SIPConfiguration"]
    assert config["SIPEnabled"] is True and config["SIPPort"] == station.sip_port


def test_add_peer_to_peer_account_json_and_simple(station):
    assert station.ok("SetSIPAccount", {"SIPAccount": {"UserId": "peer-to-peer"}}) == {"SIPAccountId": "sip_account_0"}
    r = station.simple("format=simple&action=axcall:SetSIPAccount&SIPAccount_UserId=peer-to-peer")
    assert r.status_code == 200
    assert simple_lines(r.text) == {"SIPAccountId": '"sip_account_1"'}
    accounts = station.ok("GetSIPAccounts")["SIPAccount"]
    ids = [a["Id"] for a in accounts]
    assert "sip_account_0" in ids and "sip_account_1" in ids


def test_account_status_peer_to_peer(station):
    station.ok("SetSIPConfiguration", {"SIPConfiguration": {"SIPEnabled": True, "SIPPort": station.sip_port}})
    station.ok("SetSIPAccount", {"SIPAccount": {"UserId": "peer-to-peer"}})
    status = station.ok("GetSIPAccountStatus", {"SIPAccountId": "sip_account_0"})["SIPAccountStatus"]
    assert status["SIPAccountId"] == "sip_account_0"
    assert status["SIPURI"].startswith("sip:") and status["SIPURI"].endswith(f":{station.sip_port}")
    assert status["IsDefault"] is True
    assert (status["RegURI"], status["Status"], status["StatusText"]) == ("", 0, "Does not register")
    r = station.simple("format=simple&action=axcall:GetSIPAccountStatus&SIPAccountId=sip_account_0")
    lines = simple_lines(r.text)
    assert lines["SIPAccountStatus_SIPAccountId"] == '"sip_account_0"'
    assert lines["SIPAccountStatus_Status"] == "0"
    assert lines["SIPAccountStatus_StatusText"] == '"Does+not+register"'


def test_registered_account_examples_are_stored(station):
    # SIP stays disabled: the spec's registrars are not on this machine and are never contacted.
    assert station.ok("SetSIPAccount", {"SIPAccount": {
        "UserId": "6001", "Password": "secure", "Registrar": "192.168.0.1",
        "PublicDomain": "example.axis.com"}}) == {"SIPAccountId": "sip_account_0"}
    assert station.ok("SetSIPAccount", {"SIPAccount": {
        "UserId": "6001", "Password": "secure", "Registrar": "192.168.0.1",
        "PublicDomain": "example.axis.com"}, "StreamParameters": "resolution=640x480&fps=25"}) == \
        {"SIPAccountId": "sip_account_1"}
    assert station.ok("SetSIPAccount", {"SIPAccount": {
        "UserId": "6001", "Password": "secure", "Registrar": "272.25.25.3",
        "SIPAccount": [{"Server": "192.168.0.1", "Username": "username_proxy1", "Password": "password_proxy1"},
                       {"Server": "10.23.23.2", "Username": "username_proxy2", "Password": "password_proxy2"}]}}) == \
        {"SIPAccountId": "sip_account_2"}
    a0 = station.ok("GetSIPAccount", {"SIPAccountId": "sip_account_0"})["SIPAccount"]
    assert a0["UserId"] == "6001" and a0["Registrar"] == "192.168.0.1" and a0["PublicDomain"] == "example.axis.com"
    assert a0["Password"] != "secure"  # never returned in clear
    a1 = station.ok("GetSIPAccount", {"AccountId": "sip_account_1"})["SIPAccount"]
    assert a1["StreamParameters"] == "resolution=640x480&fps=25"
    a2 = station.ok("GetSIPAccount", {"SIPAccountId": "sip_account_2"})["SIPAccount"]
    assert [p["Server"] for p in a2["SIPProxies"]] == ["192.168.0.1", "10.23.23.2"]
    assert all(p["Password"] not in ("password_proxy1", "password_proxy2") for p in a2["SIPProxies"])
    status = station.ok("GetSIPAccountStatus", {"SIPAccountId": "sip_account_0"})["SIPAccountStatus"]
    assert status["StatusText"] == "SIP disabled"
    # Get -> modify -> Set keeps the stored password
    a0["CallerId"] = "Entrance Door"
    station.ok("SetSIPAccount", {"SIPAccount": a0})
    assert station.ok("GetSIPAccount", {"SIPAccountId": "sip_account_0"})["SIPAccount"]["CallerId"] == "Entrance Door"


def test_get_sip_accounts_simple_list_format(station):
    station.ok("SetSIPAccounts", {"SIPAccount": [{"UserId": "local_account_ipv4_udp"},
                                                 {"UserId": "1234", "Password": "password", "Registrar": "192.168.0.91",
                                                  "PublicDomain": "exampledomain.com", "IsDefault": True,
                                                  "CallerId": "Entrance Door"}]})
    r = station.simple("format=simple&action=axcall:GetSIPAccounts")
    lines = simple_lines(r.text)
    by_index = {}
    for key, value in lines.items():
        parts = key.split("_")
        if parts[0] == "SIPAccount" and parts[1].isdigit():
            by_index.setdefault(int(parts[1]), {})["_".join(parts[2:])] = value
    users = {v.get("UserId"): v for v in by_index.values()}
    assert users['"1234"']["IsDefault"] == "true"
    assert users['"1234"']["CallerId"] == '"Entrance+Door"'
    assert users['"local_account_ipv4_udp"']["Password"] == "null"


def test_vms_call_examples(station):
    call_id = station.ok("Call", {"To": "VMS_CALL"})["CallId"]
    assert 0 < len(call_id) <= 64
    status = station.ok("GetCallStatus", {"CallId": call_id})["CallStatus"]
    assert (status["CallId"], status["CallState"], status["CallType"]) == (call_id, "Calling", "VMS")
    r = station.simple(f"format=simple&action=axcall:GetCallStatus&CallId={quote(call_id)}")
    lines = simple_lines(r.text)
    assert lines["CallStatus_CallState"] == '"Calling"' and lines["CallStatus_CallType"] == '"VMS"'
    assert station.ok("TerminateCall", {"CallId": call_id}) == {}
    status = station.ok("GetCallStatus", {"CallId": call_id})["CallStatus"]
    assert status["CallState"] == "Terminated" and "StopTime" in status
    r = station.simple("format=simple&action=axcall:Call&To=VMS_CALL")
    assert r.status_code == 200 and simple_lines(r.text)["CallId"].startswith('"')


def test_sip_call_with_sip_disabled_is_a_receiver_fault(station):
    r = station.call("Call", {"To": "sip:6002@example.axis.com"})
    assert r.status_code == 400
    assert r.json()["Fault"] == "env:Receiver" and r.json()["FaultCode"] == "ter:Action"


def test_terminate_unknown_call_is_not_found(station):
    r = station.call("TerminateCall", {"CallId": "Out-0-1401964712.117694-gIRuBDTzh7BDKXw-5mDFKF"})
    assert r.status_code == 400
    assert r.json()["FaultSubCode"] == "ter:NotFound"
    r = station.simple("format=simple&action=axcall:TerminateCall&CallId=nope")
    lines = simple_lines(r.text)
    assert r.status_code == 400 and lines["Fault"] == '"env:Sender"' and lines["FaultSubCode"] == '"ter:NotFound"'


def test_dtmf_open_door_workflow(station):
    event_id = station.ok("SetDTMFEvent", {"DTMFEvent": {"Name": "OpenDoorEvent", "Enabled": True}})["DTMFEventId"]
    trigger_id = station.ok("SetDTMFTrigger",
                            {"DTMFTrigger": {"DTMFSequence": "#1234#", "DTMFEventId": event_id}})["DTMFTriggerId"]
    conf_id = station.ok("SetDTMFConfiguration", {"DTMFConfiguration": {
        "Name": "OpenDoorDTMFConf", "DTMFTriggerId": [trigger_id]}})["DTMFConfigurationId"]
    station.ok("SetSIPAccount", {"SIPAccount": {"UserId": "door"}})
    account = station.ok("GetSIPAccount", {"AccountId": "sip_account_0"})["SIPAccount"]
    account["DTMFConfigurationId"] = conf_id
    station.ok("SetSIPAccount", {"SIPAccount": account})
    got = station.ok("GetSIPAccount", {"SIPAccountId": "sip_account_0"})["SIPAccount"]
    assert got["DTMFConfigurationId"] == conf_id
    conf = station.ok("GetDTMFConfiguration", {"DTMFConfigurationId": conf_id})["DTMFConfiguration"]
    assert conf["DTMFTriggerId"] == [trigger_id] and conf["RFC2833"] is True and conf["RFC2976"] is True


def test_dtmf_full_access_and_limited(station):
    a, b = station.ok("SetDTMFEvents", {"DTMFEvent": [{"Name": "Event A"}, {"Name": "Event B"}]})["DTMFEventId"]
    t1, t2 = station.ok("SetDTMFTriggers", {"DTMFTrigger": [{"DTMFSequence": "1", "DTMFEventId": a},
                                                           {"DTMFSequence": "2", "DTMFEventId": b}]})["DTMFTriggerId"]
    full = station.ok("SetDTMFConfiguration", {"DTMFConfiguration": {
        "Name": "Full Access", "DTMFSequence": [t1, t2]}})["DTMFConfigurationId"]
    limited = station.ok("SetDTMFConfiguration", {"DTMFConfiguration": {
        "Name": "Limited", "DTMFSequence": [t1]}})["DTMFConfigurationId"]
    confs = {c["Name"]: c for c in station.ok("GetDTMFConfigurations")["DTMFConfiguration"]}
    assert confs["Full Access"]["DTMFTriggerId"] == [t1, t2] and confs["Full Access"]["Id"] == full
    assert confs["Limited"]["DTMFTriggerId"] == [t1] and confs["Limited"]["Id"] == limited


def test_dtmf_sequence_conflict_rule(station):
    a, b = station.ok("SetDTMFEvents", {"DTMFEvent": [{"Name": "Event A"}, {"Name": "Event B"}]})["DTMFEventId"]
    t1234, t5678 = station.ok("SetDTMFTriggers", {"DTMFTrigger": [
        {"DTMFSequence": "1234", "DTMFEventId": a}, {"DTMFSequence": "5678", "DTMFEventId": b}]})["DTMFTriggerId"]
    r = station.call("SetDTMFTrigger", {"DTMFTrigger": {"DTMFSequence": "1234", "DTMFEventId": b}})
    assert r.status_code == 400 and r.json()["FaultCode"] == "ter:InvalidArgVal"
    station.ok("SetDTMFTrigger", {"DTMFTrigger": {"DTMFTriggerId": t1234, "DTMFEventId": b}})
    triggers = {t["Id"]: t for t in station.ok("GetDTMFTriggers")["DTMFTrigger"]}
    assert triggers[t1234]["DTMFEventId"] == b and triggers[t1234]["DTMFSequence"] == "1234"
    assert triggers[t5678]["DTMFEventId"] == b


def test_audio_codec_priority_workflow(station):
    supported = station.ok("GetSupportedAudioCodecs")["AudioCodec"]
    names = {c["Name"] for c in supported}
    assert {"PCMU", "PCMA"} <= names
    default = station.ok("GetDefaultAudioCodecs")["AudioCodec"]
    assert station.ok("GetAudioCodecs")["AudioCodec"] == default
    new = list(reversed(default))
    assert station.ok("SetAudioCodecs", {"AudioCodec": new}) == {}
    assert [c["Name"] for c in station.ok("GetAudioCodecs")["AudioCodec"]] == [c["Name"] for c in new]


def test_vms_configuration_and_capabilities(station):
    vms = station.ok("GetVMSCallConfiguration")["VMSCallConfiguration"]
    assert vms["Timeout"] == 30
    station.ok("SetVMSCallConfiguration", {"VMSCallConfiguration": dict(vms, Timeout=45)})
    assert station.ok("GetVMSCallConfiguration")["VMSCallConfiguration"]["Timeout"] == 45
    caps = station.ok("GetServiceCapabilities")["Capabilities"]
    assert caps["SIP"] is True and caps["DTMF"] is True and caps["AudioCodec"] is True
    assert station.ok("GetSupportedMediaEncryptionModes")["MediaEncryption"] == \
        ["None", "SRTPBestEffort", "SRTPMandatory"]
    names = {a["Name"] for a in station.ok("GetSupportedSIPAccountAttributes")["AttributeInfo"]}
    assert {"DisableTCPSwitch", "MaxCallDuration", "RegistrationInterval"} <= names


def test_fault_shape_for_unknown_command(station):
    r = station.call("PerformSpeakerTest")
    assert r.status_code == 400
    assert set(r.json()) == {"Fault", "FaultCode", "FaultSubCode", "FaultReason", "FaultMsg"}
    r = station.simple("format=simple&action=axcall:PerformSpeakerTest")
    assert r.status_code == 400 and set(simple_lines(r.text)) == {"Fault", "FaultCode", "FaultSubCode",
                                                                   "FaultReason", "FaultMsg"}


def test_roles(station):
    assert station.call("GetSIPAccounts", user=VIEWER).status_code == 200
    assert station.call("SetSIPAccount", {"SIPAccount": {"UserId": "x"}}, user=VIEWER).status_code == 403
    assert station.call("SetSIPAccount", {"SIPAccount": {"UserId": "x"}}, user=OPERATOR).status_code == 403
    assert station.call("Call", {"To": "VMS_CALL"}, user=VIEWER).status_code == 403
    assert station.call("Call", {"To": "VMS_CALL"}, user=OPERATOR).status_code == 200
    assert station.call("SetSIPAccount", {"SIPAccount": {"UserId": "x"}}, user=ADMIN).status_code == 200
