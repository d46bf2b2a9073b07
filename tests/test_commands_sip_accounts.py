"""SIP accounts: the spec's examples, ids, the default-account rules, the peer-to-peer account,
password placeholders, validation and atomicity."""
from __future__ import annotations

import pytest

from tests.test_commands_fakes import is_invalid, is_missing, is_not_found


def accounts(st) -> list[dict]:
    return st.run("GetSIPAccounts")["SIPAccount"]


def account(st, ident: str) -> dict:
    return st.run("GetSIPAccount", {"SIPAccountId": ident})["SIPAccount"]


def default_ids(st) -> list[str]:
    return [a["Id"] for a in accounts(st) if a["IsDefault"]]


# -- factory default and the peer-to-peer account ----------------------------------------------------

def test_fresh_store_shows_the_default_peer_to_peer_account(st):
    got = accounts(st)
    assert [a["Id"] for a in got] == ["peer-to-peer"]
    p2p = got[0]
    assert (p2p["UserId"], p2p["IsDefault"], p2p["Registrar"], p2p["PublicDomain"], p2p["Password"]) == \
        ("peer-to-peer", True, None, None, None)
    assert "_auto" not in p2p
    assert account(st, "peer-to-peer") == p2p


def test_peer_to_peer_example_creates_sip_account_0_which_becomes_default(st):
    assert st.run("SetSIPAccount", {"SIPAccount": {"UserId": "peer-to-peer"}}) == {"SIPAccountId": "sip_account_0"}
    assert default_ids(st) == ["sip_account_0"]
    status = st.run("GetSIPAccountStatus", {"SIPAccountId": "sip_account_0"})["SIPAccountStatus"]
    assert status["SIPAccountId"] == "sip_account_0"
    assert st.runtime.changed == ["sip_accounts"]


def test_removing_every_account_brings_back_peer_to_peer(st):
    st.run("SetSIPAccounts", {"SIPAccount": [{"UserId": "a"}, {"UserId": "b"}]})
    st.run("RemoveSIPAccounts", {"SIPAccountId": [a["Id"] for a in accounts(st)]})
    got = accounts(st)
    assert [(a["Id"], a["IsDefault"]) for a in got] == [("peer-to-peer", True)]
    # and it is again the automatic one: a new account takes over the default
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "c"}})
    assert default_ids(st) == ["sip_account_0"]


def test_removing_the_peer_to_peer_account_alone_re_creates_it(st):
    st.run("RemoveSIPAccount", {"SIPAccountId": "peer-to-peer"})
    assert [a["Id"] for a in accounts(st)] == ["peer-to-peer"]


# -- the spec's examples ----------------------------------------------------------------------------------

def test_registered_account_example(st):
    r = st.run("SetSIPAccount", {"SIPAccount": {"UserId": "6001", "Password": "secure",
                                                "Registrar": "192.168.0.1", "PublicDomain": "example.axis.com"}})
    assert r == {"SIPAccountId": "sip_account_0"}
    a = account(st, "sip_account_0")
    assert (a["UserId"], a["Password"], a["Registrar"], a["PublicDomain"], a["CallerId"], a["IsDefault"]) == \
        ("6001", "********", "192.168.0.1", "example.axis.com", "6001", True)


def test_stream_parameters_beside_the_account(st):
    r = st.run("SetSIPAccount", {"SIPAccount": {"UserId": "6001", "Password": "secure", "Registrar": "192.168.0.1",
                                                "PublicDomain": "example.axis.com"},
                                 "StreamParameters": "resolution=640x480&fps=25"})
    assert r == {"SIPAccountId": "sip_account_0"}
    assert account(st, "sip_account_0")["StreamParameters"] == "resolution=640x480&fps=25"


