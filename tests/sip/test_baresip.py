"""The engine against baresip 1.0, peer to peer on loopback."""
from __future__ import annotations

import dataclasses
import time

import pytest

from daemon.events import CallEventSequencer
from daemon.sip.config import AccountConfig, DtmfSettings, DtmfTrigger
from daemon.sip.types import CallFinished, CallTransition, DtmfMatched

from .conftest import wait_until

pytestmark = pytest.mark.sip

OPEN_DOOR = DtmfTrigger("#1234#", "dtmf_event_0", "OpenDoor")


def p2p(**kw) -> AccountConfig:
    return AccountConfig(id="peer-to-peer", user_id="door", is_default=True, **kw)


def spec_events(station, call_id: str) -> list[tuple[str, str]]:
    """The call's transitions as the event log would record them (topic, reason-or-state)."""
    seq = CallEventSequencer()
    out = []
    for ev in station.events.of_type(CallTransition):
        if ev.call_id != call_id:
            continue
        for e in seq.transition(ev.call_id, ev.reason, ev.status["RemoteURI"], ev.status["DeviceURI"]):
            out.append((e.topic, e.data.get("Reason") or e.data.get("CallState")))
    return out


def test_station_calls_baresip_and_hangs_up(station, baresip):
    station.engine.apply(station.config())
    call_id = station.engine.make_call(None, baresip.aor)
    active = station.wait_state(call_id, "Active")
    assert active["CallStateReason"] == "AcceptedByRemote"
    assert active["Direction"] == "Outgoing" and active["CallType"] == "SIP"
    assert active["RemoteURI"] == baresip.aor
    assert active["DeviceURI"] == station.uri
    assert active["AudioCodec"] in ("PCMU", "PCMA")
    assert len(call_id) <= 64
    station.engine.hangup(call_id)
    done = station.wait_state(call_id, "Terminated")
    assert done["CallStateReason"] == "Terminated" and "StopTime" in done
    baresip.wait_event("CALL_CLOSED")
    assert station.reasons(call_id) == ["Initiated", "AcceptedByRemote", "Terminated"]
    assert spec_events(station, call_id) == [
        ("tnsaxis:Call/StateChange", "Initiated"), ("tnsaxis:Call/State", "Calling"),
        ("tnsaxis:Call/StateChange", "AcceptedByRemote"), ("tnsaxis:Call/State", "Active"),
        ("tnsaxis:Call/StateChange", "Terminated"), ("tnsaxis:Call/State", "Idle")]
    finished = station.events.wait_for(lambda e: isinstance(e, CallFinished) and e.status["CallId"] == call_id)
    assert finished.status == done
    assert station.engine.live_call_ids() == []


def test_remote_hangup_terminates(station, baresip):
    station.engine.apply(station.config())
    call_id = station.engine.make_call("peer-to-peer", baresip.aor)
    station.wait_state(call_id, "Active")
    baresip.wait_event("CALL_ESTABLISHED")
    assert baresip.command("hangup")["ok"]
    done = station.wait_state(call_id, "Terminated")
    assert done["CallStateReason"] == "Terminated"


def test_baresip_calls_station_accepted_by_device(station, baresip):
    station.engine.apply(station.config(allow_incoming_calls=True))
    assert baresip.command("dial", station.uri)["ok"]
    ev = station.events.wait_for(lambda e: isinstance(e, CallTransition) and e.reason == "AcceptedByDevice")
    status = station.engine.call_status(ev.call_id)
    assert status["Direction"] == "Incoming" and status["CallState"] == "Active"
    assert status["RemoteURI"].startswith("sip:bob@127.0.0.1")  # baresip puts its AOR without port in From
    baresip.wait_event("CALL_ESTABLISHED")
    baresip.command("hangup")
    station.wait_state(ev.call_id, "Terminated")
    assert station.reasons(ev.call_id) == ["AcceptedByDevice", "Terminated"]
    assert spec_events(station, ev.call_id) == [
        ("tnsaxis:Call/StateChange", "AcceptedByDevice"), ("tnsaxis:Call/State", "Active"),
        ("tnsaxis:Call/StateChange", "Terminated"), ("tnsaxis:Call/State", "Idle")]


@pytest.mark.parametrize("settings", [
    dict(allow_incoming_calls=False),
    dict(allow_incoming_calls=True, apply_access_list=True, access_list_policy="Block",
         access_list=("sip:bob@127.0.0.1",)),
    dict(allow_incoming_calls=True, apply_access_list=True, access_list_policy="Allow",
         access_list=("sip:alice@127.0.0.1",)),
], ids=["incoming-disabled", "blocklisted", "not-allowlisted"])
def test_incoming_denied(station, baresip, settings):
    station.engine.apply(station.config(**settings))
    mark = baresip.mark()
    baresip.command("dial", station.uri)
    ev = station.events.wait_for(lambda e: isinstance(e, CallTransition) and e.reason == "Denied")
    assert ev.status["CallState"] == "Terminated" and ev.status["Direction"] == "Incoming"
    closed = baresip.wait_event("CALL_CLOSED", since=mark)
    assert "403" in closed.get("param", "") or "603" in closed.get("param", "")
    assert station.engine.call_status(ev.call_id)["CallStateReason"] == "Denied"
    assert spec_events(station, ev.call_id) == [("tnsaxis:Call/StateChange", "Denied")]


