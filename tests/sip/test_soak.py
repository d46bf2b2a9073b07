"""Soak: N call / DTMF / hang-up cycles with no failure and no leaked call.

N = DOORSTATION_SOAK_CYCLES (default 300, as the issue asks; ~4 min; set it lower for a quick run).
"""
from __future__ import annotations

import os

import pytest

from daemon.sip.config import AccountConfig, DtmfSettings, DtmfTrigger
from daemon.sip.types import CallFinished, DtmfMatched

pytestmark = pytest.mark.sip

CYCLES = int(os.environ.get("DOORSTATION_SOAK_CYCLES", "300"))


def test_call_dtmf_hangup_cycles(station, agent_factory, baresip):
    agent = agent_factory("--answer", "200")
    dtmf = DtmfSettings(triggers=(DtmfTrigger("#1234#", "open", "OpenDoor"),))
    station.engine.apply(station.config(accounts=(
        AccountConfig(id="peer-to-peer", user_id="door", is_default=True, dtmf=dtmf),)))
    methods = ["SIP_INFO", "RFC2833", "baresip"]
    for i in range(CYCLES):
        method = methods[i % len(methods)]
        peer_uri = baresip.aor if method == "baresip" else agent.uri()
        mark = baresip.mark() if method == "baresip" else agent.mark()
        call_id = station.engine.make_call(None, peer_uri)
        station.wait_state(call_id, "Active")
        if method == "baresip":
            baresip.wait_event("CALL_ESTABLISHED", since=mark)
            assert baresip.command("sndcode", "#1234#")["ok"]
        else:
            agent.wait_event("state", pred=lambda e: e["state"] == "CONFIRMED", since=mark)
            agent.send(cmd="dtmf", digits="#1234#", method=method)
        station.events.wait_for(lambda e, call_id=call_id: isinstance(e, DtmfMatched) and e.call_id == call_id,
                                timeout=10.0, what=f"DTMF match in cycle {i} ({method})")
        station.engine.hangup(call_id)
        end = station.wait_state(call_id, "Terminated")
        assert end["CallStateReason"] == "Terminated", f"cycle {i}: {end}"
    assert station.engine.live_call_ids() == []
    finished = station.events.of_type(CallFinished)
    assert len(finished) == CYCLES
    assert {f.status["CallStateReason"] for f in finished} == {"Terminated"}
    assert len(station.events.of_type(DtmfMatched)) == CYCLES
    assert len(station.engine.call_statuses()) == min(CYCLES, 100)