def test_proxies_nested_as_sip_account_list(st):
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "6001", "Password": "secure", "Registrar": "272.25.25.3",
                                            "SIPAccount": [
                                                {"Server": "192.168.0.1", "Username": "username_proxy1",
                                                 "Password": "password_proxy1"},
                                                {"Server": "10.23.23.2", "Username": "username_proxy2",
                                                 "Password": "password_proxy2"}]}})
    a = account(st, "sip_account_0")
    assert a["SIPProxies"] == [
        {"Server": "192.168.0.1", "Username": "username_proxy1", "Password": "********"},
        {"Server": "10.23.23.2", "Username": "username_proxy2", "Password": "********"}]
    assert "SIPAccount" not in a
    stored = st.store.get_object("sip_account", "sip_account_0")
    assert [p["Password"] for p in stored["SIPProxies"]] == ["password_proxy1", "password_proxy2"]


def test_get_sip_accounts_example_shape_with_username_spelling(st):
    """The simplified GetSIPAccounts example's accounts, sent back with its Username spelling."""
    sent = [
        {"Id": "sip_account_0", "Username": "local_account_ipv4_udp", "Password": None, "Registrar": None,
         "PublicDomain": None, "IsDefault": False, "Transport": "udp", "CallerId": "local_account_ipv4_udp"},
        {"Id": "sip_account_1", "Username": "1234", "Password": "password", "Registrar": "192.168.0.91",
         "PublicDomain": "exampledomain.com", "IsDefault": True, "Transport": "udp", "CallerId": "Entrance Door"},
        {"Id": "sip_account_3", "Username": "12309", "Password": "password3", "Registrar": None,
         "PublicDomain": "[fd12:3456:789a:1::90]", "PrioritizeIPv6": True, "SecondaryRegistrar": "",
         "SecondaryPublicDomain": "", "IsDefault": False, "Transport": "udp", "CallerId": "Entrance Door (Axis)"},
        {"Id": "sip_account_4", "Username": "local_account_ipv6_tcp", "Password": None, "Registrar": None,
         "PublicDomain": None, "PrioritizeIPv6": True, "IsDefault": False, "Transport": "tcp",
         "CallerId": "local_account_ipv6_tcp"},
    ]
    assert st.run("SetSIPAccounts", {"SIPAccount": sent}) == {"SIPAccountId": [a["Id"] for a in sent]}
    got = {a["Id"]: a for a in accounts(st)}
    assert got["sip_account_1"]["IsDefault"] is True
    assert sum(a["IsDefault"] for a in got.values()) == 1
    for s in sent:
        a = got[s["Id"]]
        assert a["UserId"] == s["Username"] and "Username" not in a
        assert a["Password"] == ("********" if s["Password"] else None)
        for key in ("Registrar", "PublicDomain", "Transport", "CallerId"):
            assert a[key] == s[key], key
    assert got["sip_account_4"]["PrioritizeIPv6"] is True


def test_account_id_spelling_of_the_dtmf_pseudocode(st):
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "6001"}})
    assert st.run("GetSIPAccount", {"AccountId": "sip_account_0"})["SIPAccount"]["Id"] == "sip_account_0"


# -- defaults and ids ------------------------------------------------------------------------------------------

def test_defaults_of_a_new_account(st):
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "6001"}})
    a = account(st, "sip_account_0")
    assert a == {
        "Id": "sip_account_0", "Name": "", "Enabled": True, "UserId": "6001", "Password": None, "Registrar": None,
        "PublicDomain": None, "SIPProxies": [], "Attribute": [], "CallerId": "6001", "AuthenticationId": "",
        "SecondaryRegistrar": "", "SecondaryPublicDomain": "", "IsDefault": True, "SIPSEnabled": False,
        "Transport": "udp", "PrioritizeIPv6": False, "StreamParameters": "", "AllowMWI": False,
        "DTMFConfigurationId": "", "MediaEncryption": "None", "EncryptionProtocols": "TLSv12",
        "VerifyServerCertificate": False}


def test_ids_are_generated_or_kept(st):
    assert st.run("SetSIPAccount", {"SIPAccount": {"UserId": "a", "Id": ""}}) == {"SIPAccountId": "sip_account_0"}
    assert st.run("SetSIPAccount", {"SIPAccount": {"UserId": "b", "Id": "door"}}) == {"SIPAccountId": "door"}
    assert st.run("SetSIPAccount", {"SIPAccount": {"UserId": "c"}}) == {"SIPAccountId": "sip_account_1"}
    assert st.run("SetSIPAccounts", {"SIPAccount": [{"UserId": "d"}, {"UserId": "e", "Id": "x"}, {"UserId": "f"}]}) \
        == {"SIPAccountId": ["sip_account_2", "x", "sip_account_3"]}


