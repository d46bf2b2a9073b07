"""Get/SetSIPConfiguration and the supported configuration attributes."""
from __future__ import annotations

import pytest

from tests.test_commands_fakes import is_invalid, is_missing

# The spec's GetSIPConfiguration example, field for field.
SPEC_EXAMPLE = {
    "SIPEnabled": False, "TURNServers": [], "STUNServers": [], "ICEEnabled": False,
    "AllowIncomingCalls": False, "TURNEnabled": False, "STUNEnabled": False,
    "ApplyUserAuthentication": False, "AllowedUsers": [], "SIPPort": 5060, "SIPTLSPort": 5061,
    "ApplyAllowedURIs": False, "AllowedURIs": [],
}


def config(st):
    return st.run("GetSIPConfiguration")["SIPConfiguration"]


def test_defaults_match_the_spec_example_plus_newer_fields(st):
    got = config(st)
    for key, value in SPEC_EXAMPLE.items():
        assert got[key] == value, key
    assert (got["RTPStartPort"], got["CallingTimeout"]) == (4000, 60)
    assert (got["ApplyAccessList"], got["AccessList"], got["AccessListPolicy"]) == (False, [], "Allow")
    assert got["Attribute"] == []


def test_enable_sip_example_body_round_trips(st):
    body = dict(SPEC_EXAMPLE, SIPEnabled=True)
    assert st.run("SetSIPConfiguration", {"SIPConfiguration": body}) == {}
    got = config(st)
    assert got["SIPEnabled"] is True
    assert {k: got[k] for k in SPEC_EXAMPLE} == body
    assert st.runtime.changed == ["sip_configuration"]


def test_get_modify_set_pseudocode(st):
    current = config(st)
    current["SIPEnabled"] = True
    st.run("SetSIPConfiguration", {"SIPConfiguration": current})
    assert config(st) == current


def test_keep_current_true_is_the_default(st):
    st.run("SetSIPConfiguration", {"SIPConfiguration": {"SIPEnabled": True, "CallingTimeout": 90}})
    st.run("SetSIPConfiguration", {"SIPConfiguration": {"AllowIncomingCalls": True}})
    got = config(st)
    assert (got["SIPEnabled"], got["CallingTimeout"], got["AllowIncomingCalls"]) == (True, 90, True)
    st.run("SetSIPConfiguration", {"SIPConfiguration": {"ICEEnabled": True}, "KeepCurrent": None})
    assert config(st)["SIPEnabled"] is True


def test_keep_current_inside_the_configuration_is_understood(st):
    st.run("SetSIPConfiguration", {"SIPConfiguration": {"SIPEnabled": True}})
    st.run("SetSIPConfiguration", {"SIPConfiguration": {"ICEEnabled": True, "KeepCurrent": False}})
    got = config(st)
    assert (got["SIPEnabled"], got["ICEEnabled"]) == (False, True)
    assert "KeepCurrent" not in got


def test_keep_current_false_resets_unspecified_fields(st):
    st.run("SetSIPConfiguration", {"SIPConfiguration": {"SIPEnabled": True, "CallingTimeout": 90,
                                                        "SIPPort": 5070}})
    st.run("SetSIPConfiguration", {"SIPConfiguration": {"AllowIncomingCalls": True}, "KeepCurrent": False})
    got = config(st)
    assert got["AllowIncomingCalls"] is True
    assert (got["SIPEnabled"], got["CallingTimeout"], got["SIPPort"]) == (False, 60, 5060)


@pytest.mark.parametrize("timeout, ok", [(1, True), (600, True), (601, False), (0, False), (-5, False)])
def test_calling_timeout_bounds(st, timeout, ok):
    request = {"SIPConfiguration": {"CallingTimeout": timeout}}
    if ok:
        st.run("SetSIPConfiguration", request)
        assert config(st)["CallingTimeout"] == timeout
    else:
        assert is_invalid(st.fault("SetSIPConfiguration", request))
        assert config(st)["CallingTimeout"] == 60


@pytest.mark.parametrize("fields", [
    {"SIPPort": 0}, {"SIPPort": 65536}, {"SIPTLSPort": -1}, {"SIPPort": 5061}, {"SIPTLSPort": 5060},
    {"SIPPort": "5060"}, {"SIPEnabled": "true"}, {"SIPEnabled": 1}, {"SIPPort": 5060.5}, {"SIPPort": True},
    {"AccessListPolicy": "Deny"}, {"AccessList": [1]}, {"AccessList": {"a": 1}}, {"STUNServers": [{}]},
    {"TURNServers": [{"Username": "u"}]}, {"TURNServers": "x"}, {"RTPStartPort": 70000},
    {"Attribute": [{"Value": "x"}]}, {"Attribute": 5},
])
def test_invalid_values_are_refused_and_change_nothing(st, fields):
    before = config(st)
    fault = st.fault("SetSIPConfiguration", {"SIPConfiguration": fields})
    assert is_invalid(fault) or is_missing(fault)
    assert config(st) == before
    assert st.runtime.changed == []


