"""Throw arbitrary JSON-shaped requests at every registered command: the only exception that may
come out is a VapixFault (anything else would reach the client as an internal error)."""
from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as s

from daemon.commands import REGISTRY, Context, invoke, load_all
from daemon.faults import VapixFault
from daemon.store import Store
from tests.test_commands_fakes import FakeRuntime

load_all()
COMMANDS = sorted(REGISTRY)

# Field names the handlers look at, so the fuzzer reaches past the first "missing" check.
KEYS = ["SIPAccount", "SIPAccounts", "SIPAccountId", "AccountId", "Id", "UserId", "Username", "Password",
        "Registrar", "PublicDomain", "SIPProxies", "Server", "Attribute", "Name", "Value", "IsDefault",
        "Transport", "SIPSEnabled", "MediaEncryption", "EncryptionProtocols", "DTMFConfigurationId",
        "CallerId", "StreamParameters", "SIPConfiguration", "KeepCurrent", "SIPPort", "SIPTLSPort",
        "CallingTimeout", "AccessList", "AllowedURIs", "AccessListPolicy", "TURNServers", "STUNServers",
        "AllowedUsers", "DTMFEvent", "DTMEvent", "DTMFEvents", "DTMFEventId", "Enabled", "DTMFTrigger",
        "DTMTrigger", "DTMFTriggers", "DTMFTriggerId", "DTMFSequence", "DTMFConfiguration",
        "DTMFConfigurations", "RFC2833", "RFC2976", "VMSCallConfiguration", "Timeout",
        "AudioFromNetworkToDeviceStreams", "AudioCodec", "AudioCodecs", "SampleRate", "Options",
        "CallId", "To", "0", "1"]

scalars = (s.none() | s.booleans() | s.integers() | s.floats() | s.text(max_size=70)
           | s.sampled_from(["", "true", "false", "123", "-1", "600", "601", "udp", "TLS", "None",
                             "SRTPMandatory", "********", "#1234#", "1", "dtmf_event_0", "dtmf_trigger_0",
                             "dtmf_configuration_0", "sip_account_0", "peer-to-peer", "PCMU", "VMS_CALL",
                             "Out-0", "Allow", "Block", "x" * 65]))
keys = s.sampled_from(KEYS) | s.text(max_size=8)
json_values = s.recursive(scalars, lambda children: s.lists(children, max_size=4)
                          | s.dictionaries(keys, children, max_size=6), max_leaves=25)
# Near-valid requests: known field names with plausible values, bare or under a wrapper key, so
# that Set commands get past validation and change the store the other commands then read.
plausible = (s.booleans() | s.integers(-2, 70000) | s.sampled_from(
    ["", "a", "6001", "udp", "tcp", "tls", "TLSv12", "#1234#", "1", "2", "*", "********", "Allow",
     "PCMU", "pcma", "G722", "sip:1@127.0.0.1", "dtmf_event_0", "dtmf_event_1", "dtmf_trigger_0",
     "dtmf_trigger_1", "dtmf_configuration_0", "sip_account_0", "sip_account_1", "peer-to-peer",
     "MaxCallDuration", "RegistrationInterval", "Out-0", "VMS_CALL"]))
field_values = plausible | s.lists(plausible, max_size=3) | s.none()
objects = s.dictionaries(s.sampled_from(KEYS), field_values | s.lists(
    s.dictionaries(s.sampled_from(["Name", "Value", "Server", "Username", "Password", "SampleRate"]),
                   plausible, max_size=3), max_size=2), max_size=8)
wrappers = s.sampled_from(["SIPAccount", "SIPAccounts", "DTMFEvent", "DTMEvent", "DTMFEvents", "DTMFTrigger",
                           "DTMTrigger", "DTMFTriggers", "DTMFConfiguration", "DTMFConfigurations",
                           "SIPConfiguration", "VMSCallConfiguration", "AudioCodec", "AudioCodecs"])
near_valid = (objects | s.lists(objects, max_size=3)
              | s.builds(lambda k, o: {k: o}, wrappers, objects)
              | s.builds(lambda k, o: {k: o}, wrappers, s.lists(objects, max_size=3)))
params = s.dictionaries(keys, json_values, max_size=6) | json_values | near_valid

ACCOUNT = {"UserId": "6001", "Password": "secret", "Registrar": "127.0.0.1", "IsDefault": True,
           "DTMFConfigurationId": "dtmf_configuration_0", "Transport": "tls", "MediaEncryption": "SRTPBestEffort",
           "SIPProxies": [{"Server": "127.0.0.2", "Username": "u", "Password": "********"}],
           "Attribute": [{"Name": "MaxCallDuration", "Value": "30"}], "Id": "sip_account_1"}