def test_update_keeps_unspecified_fields(st):
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "6001", "Registrar": "r", "Name": "Front"}})
    assert st.run("SetSIPAccount", {"SIPAccount": {"Id": "sip_account_0", "CallerId": "Door"}}) == \
        {"SIPAccountId": "sip_account_0"}
    a = account(st, "sip_account_0")
    assert (a["UserId"], a["Registrar"], a["Name"], a["CallerId"]) == ("6001", "r", "Front", "Door")
    assert len(accounts(st)) == 2


def test_bare_account_and_plural_wrappings(st):
    assert st.run("SetSIPAccount", {"UserId": "bare"}) == {"SIPAccountId": "sip_account_0"}
    assert st.run("SetSIPAccounts", [{"UserId": "l1"}]) == {"SIPAccountId": ["sip_account_1"]}
    assert st.run("SetSIPAccounts", {"SIPAccounts": {"SIPAccount": [{"UserId": "l2"}]}}) == \
        {"SIPAccountId": ["sip_account_2"]}
    assert st.run("SetSIPAccounts", {"SIPAccount": {"UserId": "one"}}) == {"SIPAccountId": ["sip_account_3"]}


def test_plural_get_accepts_list_string_or_nothing(st):
    st.run("SetSIPAccounts", {"SIPAccount": [{"UserId": "a"}, {"UserId": "b"}]})
    every = [a["Id"] for a in accounts(st)]
    assert every == ["peer-to-peer", "sip_account_0", "sip_account_1"]
    get = lambda p: [a["Id"] for a in st.run("GetSIPAccounts", p)["SIPAccount"]]  # noqa: E731
    assert get({"SIPAccountId": ["sip_account_1", "nope", "sip_account_0"]}) == ["sip_account_1", "sip_account_0"]
    assert get({"SIPAccountId": "sip_account_1"}) == ["sip_account_1"]
    assert get({"SIPAccountId": []}) == every and get({"SIPAccountId": None}) == every
    assert get({"SIPAccountId": ["nope"]}) == []


# -- default account ----------------------------------------------------------------------------------------

def test_is_default_last_set_wins(st):
    st.run("SetSIPAccounts", {"SIPAccount": [{"UserId": "a"}, {"UserId": "b"}]})
    assert default_ids(st) == ["sip_account_0"]
    st.run("SetSIPAccount", {"SIPAccount": {"Id": "sip_account_1", "IsDefault": True}})
    assert default_ids(st) == ["sip_account_1"]
    st.run("SetSIPAccounts", {"SIPAccount": [{"UserId": "c", "IsDefault": True}, {"UserId": "d", "IsDefault": True},
                                             {"UserId": "e"}]})
    assert default_ids(st) == ["sip_account_3"]


def test_new_account_with_is_default_false_leaves_peer_to_peer_default(st):
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "a", "IsDefault": False}})
    assert default_ids(st) == ["peer-to-peer"]


def test_second_new_account_does_not_take_the_default(st):
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "a"}})
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "b"}})
    assert default_ids(st) == ["sip_account_0"]


def test_edited_peer_to_peer_account_keeps_the_default(st):
    p2p = account(st, "peer-to-peer")
    p2p["CallerId"] = "Door"
    st.run("SetSIPAccount", {"SIPAccount": p2p})
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "a"}})
    assert default_ids(st) == ["peer-to-peer"]


def test_removing_the_default_makes_the_first_remaining_default(st):
    st.run("SetSIPAccounts", {"SIPAccount": [{"UserId": "a"}, {"UserId": "b"}, {"UserId": "c", "IsDefault": True}]})
    st.run("RemoveSIPAccounts", {"SIPAccountId": ["peer-to-peer"]})
    st.run("RemoveSIPAccount", {"SIPAccountId": "sip_account_2"})
    assert default_ids(st) == ["sip_account_0"]
    assert [a["Id"] for a in accounts(st)] == ["sip_account_0", "sip_account_1"]


