"""The IP family rules (daemon/sip/families.py) as a table: listeners per bind mode, and each
account's pjsua IPv6 settings. The calls themselves are tested in test_ipv6.py and
tests/test_ipv6_netns.py."""
from __future__ import annotations

import pjsua2 as pj
import pytest

from daemon.sip import families
from daemon.sip.config import AccountConfig, EngineConfig
from daemon.sip.families import Listeners
from daemon.sip.uris import registrar_uri


@pytest.mark.parametrize("bind,bind6,ipv6,has_ipv6,expected", [
    ("", "", True, True, Listeners("", "")),
    ("0.0.0.0", "", True, True, Listeners("", "")),
    ("::", "", True, True, Listeners("", "")),
    ("[::]", "", True, True, Listeners("", "")),
    ("", "", False, True, Listeners("", None)),            # IPv6 switched off
    ("", "", True, False, Listeners("", None)),            # pjsua2 without IPv6 (PyPI wheel)
    ("127.0.0.1", "", True, True, Listeners("127.0.0.1", None)),
    ("127.0.0.1", "::1", True, True, Listeners("127.0.0.1", "::1")),
    ("::1", "", True, True, Listeners(None, "::1")),
    ("[fd00::2]", "", True, True, Listeners(None, "fd00::2")),
])
def test_listeners(bind, bind6, ipv6, has_ipv6, expected):
    cfg = EngineConfig(bind_address=bind, bind_address6=bind6, ipv6=ipv6)
    assert families.listeners(cfg, has_ipv6) == expected


V4, V6 = AccountConfig(id="a"), AccountConfig(id="b", prioritize_ipv6=True)
OFF, ONLY = pj.PJSUA_IPV6_DISABLED, pj.PJSUA_IPV6_ENABLED_USE_IPV6_ONLY
P4, P6 = pj.PJSUA_IPV6_ENABLED_PREFER_IPV4, pj.PJSUA_IPV6_ENABLED_PREFER_IPV6


@pytest.mark.parametrize("acc,lst,ice,expected", [
    # all interfaces: a preference; offers of the other family are answered in their own
    (V4, Listeners("", ""), False, (4, P4, P4, "", False)),
    (V6, Listeners("", ""), False, (6, P6, P6, "", False)),
    # with ICE pjsua would offer IPv6 whenever the host has it: an IPv4 account keeps to IPv4
    (V4, Listeners("", ""), True, (4, P4, OFF, "", False)),
    (V6, Listeners("", ""), True, (6, P6, P6, "", False)),
    # IPv4 only: PrioritizeIPv6 falls back to IPv4
    (V6, Listeners("127.0.0.1", None), False, (4, OFF, OFF, "127.0.0.1", True)),
    (V4, Listeners("", None), False, (4, OFF, OFF, "", True)),
    # IPv6 only
    (V4, Listeners(None, "::1"), False, (6, ONLY, ONLY, "::1", True)),
    # explicit addresses of both families: one family per account, bound to its address
    (V4, Listeners("127.0.0.1", "::1"), False, (4, P4, OFF, "127.0.0.1", True)),
    (V6, Listeners("127.0.0.1", "::1"), False, (6, P6, ONLY, "::1", True)),
])
def test_account_families(acc, lst, ice, expected):
    f = families.account_families(acc, lst, ice)
    assert (f.family, f.sip_use, f.media_use, f.media_bind, f.strict) == expected


@pytest.mark.parametrize("local,uri", [("127.0.0.1:5060", "127.0.0.1:5060"), ("fd00::2:5060", "[fd00::2]:5060"),
                                       ("::1:5072", "[::1]:5072"), ("[::1]:5072", "[::1]:5072")])
def test_host_port(local, uri):
    assert families.host_port(local) == uri


@pytest.mark.parametrize("server,uri", [
    ("pbx.example.com", "sip:pbx.example.com"),
    ("192.168.0.91:5070", "sip:192.168.0.91:5070"),
    ("[fd12:3456:789a:1::90]", "sip:[fd12:3456:789a:1::90]"),
    ("[fd12::90]:5070", "sip:[fd12::90]:5070"),
    ("fd12:3456:789a:1::90", "sip:[fd12:3456:789a:1::90]"),
    ("sip:[::1]:5070", "sip:[::1]:5070"),
])
def test_registrar_uri_with_ipv6_addresses(server, uri):
    assert registrar_uri(server, "udp") == uri


@pytest.mark.parametrize("host,family", [("192.168.0.90", 4), ("[fd12:3456:789a:1::90]", 6), ("::1", 6),
                                         ("pbx.example.com", None), ("1234", None), ("10.0.0.300", None)])
def test_address_family(host, family):
    assert families.address_family(host) == family

