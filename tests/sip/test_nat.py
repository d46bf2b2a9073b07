"""STUN settings: a reachable server is used; an unreachable one never blocks the engine."""
from __future__ import annotations

import pytest

from .conftest import free_port, wait_until
from .stun_server import StunServer

pytestmark = pytest.mark.sip


@pytest.fixture
def stun():
    server = StunServer()
    yield server
    server.stop()


def test_unreachable_stun_server_does_not_block_calls(station, baresip):
    station.engine.apply(station.config(stun_enabled=True, stun_servers=(f"127.0.0.1:{free_port()}",)))
    call_id = station.engine.make_call(None, baresip.aor)      # EngineTimeout here before the fix
    assert station.wait_state(call_id, "Active")["CallStateReason"] == "AcceptedByRemote"


def test_reachable_stun_server_is_checked_and_calls_work(station, baresip, stun):
    """On loopback the media's own STUN query cannot be observed (pjsua skips it for a bound
    address); what is checked: the server is probed, and calls work with STUN switched on."""
    station.engine.apply(station.config(stun_enabled=True, stun_servers=(f"127.0.0.1:{stun.port}",)))
    wait_until(lambda: stun.requests >= 1, 10.0, "the STUN server check")
    call_id = station.engine.make_call(None, baresip.aor)
    assert station.wait_state(call_id, "Active")["CallStateReason"] == "AcceptedByRemote"


def test_stun_becoming_usable_keeps_calls(station, baresip, stun):
    station.engine.apply(station.config())
    call_id = station.engine.make_call(None, baresip.aor)
    station.wait_state(call_id, "Active")
    station.engine.apply(station.config(stun_enabled=True, stun_servers=(f"127.0.0.1:{stun.port}",)))
    wait_until(lambda: stun.requests >= 2, 10.0, "the check and pjsua's own resolution")
    call2 = station.engine.make_call(None, baresip.aor)
    station.wait_state(call2, "Active")
    assert station.engine.call_status(call_id)["CallState"] == "Active"