def test_clearing_the_only_default_keeps_one_default(st):
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "a"}})
    st.run("SetSIPAccount", {"SIPAccount": {"Id": "sip_account_0", "IsDefault": False}})
    assert len(default_ids(st)) == 1


def test_remove_ignores_unknown_ids(st):
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "a"}})
    st.runtime.changed.clear()
    assert st.run("RemoveSIPAccount", {"SIPAccountId": "nope"}) == {}
    assert st.run("RemoveSIPAccounts", {"SIPAccountId": ["nope", "nada"]}) == {}
    assert len(accounts(st)) == 2
    assert st.runtime.changed == []
    assert is_missing(st.fault("RemoveSIPAccount", {}))


# -- passwords ---------------------------------------------------------------------------------------------------

def test_password_placeholder_round_trip(st):
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "6001", "Password": "secure",
                                            "SIPProxies": [{"Server": "p1", "Username": "u", "Password": "pp"}]}})
    a = account(st, "sip_account_0")
    assert a["Password"] == "********" and a["SIPProxies"][0]["Password"] == "********"
    a["CallerId"] = "Door"
    st.run("SetSIPAccount", {"SIPAccount": a})                 # Get -> modify -> Set
    stored = st.store.get_object("sip_account", "sip_account_0")
    assert (stored["Password"], stored["SIPProxies"][0]["Password"], stored["CallerId"]) == ("secure", "pp", "Door")
    st.run("SetSIPAccount", {"SIPAccount": {"Id": "sip_account_0", "UserId": "6001"}})   # omitted: kept
    assert st.store.get_object("sip_account", "sip_account_0")["Password"] == "secure"
    st.run("SetSIPAccount", {"SIPAccount": {"Id": "sip_account_0", "Password": "new"}})
    assert st.store.get_object("sip_account", "sip_account_0")["Password"] == "new"
    st.run("SetSIPAccount", {"SIPAccount": {"Id": "sip_account_0", "Password": ""}})    # "" clears
    assert account(st, "sip_account_0")["Password"] is None
    assert st.store.get_object("sip_account", "sip_account_0")["Password"] is None


def test_placeholder_without_a_stored_password_is_invalid(st):
    assert is_invalid(st.fault("SetSIPAccount", {"SIPAccount": {"UserId": "a", "Password": "********"}}))


# -- validation ---------------------------------------------------------------------------------------------------

def test_missing_user_id_on_create(st):
    assert is_missing(st.fault("SetSIPAccount", {"SIPAccount": {"Registrar": "r"}}))
    assert is_missing(st.fault("SetSIPAccount", {}))
    assert is_missing(st.fault("SetSIPAccounts", {}))


@pytest.mark.parametrize("fields", [
    {"UserId": ""}, {"UserId": 5}, {"UserId": ["a"]}, {"Id": "x" * 65}, {"Id": 7}, {"Enabled": "yes"},
    {"IsDefault": 1}, {"Transport": "sctp"}, {"Transport": 5}, {"SIPSEnabled": True, "Transport": "udp"},
    {"MediaEncryption": "SRTPMandatory"}, {"MediaEncryption": "SRTPBestEffort", "Transport": "tcp"},
    {"MediaEncryption": "AES"}, {"DTMFConfigurationId": "nope"}, {"DTMFConfigurationId": "x" * 65},
    {"SIPProxies": [5]}, {"SIPProxies": "p"},
    {"Attribute": [{"Name": "MaxCallDuration", "Value": "long"}]},
    {"Attribute": [{"Name": "RegistrationInterval", "Value": "5"}]},
    {"Attribute": [{"Name": "DisableTCPSwitch", "Value": "maybe"}]},
    {"EncryptionProtocols": "SSLv3"}, {"EncryptionProtocols": ""}, {"Registrar": {"a": 1}},
    {"Password": 1234}, {"CallerId": ["x"]}, {"StreamParameters": 3},
])
def test_invalid_account_fields(st, fields):
    fault = st.fault("SetSIPAccount", {"SIPAccount": {"UserId": "6001", **fields}})
    assert is_invalid(fault), fault
    assert [a["Id"] for a in accounts(st)] == ["peer-to-peer"]


