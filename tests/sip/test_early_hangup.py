"""Hanging up an outgoing call at once (a visitor pressing the button twice): the callee must stop
ringing promptly, whenever the hang-up lands relative to its provisional responses."""
from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.sip


@pytest.mark.parametrize("delay", [0.0, 0.005, 0.05])
def test_hangup_right_after_the_call_stops_the_callee_ringing(station, baresip_factory, delay):
    peer = baresip_factory(account_params="answermode=manual")
    station.engine.apply(station.config())
    for _ in range(3):
        mark = peer.mark()
        call_id = station.engine.make_call(None, peer.aor)
        time.sleep(delay)
        t0 = time.monotonic()
        station.engine.hangup(call_id)
        peer.wait_event("CALL_CLOSED", timeout=3.0, since=mark)
        closed_after = time.monotonic() - t0
        assert closed_after < 2.0, closed_after
        assert station.engine.call_status(call_id)["CallState"] == "Terminated"
    assert station.engine.live_call_ids() == []
