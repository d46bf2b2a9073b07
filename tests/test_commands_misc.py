"""The registry (all 42 commands, roles), capabilities, VMS call configuration, audio codecs and
the call commands (thin handlers over the runtime)."""
from __future__ import annotations

import pytest

from daemon.commands import REGISTRY, load_all
from tests.test_commands_fakes import SUPPORTED_CODECS, is_invalid, is_missing, is_not_found

ALL_COMMANDS = """GetServiceCapabilities Call TerminateCall GetCallStatus GetCallStatuses
GetSupportedSIPConfigurationAttributes GetSIPConfiguration SetSIPConfiguration GetSupportedMediaEncryptionModes
GetSupportedSIPAccountAttributes GetSIPAccount GetSIPAccounts SetSIPAccount SetSIPAccounts RemoveSIPAccount
RemoveSIPAccounts GetSIPAccountStatus GetSIPAccountStatuses GetDTMFConfiguration GetDTMFConfigurations
SetDTMFConfiguration SetDTMFConfigurations RemoveDTMFConfiguration RemoveDTMFConfigurations GetDTMFEvent
GetDTMFEvents SetDTMFEvent SetDTMFEvents RemoveDTMFEvent RemoveDTMFEvents GetDTMFTrigger GetDTMFTriggers
SetDTMFTrigger SetDTMFTriggers RemoveDTMFTrigger RemoveDTMFTriggers GetVMSCallConfiguration
SetVMSCallConfiguration GetDefaultAudioCodecs GetSupportedAudioCodecs GetAudioCodecs SetAudioCodecs""".split()


def test_all_42_commands_with_their_roles():
    load_all()
    assert len(ALL_COMMANDS) == 42 and sorted(REGISTRY) == sorted(ALL_COMMANDS)
    for name, cmd in REGISTRY.items():
        if name in ("Call", "TerminateCall"):
            assert cmd.role == "operator", name
        elif name.startswith(("Set", "Remove")):
            assert cmd.role == "admin", name
        else:
            assert name.startswith("Get") and cmd.role == "viewer", name


def test_capabilities(st):
    assert st.run("GetServiceCapabilities") == {"Capabilities": {
        "SIP": True, "DTMF": True, "AudioCodec": True, "MediaEncryption": True, "Certificate": False,
        "Attribute": True}}
    assert is_invalid(st.fault("GetServiceCapabilities", [1]))


# -- VMS ---------------------------------------------------------------------------------------------------

def vms(st):
    return st.run("GetVMSCallConfiguration")["VMSCallConfiguration"]


def test_vms_defaults_and_partial_update(st):
    assert vms(st) == {"Enabled": True, "AudioFromDeviceToNetworkStreams": 0, "AudioFromNetworkToDeviceStreams": 1,
                       "VideoFromDeviceToNetworkStreams": 0, "Timeout": 30}
    st.run("SetVMSCallConfiguration", {"VMSCallConfiguration": {"Timeout": 45, "VideoFromDeviceToNetworkStreams": -1}})
    assert vms(st) == {"Enabled": True, "AudioFromDeviceToNetworkStreams": 0, "AudioFromNetworkToDeviceStreams": 1,
                       "VideoFromDeviceToNetworkStreams": -1, "Timeout": 45}
    st.run("SetVMSCallConfiguration", {"VMSCallConfiguration": {"Enabled": "false", "Timeout": "3600"}}, lenient=True)
    assert (vms(st)["Enabled"], vms(st)["Timeout"]) == (False, 3600)
    assert st.runtime.changed == ["vms", "vms"]


@pytest.mark.parametrize("fields", [{"Timeout": 0}, {"Timeout": 3601}, {"Timeout": "30"}, {"Enabled": 1},
                                    {"AudioFromNetworkToDeviceStreams": 1.5},
                                    {"AudioFromDeviceToNetworkStreams": None}])
def test_vms_invalid(st, fields):
    before = vms(st)
    assert is_invalid(st.fault("SetVMSCallConfiguration", {"VMSCallConfiguration": fields}))
    assert vms(st) == before


def test_vms_missing(st):
    assert is_missing(st.fault("SetVMSCallConfiguration", {}))


# -- codecs ------------------------------------------------------------------------------------------------

def names(codecs):
    return [(c["Name"], c["SampleRate"]) for c in codecs]


def test_supported_default_and_current_codecs(st):
    assert st.run("GetSupportedAudioCodecs")["AudioCodec"] == SUPPORTED_CODECS
    default = names(st.run("GetDefaultAudioCodecs")["AudioCodec"])
    assert default == [("PCMU", 8000), ("PCMA", 8000), ("G722", 16000)]  # compact: INVITE < 1300 B
    assert names(st.run("GetAudioCodecs")["AudioCodec"]) == default


def test_set_audio_codecs_pseudocode_and_wrappings(st):
    current = st.run("GetAudioCodecs")["AudioCodec"]
    new_priority = list(reversed(current))
    assert st.run("SetAudioCodecs", {"AudioCodec": new_priority}) == {}
    assert st.run("GetAudioCodecs")["AudioCodec"] == new_priority
    st.run("SetAudioCodecs", {"AudioCodecs": {"AudioCodec": [{"Name": "g722"}, {"Name": "pcma", "SampleRate": 8000}]}})
    assert names(st.run("GetAudioCodecs")["AudioCodec"]) == [("G722", 16000), ("PCMA", 8000)]
    st.run("SetAudioCodecs", [{"Name": "L16", "SampleRate": 8000}])
    assert names(st.run("GetAudioCodecs")["AudioCodec"]) == [("L16", 8000)]
    st.run("SetAudioCodecs", {"AudioCodec": {"0": {"Name": "PCMU", "SampleRate": "8000"}}}, lenient=True)
    assert names(st.run("GetAudioCodecs")["AudioCodec"]) == [("PCMU", 8000)]
    assert st.runtime.changed == ["codecs"] * 4