@pytest.mark.parametrize("fields", [{"SIPProxies": [{"Username": "u"}]}, {"Attribute": [{"Value": "1"}]},
                                    {"Attribute": [{"Name": "MaxCallDuration"}]}])
def test_missing_inner_fields(st, fields):
    assert is_missing(st.fault("SetSIPAccount", {"SIPAccount": {"UserId": "6001", **fields}}))


def test_transport_rules(st):
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "a", "Transport": "TCP"}})
    assert account(st, "sip_account_0")["Transport"] == "tcp"
    st.run("SetSIPAccount", {"SIPAccount": {"Id": "sip_account_0", "SIPSEnabled": True}})
    assert account(st, "sip_account_0")["Transport"] == "tls"
    st.run("SetSIPAccount", {"SIPAccount": {"Id": "sip_account_0", "MediaEncryption": "SRTPMandatory"}})
    assert account(st, "sip_account_0")["MediaEncryption"] == "SRTPMandatory"
    assert is_invalid(st.fault("SetSIPAccount", {"SIPAccount": {"Id": "sip_account_0", "SIPSEnabled": False,
                                                                "Transport": "udp"}}))
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "b", "SIPSEnabled": True, "Transport": "tls",
                                            "EncryptionProtocols": "TLSv11, TLSv12"}})
    assert account(st, "sip_account_1")["EncryptionProtocols"] == "TLSv11,TLSv12"


def test_attributes_typed_and_unknown_names_dropped(st):
    info = st.run("GetSupportedSIPAccountAttributes")["AttributeInfo"]
    assert info == [{"Name": "DisableTCPSwitch", "Type": "bool", "Default": "false"},
                    {"Name": "MaxCallDuration", "Type": "int", "Default": "0"},
                    {"Name": "RegistrationInterval", "Type": "int", "Default": "300"}]
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "a", "Attribute": [
        {"Name": "MaxCallDuration", "Value": "120"}, {"Name": "DisableTCPSwitch", "Value": True},
        {"Name": "Unknown", "Value": "x"}, {"Name": "RegistrationInterval", "Value": 600}]}})
    assert account(st, "sip_account_0")["Attribute"] == [
        {"Name": "MaxCallDuration", "Value": "120"}, {"Name": "DisableTCPSwitch", "Value": "true"},
        {"Name": "RegistrationInterval", "Value": "600"}]


def test_supported_media_encryption_modes(st):
    assert st.run("GetSupportedMediaEncryptionModes") == \
        {"MediaEncryption": ["None", "SRTPBestEffort", "SRTPMandatory"]}


def test_plural_set_is_all_or_nothing(st):
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "keep", "CallerId": "Old"}})
    st.runtime.changed.clear()
    before = accounts(st)
    fault = st.fault("SetSIPAccounts", {"SIPAccount": [
        {"Id": "sip_account_0", "CallerId": "New"}, {"UserId": "fresh", "IsDefault": True},
        {"UserId": "bad", "Transport": "carrier-pigeon"}]})
    assert is_invalid(fault)
    assert accounts(st) == before
    assert st.runtime.changed == []


def test_get_unknown_account_is_not_found(st):
    assert is_not_found(st.fault("GetSIPAccount", {"SIPAccountId": "nope"}))
    assert is_missing(st.fault("GetSIPAccount", {}))
    assert is_invalid(st.fault("GetSIPAccount", {"SIPAccountId": "x" * 65}))
    assert is_invalid(st.fault("GetSIPAccount", {"SIPAccountId": ["sip_account_0"]}))


def test_unknown_fields_ignored(st):
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "a", "Certificate": "mycert", "Frobnicate": 1}})
    a = account(st, "sip_account_0")
    assert "Certificate" not in a and "Frobnicate" not in a


