"""Random event sequences against the intercom: the invariants hold whatever the order."""
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.intercom import ACTIVE, CALLING, IDLE
from tests.hw.fakes import Rig

CALL_IDS = ["Out-1", "Out-2", "In-1"]
steps = st.lists(st.one_of(
    st.tuples(st.just("press"), st.floats(0.0, 0.2)),
    st.tuples(st.just("state"), st.sampled_from(CALL_IDS),
              st.sampled_from(["Calling", "Active", "Terminating", "Terminated", "Idle"])),
    st.tuples(st.just("dtmf"), st.sampled_from(["open", "other"])),
    st.tuples(st.just("open"), st.just("admin")),
    st.tuples(st.just("wait"), st.floats(0.0, 4.0)),
), max_size=25)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_invariants(seq):
    rig = Rig()
    for step in seq:
        kind = step[0]
        if kind == "press":
            rig.press(hold_s=0.05 + step[1])
        elif kind == "state":
            rig.call_state(step[1], step[2])
        elif kind == "dtmf":
            rig.intercom.on_dtmf({"DTMFEventId": step[1], "CallId": "Out-1"})
        elif kind == "open":
            rig.intercom.open_door(step[1])
        else:
            rig.advance(step[1])
        state = rig.intercom.state
        led = rig.led.mode
        assert (state, led if isinstance(led, str) else "blink") in {
            (IDLE, "off"), (CALLING, "blink"), (ACTIVE, "on")}
        if state != CALLING:
            assert not rig.ringback.playing
    rig.advance(3.1)                                   # longer than any pulse
    assert rig.lines.get_value("door_relay") is False
    relay = [d for t, d in rig.events if t == "doorstation:Relay"]
    assert all(d.get("Cause") != "DTMF" or d["DTMFEventId"] == "open" for d in relay)
    rig.intercom.shutdown()
    assert rig.lines.get_value("door_relay") is False and rig.lines.get_value("call_led") is False
    assert not rig.ringback.playing