@pytest.mark.parametrize("codecs", [[], [{"Name": "GSM"}], [{"Name": "PCMU", "SampleRate": 16000}],
                                    [{"Name": "PCMU"}, {"Name": "pcmu"}], [{"Name": 5}], ["PCMU"],
                                    [{"Name": "PCMU", "SampleRate": "8000"}], [{"Name": "PCMU", "Options": 3}]])
def test_set_audio_codecs_invalid(st, codecs):
    assert is_invalid(st.fault("SetAudioCodecs", {"AudioCodec": codecs}))
    assert st.runtime.changed == []


def test_set_audio_codecs_missing(st):
    assert is_missing(st.fault("SetAudioCodecs", {}))
    assert is_missing(st.fault("SetAudioCodecs", {"AudioCodec": [{"SampleRate": 8000}]}))


# -- calls ---------------------------------------------------------------------------------------------------

def test_sip_call_example_then_status_and_terminate(st):
    call_id = st.run("Call", {"To": "sip:6002@example.axis.com"})["CallId"]
    assert st.runtime.placed == [(None, "sip:6002@example.axis.com")]
    status = st.run("GetCallStatus", {"CallId": call_id})["CallStatus"]
    assert (status["CallId"], status["CallState"], status["CallType"]) == (call_id, "Calling", "SIP")
    assert st.run("TerminateCall", {"CallId": call_id}) == {}
    assert st.runtime.terminated == [call_id]


def test_vms_call_example(st):
    call_id = st.run("Call", {"To": "VMS_CALL"})["CallId"]
    assert st.run("GetCallStatus", {"CallId": call_id})["CallStatus"]["CallType"] == "VMS"


def test_call_with_account(st):
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "6001"}})
    st.run("Call", {"To": "sip:1@127.0.0.1", "SIPAccountId": "sip_account_0"})
    st.run("Call", {"To": "sip:1@127.0.0.1", "SIPAccountId": ""})
    assert st.runtime.placed == [("sip_account_0", "sip:1@127.0.0.1"), (None, "sip:1@127.0.0.1")]
    assert is_not_found(st.fault("Call", {"To": "sip:1@127.0.0.1", "SIPAccountId": "nope"}))


@pytest.mark.parametrize("params, check", [
    ({}, is_missing), ({"To": ""}, is_invalid), ({"To": 5}, is_invalid), ({"To": None}, is_invalid),
    ({"To": "sip:a", "SIPAccountId": "x" * 65}, is_invalid), ({"To": "x" * 1025}, is_invalid),
])
def test_call_validation(st, params, check):
    assert check(st.fault("Call", params))
    assert st.runtime.placed == []


def test_call_status_commands(st):
    first = st.run("Call", {"To": "VMS_CALL"})["CallId"]
    second = st.run("Call", {"To": "sip:x@127.0.0.1"})["CallId"]
    assert is_not_found(st.fault("GetCallStatus", {"CallId": "nope"}))
    assert is_not_found(st.fault("TerminateCall", {"CallId": "nope"}))
    assert is_invalid(st.fault("GetCallStatus", {"CallId": "c" * 65}))
    assert is_missing(st.fault("TerminateCall", {}))
    every = st.run("GetCallStatuses", {})["CallStatus"]
    assert [s["CallId"] for s in every] == [first, second]
    picked = st.run("GetCallStatuses", {"CallId": [second, "nope", first]})["CallStatus"]
    assert [s["CallId"] for s in picked] == [second, first]
    assert [s["CallId"] for s in st.run("GetCallStatuses", {"CallId": first})["CallStatus"]] == [first]
    assert st.runtime.terminated == []


@pytest.mark.parametrize("command,params,named", [
    ("Call", {"To": "sip:a@b\r\nVia: evil"}, "To"),
    ("Call", {"To": "VMS_CALL", "SIPAccountId": "x\n"}, "SIPAccountId"),
    ("SetSIPConfiguration", {"SIPConfiguration": {"STUNServers": [{"Server": "s\r\n"}]}}, "STUNServer"),
    ("SetSIPConfiguration", {"SIPConfiguration": {"TURNServers": [{"Server": "t", "Username": "u\x00"}]}},
     "TURNServer Username"),
    ("SetSIPConfiguration", {"SIPConfiguration": {"TURNServers": [{"Server": "t", "Password": "p\r"}]}},
     "Password"),
    ("SetSIPConfiguration", {"SIPConfiguration": {"AccessList": ["sip:a@b\x7f"]}}, "AccessList"),
    ("SetDTMFEvent", {"DTMFEvent": {"Name": "Open\r\nDoor"}}, "Name"),
])
def test_control_characters_rejected_by_every_command(st, command, params, named):
    """Every field that can reach a SIP URI or header (and every other string) refuses control
    characters with a fault naming the field, before anything is stored or called."""
    fault = st.fault(command, params)
    assert is_invalid(fault), fault
    assert named in fault.reason and "control characters" in fault.reason, fault.reason
    assert st.runtime.changed == [] and st.runtime.placed == []


def test_static_role_table_names_exactly_the_registered_commands():
    from daemon.commands import REGISTRY, load_all
    from daemon.commands.roles import COMMAND_ROLES
    load_all()
    assert len(COMMAND_ROLES) == 42
    assert {n: c.role for n, c in REGISTRY.items()} == COMMAND_ROLES