def test_missing_configuration_is_missing_arg(st):
    assert is_missing(st.fault("SetSIPConfiguration", {}))
    assert is_missing(st.fault("SetSIPConfiguration", {"KeepCurrent": True}))
    assert is_invalid(st.fault("SetSIPConfiguration", {"SIPConfiguration": [1]}))
    assert is_invalid(st.fault("SetSIPConfiguration", {"SIPConfiguration": {}, "KeepCurrent": "no"}))


def test_ports_can_swap_in_one_request(st):
    st.run("SetSIPConfiguration", {"SIPConfiguration": {"SIPPort": 5061, "SIPTLSPort": 5060}})
    got = config(st)
    assert (got["SIPPort"], got["SIPTLSPort"]) == (5061, 5060)


def test_access_list_as_list_or_string(st):
    st.run("SetSIPConfiguration", {"SIPConfiguration": {"ApplyAccessList": True, "AccessListPolicy": "Block",
                                                        "AccessList": ["sip:a@x", "sip:b@y", "sip:a@x"]}})
    got = config(st)
    assert (got["ApplyAccessList"], got["AccessList"], got["AccessListPolicy"]) == \
        (True, ["sip:a@x", "sip:b@y"], "Block")
    assert (got["ApplyAllowedURIs"], got["AllowedURIs"]) == (True, ["sip:a@x", "sip:b@y"])
    st.run("SetSIPConfiguration", {"SIPConfiguration": {"AccessList": "sip:c@z, sip:d@w  sip:e@v",
                                                        "AccessListPolicy": None}})
    got = config(st)
    assert got["AccessList"] == ["sip:c@z", "sip:d@w", "sip:e@v"]
    assert got["AccessListPolicy"] == "Allow"


def test_deprecated_allowed_uris_map_onto_access_list(st):
    st.run("SetSIPConfiguration", {"SIPConfiguration": {"ApplyAllowedURIs": True, "AllowedURIs": ["sip:old@x"]}})
    got = config(st)
    assert (got["ApplyAccessList"], got["AccessList"]) == (True, ["sip:old@x"])
    # both spellings: the current names win
    st.run("SetSIPConfiguration", {"SIPConfiguration": {"ApplyAllowedURIs": False, "ApplyAccessList": True,
                                                        "AllowedURIs": ["sip:old@x"], "AccessList": ["sip:new@x"]}})
    got = config(st)
    assert (got["ApplyAccessList"], got["AccessList"]) == (True, ["sip:new@x"])


def test_turn_password_is_hidden_and_kept_on_round_trip(st):
    st.run("SetSIPConfiguration", {"SIPConfiguration": {
        "TURNEnabled": True, "TURNServers": [{"Server": "turn.example", "Username": "u", "Password": "s3cret"}],
        "STUNServers": [{"Server": "stun.example"}]}})
    got = config(st)
    assert got["TURNServers"] == [{"Server": "turn.example", "Username": "u", "Password": "********"}]
    assert got["STUNServers"] == [{"Server": "stun.example"}]
    st.run("SetSIPConfiguration", {"SIPConfiguration": got})
    stored = st.store.get_setting("sip_configuration")
    assert stored["TURNServers"][0]["Password"] == "s3cret"
    st.run("SetSIPConfiguration", {"SIPConfiguration": {"TURNServers": [{"Server": "turn.example", "Username": "u",
                                                                         "Password": ""}]}})
    assert config(st)["TURNServers"][0]["Password"] is None
    assert is_invalid(st.fault("SetSIPConfiguration", {"SIPConfiguration": {"TURNServers": [
        {"Server": "other", "Username": "u", "Password": "********"}]}}))


def test_attributes_are_ignored_because_none_is_supported(st):
    assert st.run("GetSupportedSIPConfigurationAttributes") == {"AttributeInfo": []}
    st.run("SetSIPConfiguration", {"SIPConfiguration": {"Attribute": [{"Name": "Whatever", "Value": "1"}]}})
    assert config(st)["Attribute"] == []


def test_unknown_fields_are_ignored(st):
    st.run("SetSIPConfiguration", {"SIPConfiguration": {"Bogus": 1, "SIPEnabled": True}, "Extra": [1]})
    got = config(st)
    assert "Bogus" not in got and got["SIPEnabled"] is True


def test_lenient_strings_are_coerced(st):
    st.run("SetSIPConfiguration", {"SIPConfiguration": {"SIPPort": "5080", "CallingTimeout": "600",
                                                        "SIPEnabled": True, "ICEEnabled": "true"},
                                   "KeepCurrent": "true"}, lenient=True)
    got = config(st)
    assert (got["SIPPort"], got["CallingTimeout"], got["SIPEnabled"], got["ICEEnabled"]) == (5080, 600, True, True)
    assert is_invalid(st.fault("SetSIPConfiguration", {"SIPConfiguration": {"SIPPort": "50x"}}, lenient=True))
    assert is_invalid(st.fault("SetSIPConfiguration", {"SIPConfiguration": {"SIPPort": "9" * 40}}, lenient=True))
