"""Engine lifecycle and configuration changes: start/stop, heartbeat, timeouts, rebinding, statuses."""
from __future__ import annotations

import logging
import socket
import threading

import pytest

from daemon.sip.config import AccountConfig
from daemon.sip.engine import SipEngine
from daemon.sip.types import CallFinished, CallTransition, EngineError, EngineNotRunning, EngineTimeout

from .conftest import EventCollector, free_port, wait_until

pytestmark = pytest.mark.sip


def tcp_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_requests_before_start_and_after_stop_are_refused():
    engine = SipEngine(EventCollector(), logging.getLogger("test.sip"))
    with pytest.raises(EngineNotRunning):
        engine.supported_codecs()
    engine.start()
    assert engine.supported_codecs()
    engine.stop()
    with pytest.raises(EngineNotRunning):
        engine.make_call(None, "sip:a@127.0.0.1")
    engine.stop()     # idempotent
    with pytest.raises(EngineError, match="cannot be restarted"):
        engine.start()


def test_supported_codecs_come_from_the_stack(station):
    codecs = station.engine.supported_codecs()
    names = {c["Name"] for c in codecs}
    assert {"PCMU", "PCMA", "G722"} <= names
    assert all(isinstance(c["SampleRate"], int) and c["SampleRate"] > 0 for c in codecs)
    assert {"Name": "PCMU", "SampleRate": 8000} in codecs


def test_peer_to_peer_account_status(station):
    station.engine.apply(station.config())
    assert station.engine.account_status("peer-to-peer") == {
        "SIPAccountId": "peer-to-peer", "SIPURI": f"sip:127.0.0.1:{station.sip_port}", "IsDefault": True,
        "RegURI": "", "Status": 0, "StatusText": "Does not register"}


def test_stop_with_a_call_in_progress_hangs_up_cleanly(baresip):
    events = EventCollector()
    engine = SipEngine(events, logging.getLogger("test.sip"))
    engine.start()
    port = free_port()
    engine.apply(__import__("daemon.sip.config", fromlist=["EngineConfig"]).EngineConfig(
        sip_enabled=True, sip_port=port, sip_tls_port=free_port(), bind_address="127.0.0.1",
        accounts=(AccountConfig(id="p2p", user_id="door"),)))
    call_id = engine.make_call(None, baresip.aor)
    wait_until(lambda: (engine.call_status(call_id) or {}).get("CallState") == "Active", 5.0, "active call")
    engine.stop()
    end = events.wait_for(lambda e: isinstance(e, CallFinished), timeout=1.0)
    assert end.status["CallStateReason"] == "Terminated"
    baresip.wait_event("CALL_CLOSED")
    assert not tcp_open(port)


def test_blocked_engine_thread_times_out_and_heartbeat_ages(baresip):
    release = threading.Event()

    def slow_handler(event):
        if isinstance(event, CallTransition) and event.reason == "Initiated":
            release.wait(10.0)          # a misbehaving on_event handler blocks the engine thread

    engine = SipEngine(slow_handler, logging.getLogger("test.sip"))
    engine.start()
    try:
        from daemon.sip.config import EngineConfig
        engine.apply(EngineConfig(sip_enabled=True, sip_port=free_port(), sip_tls_port=free_port(),
                                  bind_address="127.0.0.1", accounts=(AccountConfig(id="p2p", user_id="door"),)))
        wait_until(lambda: engine.heartbeat_age() < 1.0, 5.0, "a fresh heartbeat")
        with pytest.raises(EngineTimeout):
            engine.make_call(None, baresip.aor, timeout=0.3)
        wait_until(lambda: engine.heartbeat_age() > 1.0, 5.0, "the heartbeat to go stale")
        release.set()
        wait_until(lambda: engine.heartbeat_age() < 1.0, 5.0, "the heartbeat to recover")
        assert engine.supported_codecs()
    finally:
        release.set()
        engine.stop()


def test_port_change_rebinds_transports(station, baresip):
    station.engine.apply(station.config())
    assert tcp_open(station.sip_port)
    new_port = free_port()
    station.engine.apply(station.config(sip_port=new_port, allow_incoming_calls=True))
    assert not tcp_open(station.sip_port) and tcp_open(new_port)
    assert station.engine.account_status("peer-to-peer")["SIPURI"] == f"sip:127.0.0.1:{new_port}"
    baresip.command("dial", f"sip:door@127.0.0.1:{new_port}")
    station.events.wait_for(lambda e: isinstance(e, CallTransition) and e.reason == "AcceptedByDevice")


def test_disable_and_enable_sip(station, baresip):
    station.engine.apply(station.config())
    call_id = station.engine.make_call(None, baresip.aor)
    station.wait_state(call_id, "Active")
    station.engine.apply(station.config(sip_enabled=False))
    assert station.engine.call_status(call_id)["CallState"] == "Terminated"
    assert not tcp_open(station.sip_port)
    assert station.engine.account_status("peer-to-peer")["StatusText"] == "SIP disabled"
    station.engine.apply(station.config())          # same ports again
    assert tcp_open(station.sip_port)
    call2 = station.engine.make_call(None, baresip.aor)
    station.wait_state(call2, "Active")


def test_disabled_account_does_not_take_calls(station, baresip):
    station.engine.apply(station.config(accounts=(
        AccountConfig(id="peer-to-peer", user_id="door", is_default=True, enabled=False),)))
    with pytest.raises(Exception, match="disabled|no SIP account"):
        station.engine.make_call(None, baresip.aor)
    assert station.engine.account_status("peer-to-peer")["StatusText"] == "Does not register"


def test_history_can_be_seeded(station):
    old = {"CallId": "Out-1-old", "CallState": "Terminated", "CallStateReason": "Busy",
           "StartTime": "2026-01-01T00:00:00.000Z"}
    station.engine.load_history([old])
    assert station.engine.call_status("Out-1-old") == old
    assert station.engine.call_statuses()[0] == old


def test_audio_hooks_are_called_on_the_engine_thread(baresip):
    seen: list[tuple] = []

    def ready(ep):
        seen.append(("ready", type(ep).__name__, threading.current_thread().name))

    def media(call_id, audio_media):
        seen.append(("media", call_id, type(audio_media).__name__, threading.current_thread().name))

    def media_end(call_id):
        seen.append(("end", call_id, threading.current_thread().name))

    from daemon.sip.config import EngineConfig
    events = EventCollector()
    engine = SipEngine(events, logging.getLogger("test.sip"), media_hook=media, media_end_hook=media_end,
                       on_endpoint_ready=ready)
    engine.start()
    try:
        engine.apply(EngineConfig(sip_enabled=True, sip_port=free_port(), sip_tls_port=free_port(),
                                  bind_address="127.0.0.1", accounts=(AccountConfig(id="p2p", user_id="door"),)))
        call_id = engine.make_call(None, baresip.aor)
        wait_until(lambda: any(s[0] == "media" for s in seen), 5.0, "the media hook")
        engine.hangup(call_id)
        wait_until(lambda: any(s[0] == "end" for s in seen), 5.0, "the media end hook")
    finally:
        engine.stop()
    assert seen[0] == ("ready", "EngineEndpoint", "sip-engine")
    assert ("media", call_id, "AudioMedia", "sip-engine") in seen
    assert seen[-1] == ("end", call_id, "sip-engine")
