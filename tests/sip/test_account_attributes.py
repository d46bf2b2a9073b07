"""Account attributes (DisableTCPSwitch, MaxCallDuration, RegistrationInterval): one definition shared
by the commands and the engine config, read from the account's `Attribute` list."""
from __future__ import annotations

import dataclasses

import pytest

from daemon.commands import accounts as command_accounts
from daemon.sip import attributes
from daemon.sip.accounts import bound_transport
from daemon.sip.config import AccountConfig, EngineConfig, account_from_vapix, engine_config_from_vapix
from daemon.sip.engine import SipEngine


def attrs(**values) -> list[dict]:
    return [{"Name": name, "Value": value} for name, value in values.items()]


def test_commands_and_engine_share_one_definition():
    assert command_accounts.ATTRIBUTES is attributes.ATTRIBUTES
    assert command_accounts.attribute_value is attributes.attribute_value


def test_defaults_come_from_the_attribute_table():
    table = attributes.ATTRIBUTES
    for acc in (AccountConfig(id="a"), account_from_vapix({"Id": "a"}, None)):
        assert acc.registration_interval == int(table["RegistrationInterval"][1])
        assert acc.max_call_duration == int(table["MaxCallDuration"][1])
        assert acc.disable_tcp_switch == (table["DisableTCPSwitch"][1] == "true")


def test_values_are_read_from_the_attribute_list():
    acc = account_from_vapix({"Id": "a", "Attribute": attrs(RegistrationInterval="45", MaxCallDuration="120",
                                                          DisableTCPSwitch="true")}, None)
    assert (acc.registration_interval, acc.max_call_duration, acc.disable_tcp_switch) == (45, 120, True)


def test_attribute_list_wins_over_a_top_level_field_which_wins_over_the_default():
    doc = {"Id": "a", "RegistrationInterval": 90, "MaxCallDuration": "7", "DisableTCPSwitch": True,
           "Attribute": attrs(RegistrationInterval="45")}
    acc = account_from_vapix(doc, None)
    assert acc.registration_interval == 45            # Attribute list
    assert acc.max_call_duration == 7                 # top-level field
    assert acc.disable_tcp_switch is True             # top-level JSON boolean


def test_last_entry_of_a_name_wins():
    acc = account_from_vapix({"Id": "a", "Attribute": [{"Name": "MaxCallDuration", "Value": "5"},
                                                       {"Name": "MaxCallDuration", "Value": "9"}]}, None)
    assert acc.max_call_duration == 9


@pytest.mark.parametrize("value,expected", [("abc", 300), ("", 300), ("5", 30), ("999999", 86400), (" 60 ", 60)])
def test_bad_or_out_of_range_values_fall_back_or_are_bounded(value, expected):
    acc = account_from_vapix({"Id": "a", "Attribute": attrs(RegistrationInterval=value)}, None)
    assert acc.registration_interval == expected


@pytest.mark.parametrize("value,expected", [("true", True), ("TRUE", True), ("1", True), ("false", False),
                                            ("maybe", False), (False, False)])
def test_bool_attribute_spellings(value, expected):
    acc = account_from_vapix({"Id": "a", "Attribute": attrs(DisableTCPSwitch=value)}, None)
    assert acc.disable_tcp_switch is expected


def test_malformed_attribute_entries_are_skipped():
    doc = {"Id": "a", "Attribute": ["junk", {"Name": "MaxCallDuration"}, {"Value": "3"},
                                    {"Name": "MaxCallDuration", "Value": None}]}
    assert account_from_vapix(doc, None).max_call_duration == 0
    assert account_from_vapix({"Id": "a", "Attribute": "junk"}, None).max_call_duration == 0


def test_what_the_commands_store_reaches_the_engine_config():
    stored = command_accounts.attributes([{"Name": "RegistrationInterval", "Value": 600},
                                          {"Name": "DisableTCPSwitch", "Value": True},
                                          {"Name": "MaxCallDuration", "Value": "30"}], lenient=False)
    cfg = engine_config_from_vapix({"SIPEnabled": True}, [{"Id": "sip_account_0", "UserId": "u",
                                                           "Attribute": stored}])
    acc = cfg.account("sip_account_0")
    assert (acc.registration_interval, acc.max_call_duration, acc.disable_tcp_switch) == (600, 30, True)


@pytest.mark.parametrize("fields,transport,bound", [
    ({"disable_tcp_switch": True}, "udp", 7),
    ({"disable_tcp_switch": True, "prioritize_ipv6": True}, "udp6", 10),
    ({"disable_tcp_switch": True, "transport": "tcp"}, "tcp", None),
    ({"disable_tcp_switch": True, "sips_enabled": True}, "tls", None),
    ({"disable_tcp_switch": False}, "udp", None),
])
def test_only_a_udp_account_with_disable_tcp_switch_is_bound(fields, transport, bound):
    """...to the UDP transport of its own family (udp6 for an account using IPv6)."""
    transports = {"udp": 7, "tcp": 8, "tls": 9, "udp6": 10}
    assert bound_transport(AccountConfig(id="a", **fields), transports, transport) == bound


def test_changing_disable_tcp_switch_re_creates_the_account_but_max_call_duration_does_not():
    cfg = EngineConfig(sip_enabled=True)
    acc = AccountConfig(id="a")
    key = SipEngine._account_key(cfg, acc)
    assert SipEngine._account_key(cfg, dataclasses.replace(acc, disable_tcp_switch=True)) != key
    assert SipEngine._account_key(cfg, dataclasses.replace(acc, max_call_duration=60)) == key
