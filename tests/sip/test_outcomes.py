"""Call outcomes against a second pjsua2 process (tests/sip_agent.py), SIP INFO DTMF, call limits."""
from __future__ import annotations

import time

import pytest

from daemon.sip.config import AccountConfig, DtmfSettings, DtmfTrigger, account_from_vapix
from daemon.sip.types import CallFinished, CallTransition, DtmfBlocked, DtmfMatched, EngineError

from .conftest import free_port, wait_until

pytestmark = pytest.mark.sip

OPEN_DOOR = DtmfTrigger("#1234#", "dtmf_event_0", "OpenDoor")


def finished(station, call_id: str, timeout: float = 10.0) -> CallFinished:
    return station.events.wait_for(lambda e: isinstance(e, CallFinished) and e.status["CallId"] == call_id,
                                   timeout=timeout, what=f"end of {call_id}")


@pytest.mark.parametrize("code,reason", [(486, "Busy"), (600, "Busy"), (603, "Failed"), (404, "Failed")])
def test_final_response_maps_to_reason(station, agent_factory, code, reason):
    agent = agent_factory("--answer", str(code))
    station.engine.apply(station.config())
    call_id = station.engine.make_call(None, agent.uri())
    end = finished(station, call_id)
    assert end.status["CallStateReason"] == reason and end.sip_code == code
    assert station.reasons(call_id) == ["Initiated", reason]


@pytest.mark.parametrize("mode", ["180", "none"], ids=["ringing", "silent"])
def test_never_answered_ends_with_no_answer_after_calling_timeout(station, agent_factory, mode):
    agent = agent_factory("--answer", mode)
    station.engine.apply(station.config(calling_timeout=2.0))
    started = time.monotonic()
    call_id = station.engine.make_call(None, agent.uri())
    end = finished(station, call_id, timeout=10.0)
    assert end.status["CallStateReason"] == "NoAnswer"
    assert time.monotonic() - started >= 2.0       # not before the CallingTimeout
    agent.wait_event("state", pred=lambda e: e["state"] == "DISCONNECTED", timeout=10.0)


def test_unreachable_udp_peer_is_no_answer_and_leaves_engine_usable(station, agent_factory):
    station.engine.apply(station.config(calling_timeout=1.0))
    dead = free_port()
    call_id = station.engine.make_call(None, f"sip:nobody@127.0.0.1:{dead}")
    end = finished(station, call_id)
    assert end.status["CallStateReason"] == "NoAnswer"
    assert station.engine.live_call_ids() == []
    agent = agent_factory("--answer", "200")
    call2 = station.engine.make_call(None, agent.uri())
    station.wait_state(call2, "Active")
    # stop() while the first INVITE transaction is still pending must be clean (fixture teardown)


def test_unreachable_tcp_peer_fails_fast(station):
    station.engine.apply(station.config(calling_timeout=30.0))
    dead = free_port()
    call_id = station.engine.make_call(None, f"sip:nobody@127.0.0.1:{dead};transport=tcp")
    end = finished(station, call_id, timeout=10.0)
    assert end.status["CallStateReason"] == "Failed" and end.sip_code >= 500


def test_terminate_while_calling(station, agent_factory):
    agent = agent_factory("--answer", "180")
    station.engine.apply(station.config())
    call_id = station.engine.make_call(None, agent.uri())
    agent.wait_event("incoming")
    station.engine.hangup(call_id)
    assert finished(station, call_id).status["CallStateReason"] == "Terminated"
    agent.wait_event("state", pred=lambda e: e["state"] == "DISCONNECTED")
    with pytest.raises(EngineError):
        station.engine.hangup(call_id)


def test_bad_requests_raise_engine_error(station):
    station.engine.apply(station.config())
    for to in ("VMS_CALL", "http://x", "sip:"):
        with pytest.raises(EngineError):
            station.engine.make_call(None, to)
    with pytest.raises(EngineError):
        station.engine.make_call("no-such-account", "sip:a@127.0.0.1")
    station.engine.apply(station.config(sip_enabled=False))
    with pytest.raises(EngineError, match="disabled"):
        station.engine.make_call(None, "sip:a@127.0.0.1")


def _answered_call(station, agent, dtmf: DtmfSettings | None) -> str:
    station.engine.apply(station.config(accounts=(
        AccountConfig(id="peer-to-peer", user_id="door", is_default=True, dtmf=dtmf),)))
    call_id = station.engine.make_call(None, agent.uri())
    station.wait_state(call_id, "Active")
    agent.wait_event("state", pred=lambda e: e["state"] == "CONFIRMED")
    return call_id


