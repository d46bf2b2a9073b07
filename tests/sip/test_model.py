"""Pure parts of the SIP package: call reasons, history persistence, URIs/access list, config building."""
from __future__ import annotations

import pytest

from daemon.sip.calls import (
    CallHistory,
    CallRecord,
    call_row,
    end_reason,
    history_from_json,
    history_to_json,
    new_call_id,
    status_from_row,
)
from daemon.sip.config import DtmfTrigger, engine_config_from_vapix
from daemon.sip.uris import access_allows, access_entry_matches, bare_uri, parse_uri, with_transport
from daemon.store import Store


@pytest.mark.parametrize("answered,local,code,reason", [
    (True, None, 200, "Terminated"),
    (False, None, 486, "Busy"),
    (False, None, 600, "Busy"),
    (False, None, 603, "Failed"),
    (False, None, 404, "Failed"),
    (False, None, 408, "Failed"),
    (False, None, 503, "Failed"),
    (False, "NoAnswer", 487, "NoAnswer"),
    (False, "Denied", 603, "Denied"),
    (True, "Terminated", 200, "Terminated"),
])
def test_end_reason(answered, local, code, reason):
    assert end_reason(answered, local, code) == reason


def test_call_id_shape():
    cid = new_call_id("Outgoing", 123456789)
    assert cid.startswith("Out-123456789-") and len(cid) <= 64
    assert new_call_id("Incoming", 1).startswith("In-1-")
    assert new_call_id("Outgoing", 1) != new_call_id("Outgoing", 1)


def test_status_has_every_field():
    rec = CallRecord("c1", "Outgoing", "acc", "sip:door@h", "sip:bob@h", start_time=0.0)
    st = rec.status()
    assert set(st) == {"CallId", "Source", "CallState", "CallStateReason", "StartTime", "Direction",
                       "DeviceURI", "RemoteURI", "CallType", "SIPAccountId"}
    assert st["StartTime"] == "1970-01-01T00:00:00.000Z"
    rec.stop_time, rec.audio_codec = 1.5, "PCMU"
    assert rec.status()["StopTime"] == "1970-01-01T00:00:01.500Z" and rec.status()["AudioCodec"] == "PCMU"


def test_history_is_bounded_and_round_trips(tmp_path):
    h = CallHistory(size=3)
    for i in range(5):
        h.add(CallRecord(f"c{i}", "Outgoing", "a", "d", "r", start_time=100.0 + i).status())
    assert [s["CallId"] for s in h.all()] == ["c2", "c3", "c4"]
    again = CallHistory(size=3)
    again.load(history_from_json(history_to_json(h.all())))
    assert again.all() == h.all()
    # into and out of the store's calls table
    store = Store.open(tmp_path)
    with store.transaction() as tx:
        for st in h.all():
            tx.execute("INSERT OR REPLACE INTO calls (call_id, started, doc) VALUES (?, ?, ?)", call_row(st))
    rows = store.conn.execute("SELECT started, doc FROM calls ORDER BY started").fetchall()
    assert [r[0] for r in rows] == [102.0, 103.0, 104.0]
    assert [status_from_row(r[1]) for r in rows] == h.all()
    store.close()


def test_history_from_json_rejects_garbage():
    with pytest.raises(ValueError):
        history_from_json('{"a": 1}')
    assert history_from_json('[{"CallId": "x"}, 3, {"no": 1}]') == [{"CallId": "x"}]


def test_uri_parsing():
    assert bare_uri('"Bob" <sip:bob@127.0.0.1:5070>;tag=abc') == "sip:bob@127.0.0.1:5070"
    u = parse_uri("sip:bob@[::1]:5070;transport=tcp")
    assert (u.user, u.host, u.port) == ("bob", "[::1]", 5070)
    assert parse_uri("sip:10.0.0.1").user == ""
    assert parse_uri("mailto:x") is None


@pytest.mark.parametrize("entry,caller,expected", [
    ("sip:bob@127.0.0.1", "sip:bob@127.0.0.1:5070", True),
    ("sip:bob@127.0.0.1:5070", "sip:bob@127.0.0.1:5071", False),
    ("sip:127.0.0.1", "sip:anyone@127.0.0.1", True),
    ("sip:alice@127.0.0.1", "sip:bob@127.0.0.1", False),
    ("bob@example.com", "sips:bob@EXAMPLE.com", True),
])
def test_access_entry(entry, caller, expected):
    assert access_entry_matches(entry, caller) is expected


def test_access_policy():
    entries = ("sip:bob@h",)
    assert access_allows("sip:bob@h", entries, "Allow", True)
    assert not access_allows("sip:eve@h", entries, "Allow", True)
    assert not access_allows("sip:bob@h", entries, "Block", True)
    assert access_allows("sip:eve@h", entries, "Block", True)
    assert access_allows("sip:eve@h", entries, "Allow", False)


def test_with_transport():
    assert with_transport("sip:a@h", "udp") == "sip:a@h"
    assert with_transport("sip:a@h", "tcp") == "sip:a@h;transport=tcp"
    assert with_transport("sip:a@h;transport=udp", "tcp") == "sip:a@h;transport=udp"
    assert with_transport("sips:a@h", "tls") == "sips:a@h"


def test_engine_config_from_vapix_documents():
    cfg = engine_config_from_vapix(
        {"SIPEnabled": True, "SIPPort": 5062, "AllowIncomingCalls": "true", "CallingTimeout": 900,
         "ApplyAccessList": True, "AccessList": "sip:a@h, sip:b@h", "AccessListPolicy": "Block"},
        [{"Id": "sip_account_0", "UserId": "6001", "Password": "pw", "Registrar": "192.168.0.1",
          "SIPAccount": [{"Server": "10.0.0.1", "Username": "u", "Password": "p"}],
          "DTMFConfigurationId": "conf0", "IsDefault": True},
         {"Id": "p2p", "Username": "door", "Enabled": False}],
        dtmf_configurations=[{"Id": "conf0", "Name": "c", "DTMFTriggerId": ["t0", "t9"], "RFC2976": False}],
        dtmf_triggers=[{"Id": "t0", "DTMFSequence": "#1234#", "DTMFEventId": "e0"}],
        dtmf_events=[{"Id": "e0", "Name": "OpenDoor"}],
        codecs=[{"Name": "PCMA", "SampleRate": 8000}, {"Name": "G722"}],
        bind_address="127.0.0.1")
    assert cfg.sip_enabled and cfg.sip_port == 5062 and cfg.allow_incoming_calls
    assert cfg.calling_timeout == 600.0
    assert cfg.access_list == ("sip:a@h", "sip:b@h") and cfg.access_list_policy == "Block"
    assert cfg.codecs == (("PCMA", 8000), ("G722", None))
    acc = cfg.account("sip_account_0")
    assert acc.registers and acc.proxies[0].server == "10.0.0.1"
    assert acc.dtmf.triggers == (DtmfTrigger("#1234#", "e0", "OpenDoor"),)
    assert acc.dtmf.rfc2833 and not acc.dtmf.sip_info
    assert cfg.account("p2p").user_id == "door" and not cfg.account("p2p").enabled
    assert cfg.default_account().id == "sip_account_0"
    assert cfg.bind_address == "127.0.0.1"