# One request per command that is valid in some store state; the fuzzer mutates one spot of it.
TEMPLATES = {
    "SetSIPAccount": {"SIPAccount": ACCOUNT, "StreamParameters": "fps=5"},
    "SetSIPAccounts": {"SIPAccount": [ACCOUNT, {"UserId": "7", "IsDefault": True}]},
    "SetSIPConfiguration": {"SIPConfiguration": {
        "SIPEnabled": True, "SIPPort": 5070, "CallingTimeout": 600, "AccessList": "sip:a@b sip:c@d",
        "TURNServers": [{"Server": "t", "Username": "u", "Password": "********"}],
        "AccessListPolicy": None, "STUNServers": [{"Server": "s"}]}, "KeepCurrent": False},
    "SetDTMFEvent": {"DTMFEvent": {"Name": "Open", "Enabled": True}},
    "SetDTMFEvents": [{"Name": "A"}, {"Name": "B", "Id": "dtmf_event_1"}],
    "SetDTMFTrigger": {"DTMFTrigger": {"DTMFSequence": "#1234#", "DTMFEventId": "dtmf_event_0"}},
    "SetDTMFTriggers": {"DTMFTrigger": [{"DTMFSequence": "1", "DTMFEventId": "dtmf_event_0"},
                                        {"DTMFTriggerId": "dtmf_trigger_0", "DTMFEventId": "dtmf_event_1"}]},
    "SetDTMFConfiguration": {"DTMFConfiguration": {"Name": "Full", "DTMFTriggerId": ["dtmf_trigger_0"]}},
    "SetDTMFConfigurations": {"DTMFConfiguration": [{"Name": "L", "DTMFSequence": "dtmf_trigger_1"}]},
    "SetVMSCallConfiguration": {"VMSCallConfiguration": {"Enabled": False, "Timeout": 3600}},
    "SetAudioCodecs": {"AudioCodec": [{"Name": "pcmu"}, {"Name": "G722", "SampleRate": 16000}]},
    "Call": {"To": "VMS_CALL", "SIPAccountId": "sip_account_0"},
    "TerminateCall": {"CallId": "Out-0"},
    "GetCallStatus": {"CallId": "Out-0"},
}
for _name in COMMANDS:
    for _field, _value in (("SIPAccount", "sip_account_0"), ("DTMFEvent", "dtmf_event_0"),
                           ("DTMFTrigger", "dtmf_trigger_0"), ("DTMFConfiguration", "dtmf_configuration_0")):
        if _name.startswith(("Get", "Remove")) and _field in _name and "Status" not in _name:
            TEMPLATES.setdefault(_name, {f"{_field}Id": [_value] if _name.endswith("s") else _value})


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, prefix + (index,))


def mutate(template, pick: int, replacement, delete: bool):
    import copy
    doc = copy.deepcopy(template)
    paths = [p for p in _paths(doc) if p]
    if not paths or pick < 0:
        return doc
    path = paths[pick % len(paths)]
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return doc


_dir = tempfile.TemporaryDirectory()
_store = Store(Path(_dir.name) / "fuzz.sqlite3")   # shared: state accumulates across examples
_runtime = FakeRuntime()


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=s.sampled_from(COMMANDS), data=s.data(), lenient=s.booleans())
def test_any_json_request_gives_a_result_or_a_vapix_fault(name, data, lenient):
    if name in TEMPLATES and data.draw(s.booleans()):
        body = mutate(TEMPLATES[name], data.draw(s.integers(-3, 40)), data.draw(json_values), data.draw(s.booleans()))
    else:
        body = data.draw(params)
    ctx = Context(store=_store, runtime=_runtime, lenient=lenient)
    try:
        result = asyncio.run(invoke(REGISTRY[name], ctx, body))
    except VapixFault:
        return
    assert isinstance(result, dict)


def test_store_stays_consistent_after_fuzzing():
    """Whatever was accepted above left the references intact."""
    events = {e["Id"] for e in _store.list_objects("dtmf_event")}
    triggers = _store.list_objects("dtmf_trigger")
    assert all(t["DTMFEventId"] in events for t in triggers)
    sequences = [t["DTMFSequence"] for t in triggers]
    assert len(sequences) == len(set(sequences))
    trigger_ids = {t["Id"] for t in triggers}
    configurations = _store.list_objects("dtmf_configuration")
    assert all(set(c["DTMFTriggerId"]) <= trigger_ids for c in configurations)
    conf_ids = {c["Id"] for c in configurations}
    accounts = _store.list_objects("sip_account")
    assert all(a["DTMFConfigurationId"] in conf_ids | {""} for a in accounts)
    if accounts:
        assert sum(a["IsDefault"] for a in accounts) == 1