def test_incoming_allowlisted(station, baresip):
    station.engine.apply(station.config(allow_incoming_calls=True, apply_access_list=True,
                                        access_list_policy="Allow", access_list=("sip:bob@127.0.0.1",)))
    baresip.command("dial", station.uri)
    station.events.wait_for(lambda e: isinstance(e, CallTransition) and e.reason == "AcceptedByDevice")


def _dtmf_call(station, baresip, dtmf: DtmfSettings | None) -> str:
    station.engine.apply(station.config(accounts=(p2p(dtmf=dtmf),)))
    call_id = station.engine.make_call(None, baresip.aor)
    station.wait_state(call_id, "Active")
    baresip.wait_event("CALL_ESTABLISHED")
    return call_id


def test_rfc2833_sequence_matches_once(station, baresip):
    call_id = _dtmf_call(station, baresip, DtmfSettings(rfc2833=True, sip_info=False, triggers=(OPEN_DOOR,)))
    assert baresip.command("sndcode", "99#1234#")["ok"]
    ev = station.events.wait_for(lambda e: isinstance(e, DtmfMatched), timeout=10.0)
    assert (ev.call_id, ev.event_id, ev.event_name) == (call_id, "dtmf_event_0", "OpenDoor")
    # A sentinel sequence afterwards proves the first one was fully received before counting.
    baresip.command("sndcode", "#1234#")
    wait_until(lambda: len(station.events.of_type(DtmfMatched)) >= 2, 10.0, "second match")
    assert len(station.events.of_type(DtmfMatched)) == 2


@pytest.mark.parametrize("dtmf", [None, DtmfSettings(rfc2833=False, sip_info=True, triggers=(OPEN_DOOR,))],
                         ids=["no-dtmf-configuration", "rfc2833-disabled"])
def test_rfc2833_ignored_when_not_configured(station, baresip, dtmf):
    call_id = _dtmf_call(station, baresip, dtmf)
    baresip.command("sndcode", "#1234#")
    # No positive signal exists for "ignored": give the digits ample time to arrive, then check.
    time.sleep(2.0)
    assert station.events.of_type(DtmfMatched) == []
    assert station.engine.call_status(call_id)["CallState"] == "Active"


def test_codec_priority_selects_codec(station, baresip):
    station.engine.apply(station.config(codecs=(("PCMA", 8000), ("PCMU", 8000))))
    call_id = station.engine.make_call(None, baresip.aor)
    assert station.wait_state(call_id, "Active")["AudioCodec"] == "PCMA"
    station.engine.hangup(call_id)
    station.wait_state(call_id, "Terminated")
    station.engine.apply(station.config(codecs=(("PCMU", 8000), ("PCMA", 8000))))
    call_id = station.engine.make_call(None, baresip.aor)
    assert station.wait_state(call_id, "Active")["AudioCodec"] == "PCMU"
    station.engine.hangup(call_id)
    station.wait_state(call_id, "Terminated")
    # disabled codecs are still supported (listed); an empty list restores the stack's defaults
    station.engine.apply(station.config(codecs=(("PCMA", None),)))
    assert {"Name": "PCMU", "SampleRate": 8000} in station.engine.supported_codecs()
    call_id = station.engine.make_call(None, baresip.aor)
    assert station.wait_state(call_id, "Active")["AudioCodec"] == "PCMA"
    station.engine.hangup(call_id)
    station.wait_state(call_id, "Terminated")
    station.engine.apply(station.config(codecs=()))
    call_id = station.engine.make_call(None, baresip.aor)
    assert station.wait_state(call_id, "Active")["AudioCodec"] == "PCMU"   # default order: PCMU before PCMA


def test_apply_other_account_keeps_call(station, baresip):
    """Adding/changing another account does not disturb a call on this one."""
    station.engine.apply(station.config())
    call_id = station.engine.make_call(None, baresip.aor)
    station.wait_state(call_id, "Active")
    other = AccountConfig(id="other", user_id="gate")
    station.engine.apply(station.config(accounts=(p2p(), other)))
    station.engine.apply(station.config(accounts=(p2p(), dataclasses.replace(other, caller_id="Gate"))))
    station.engine.apply(station.config(accounts=(p2p(dtmf=DtmfSettings(triggers=(OPEN_DOOR,))),)))
    assert station.engine.call_status(call_id)["CallState"] == "Active"
    station.engine.apply(station.config(accounts=(p2p(caller_id="Front door"),)))
    done = station.wait_state(call_id, "Terminated")
    assert done["CallStateReason"] == "Terminated"


def test_station_hangs_up_incoming_call(station, baresip):
    station.engine.apply(station.config(allow_incoming_calls=True))
    baresip.command("dial", station.uri)
    ev = station.events.wait_for(lambda e: isinstance(e, CallTransition) and e.reason == "AcceptedByDevice")
    baresip.wait_event("CALL_ESTABLISHED")
    station.engine.hangup(ev.call_id)
    assert station.wait_state(ev.call_id, "Terminated")["CallStateReason"] == "Terminated"
    baresip.wait_event("CALL_CLOSED")