@pytest.mark.parametrize("method", ["SIP_INFO", "RFC2833"])
def test_dtmf_from_agent_matches_once(station, agent_factory, method):
    agent = agent_factory("--answer", "200")
    call_id = _answered_call(station, agent, DtmfSettings(rfc2833=method == "RFC2833",
                                                          sip_info=method == "SIP_INFO", triggers=(OPEN_DOOR,)))
    agent.send(cmd="dtmf", digits="99#1234#", method=method)
    ev = station.events.wait_for(lambda e: isinstance(e, DtmfMatched), timeout=10.0)
    assert (ev.call_id, ev.event_id, ev.event_name, ev.account_id) == (call_id, "dtmf_event_0", "OpenDoor",
                                                                       "peer-to-peer")
    agent.send(cmd="dtmf", digits="#1234#", method=method)      # sentinel: the first burst is complete
    wait_until(lambda: len(station.events.of_type(DtmfMatched)) == 2, 10.0, "second match")
    assert len(station.events.of_type(DtmfMatched)) == 2


def test_sip_info_ignored_when_disabled(station, agent_factory):
    agent = agent_factory("--answer", "200")
    _answered_call(station, agent, DtmfSettings(rfc2833=True, sip_info=False, triggers=(OPEN_DOOR,)))
    agent.send(cmd="dtmf", digits="#1234#", method="SIP_INFO")
    agent.send(cmd="dtmf", digits="*", method="RFC2833")    # lone '*' matches nothing, counts nothing
    agent.send(cmd="dtmf", digits="#1234#", method="RFC2833")
    matches = wait_until(lambda: station.events.of_type(DtmfMatched), 10.0, "the RFC 2833 match")
    time.sleep(0.5)
    assert len(station.events.of_type(DtmfMatched)) == len(matches) == 1


def test_wrong_sequences_block_dtmf_on_the_call(station, agent_factory):
    agent = agent_factory("--answer", "200")
    call_id = _answered_call(station, agent, DtmfSettings(triggers=(OPEN_DOOR,)))
    agent.send(cmd="dtmf", digits="#0000#0001#0002#0003#0004#", method="SIP_INFO")
    blocked = station.events.wait_for(lambda e: isinstance(e, DtmfBlocked), timeout=10.0)
    assert (blocked.call_id, blocked.wrong_sequences) == (call_id, 5)
    agent.send(cmd="dtmf", digits="#1234#", method="SIP_INFO")
    time.sleep(1.0)
    assert station.events.of_type(DtmfMatched) == []


def test_call_limit(station, agent_factory):
    agent = agent_factory("--answer", "200")
    station.engine.apply(station.config(max_calls=2, allow_incoming_calls=True))
    calls = [station.engine.make_call(None, agent.uri()) for _ in range(2)]
    for c in calls:
        station.wait_state(c, "Active")
    with pytest.raises(EngineError, match="too many calls"):
        station.engine.make_call(None, agent.uri())
    # an incoming call beyond the limit is refused and recorded as Denied
    agent.send(cmd="call", to=station.uri)
    ev = station.events.wait_for(lambda e: isinstance(e, CallTransition) and e.reason == "Denied")
    assert ev.status["Direction"] == "Incoming"
    agent.wait_event("state", pred=lambda e: e["state"] == "DISCONNECTED" and e["code"] == 486)
    for c in calls:
        station.engine.hangup(c)
        station.wait_state(c, "Terminated")
    assert station.engine.live_call_ids() == []


def test_max_call_duration(station, agent_factory):
    agent = agent_factory("--answer", "200")
    # the form the commands store: the account's Attribute list
    doc = {"Id": "peer-to-peer", "UserId": "door", "IsDefault": True,
           "Attribute": [{"Name": "MaxCallDuration", "Value": "1"}]}
    station.engine.apply(station.config(accounts=(account_from_vapix(doc, None),)))
    call_id = station.engine.make_call(None, agent.uri())
    station.wait_state(call_id, "Active")
    assert finished(station, call_id, timeout=10.0).status["CallStateReason"] == "Terminated"
    agent.wait_event("state", pred=lambda e: e["state"] == "DISCONNECTED", timeout=5.0)   # the station hung up


def test_history_is_bounded_and_queryable(station, agent_factory):
    agent = agent_factory("--answer", "486")
    station.engine.apply(station.config())
    ids = [station.engine.make_call(None, agent.uri()) for _ in range(3)]
    for c in ids:
        finished(station, c)
    statuses = station.engine.call_statuses()
    assert [s["CallId"] for s in statuses][-3:] == ids
    assert all(station.engine.call_status(c)["CallStateReason"] == "Busy" for c in ids)
    assert station.engine.call_status("unknown") is None


def test_peer_to_peer_uri_without_user(station, agent_factory):
    agent = agent_factory("--answer", "200")
    station.engine.apply(station.config())
    call_id = station.engine.make_call(None, f"sip:127.0.0.1:{agent.port}")
    assert station.wait_state(call_id, "Active")["RemoteURI"] == f"sip:127.0.0.1:{agent.port}"


def test_ipv6_destination_is_refused_cleanly_by_an_ipv4_only_station(station):
    """Bound to 127.0.0.1 without bind_address6 the station has no IPv6 listener: a clean error."""
    station.engine.apply(station.config())
    with pytest.raises(EngineError, match="no IPv6 SIP listener"):
        station.engine.make_call(None, f"sip:door@[::1]:{free_port()}")
    assert station.engine.live_call_ids() == []