def test_lenient_simplified_request(st):
    """format=simple&action=axcall:SetSIPAccount&SIPAccount_UserId=1234&SIPAccount_IsDefault=true..."""
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "1234", "IsDefault": True, "Enabled": "false",
                                            "Attribute": {"0": {"Name": "MaxCallDuration", "Value": "60"}}}},
           lenient=True)
    a = account(st, "sip_account_0")
    assert (a["UserId"], a["IsDefault"], a["Enabled"]) == ("1234", True, False)
    assert a["Attribute"] == [{"Name": "MaxCallDuration", "Value": "60"}]
    assert st.run("GetSIPAccounts", {"SIPAccountId": {"0": "sip_account_0"}}, lenient=True)["SIPAccount"][0]["Id"] \
        == "sip_account_0"


# -- status -----------------------------------------------------------------------------------------------------

def test_account_statuses(st):
    st.run("SetSIPAccounts", {"SIPAccount": [{"UserId": "a"}, {"UserId": "b"}]})
    assert is_not_found(st.fault("GetSIPAccountStatus", {"SIPAccountId": "nope"}))
    got = st.run("GetSIPAccountStatuses", {"SIPAccountId": ["sip_account_1", "nope"]})["SIPAccountStatus"]
    assert [s["SIPAccountId"] for s in got] == ["sip_account_1"]
    every = st.run("GetSIPAccountStatuses", {})["SIPAccountStatus"]
    assert [s["SIPAccountId"] for s in every] == ["peer-to-peer", "sip_account_0", "sip_account_1"]


# -- control characters (issue 9: "UserId": "a\r\nVia: evil" was stored and broke every SIP apply) --

CONTROLS = ["a\r\nVia: evil", "a\nb", "a\rb", "a\x00b", "a\tb", "a\x7fb", "a\x85b", "a\u2028b"]
SIP_FIELDS = [("UserId", "UserId"), ("Username", "UserId"), ("Name", "Name"), ("Registrar", "Registrar"),
              ("PublicDomain", "PublicDomain"), ("Password", "Password"),
              ("AuthenticationId", "AuthenticationId"), ("CallerId", "CallerId"),
              ("SecondaryRegistrar", "SecondaryRegistrar"), ("SecondaryPublicDomain", "SecondaryPublicDomain"),
              ("Id", "Id"), ("DTMFConfigurationId", "DTMFConfigurationId")]


@pytest.mark.parametrize("field,named", SIP_FIELDS)
@pytest.mark.parametrize("text", CONTROLS)
def test_control_characters_rejected_naming_the_field(st, field, named, text):
    given = {field: text} if field in ("UserId", "Username") else {"UserId": "6001", field: text}
    fault = st.fault("SetSIPAccount", {"SIPAccount": given})
    assert is_invalid(fault), fault
    assert named in fault.reason and "control characters" in fault.reason, fault.reason
    assert [a["Id"] for a in accounts(st)] == ["peer-to-peer"]
    assert st.runtime.changed == []


@pytest.mark.parametrize("proxy,named", [({"Server": "p\r\nX: y"}, "Server"),
                                         ({"Server": "p", "Username": "u\n"}, "Username"),
                                         ({"Server": "p", "Password": "pw\r\n"}, "Password")])
def test_control_characters_in_proxies_rejected(st, proxy, named):
    fault = st.fault("SetSIPAccount", {"SIPAccount": {"UserId": "6001", "SIPProxies": [proxy]}})
    assert is_invalid(fault) and named in fault.reason, fault.reason
    assert [a["Id"] for a in accounts(st)] == ["peer-to-peer"]


def test_control_characters_rejected_in_an_update_leave_the_account_unchanged(st):
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "6001", "Registrar": "pbx"}})
    before = accounts(st)
    assert is_invalid(st.fault("SetSIPAccount", {"SIPAccount": {"Id": "sip_account_0", "Registrar": "pbx\r\n"}}))
    assert accounts(st) == before


def test_control_characters_in_the_simplified_format(st):
    fault = st.fault("SetSIPAccount", {"SIPAccount": {"UserId": "a\r\nVia: evil"}}, lenient=True)
    assert is_invalid(fault) and "UserId" in fault.reason
