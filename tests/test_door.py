"""The door through the real stack with simulated hardware: button press -> call, LED, relay
pulses from the API/CLI, DTMF-event bindings, every relay activation in the event log."""
import time

import pytest

from tests.harness import ADMIN, OPERATOR, VIEWER, Station, doorstation

pytestmark = pytest.mark.integration

HARDWARE = """
[gpio]
simulated = true
[gpio.call_button]
line = "CALL_BUTTON"
active_low = true
debounce_ms = 20
[gpio.call_led]
line = "CALL_LED"
blink_on_ms = 100
blink_off_ms = 100
[gpio.door_relay]
line = "DOOR_LOCK"
pulse_ms = 300
[button]
recipient = "VMS_CALL"
while_calling = "hangup"
"""


@pytest.fixture
def door_station(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "hardware.toml").write_text(HARDWARE)
    st = Station(state).start()
    yield st
    st.stop()


def events_after(st, after, wait=5.0, until=None):
    s = st.session()
    got, deadline = [], time.monotonic() + wait
    while time.monotonic() < deadline:
        page = s.get(f"{st.url}/api/events?after={after}&wait=1", timeout=10).json()
        got += page["events"]
        after = page["next"]
        if until is None or any(until(e) for e in got):
            break
    return got, after


def test_press_calls_and_a_second_press_hangs_up(door_station):
    st = door_station
    _, after = events_after(st, 0, wait=0.5)
    pressed = doorstation("press", state_dir=st.state_dir)
    assert pressed.returncode == 0, pressed.stderr
    status = st.ok("GetCallStatuses")["CallStatus"]
    calling = [c for c in status if c["CallState"] == "Calling"]
    assert len(calling) == 1 and calling[0]["CallType"] == "VMS"
    hw = doorstation("status", state_dir=st.state_dir)
    assert '"LED": "blink"' in hw.stdout and '"CallState": "Calling"' in hw.stdout
    doorstation("press", state_dir=st.state_dir)  # while Calling: configured to hang up
    events, _ = events_after(st, after, until=lambda e: e["data"].get("Reason") == "Terminated")
    topics = [(e["topic"], e["data"].get("Action") or e["data"].get("Reason") or e["data"].get("CallState"))
              for e in events]
    assert ("doorstation:Button", "Call") in topics
    assert ("tnsaxis:Call/StateChange", "Initiated") in topics
    assert ("doorstation:Button", "Hangup") in topics
    assert ("tnsaxis:Call/StateChange", "Terminated") in topics
    hw = doorstation("status", state_dir=st.state_dir)
    assert '"LED": "off"' in hw.stdout


def test_door_open_roles_pulse_and_relock(door_station):
    st = door_station
    _, after = events_after(st, 0, wait=0.5)
    r = st.session(VIEWER).post(f"{st.url}/api/door/open", timeout=10)
    assert r.status_code == 403 and r.json()["FaultCode"] == "ter:NotAuthorized"
    # an operator runs the door day to day (docs/auth.md): opening it is an operator's right
    for user, name in ((OPERATOR, "oper"), (ADMIN, "admin")):
        r = st.session(user).post(f"{st.url}/api/door/open", timeout=10)
        assert r.status_code == 200 and r.json()["PulseMs"] == 300
        events, after = events_after(st, after, until=lambda e: e["data"].get("Cause") == "PulseEnded")
        relay = [e["data"] for e in events if e["topic"] == "doorstation:Relay"]
        assert relay[0]["State"] == "Unlocked" and relay[0]["User"] == name
        assert (relay[-1]["State"], relay[-1]["Cause"]) == ("Locked", "PulseEnded")
        # the line's own times: re-locked by the relay's timer thread when the pulse ended
        assert 300 <= relay[-1]["UnlockedMs"] < 300 + 250, relay
        assert abs(relay[-1]["At"] - relay[0]["At"] - relay[-1]["UnlockedMs"] / 1000) < 0.001
    cli = doorstation("door", "open", state_dir=st.state_dir)
    assert cli.returncode == 0 and '"Relay": "Unlocked"' in cli.stdout


def test_dtmf_bindings_through_api_and_cli(door_station):
    st = door_station
    event_id = st.ok("SetDTMFEvent", {"DTMFEvent": {"Name": "OpenDoorEvent"}})["DTMFEventId"]
    s = st.session()
    r = s.put(f"{st.url}/api/door/bindings", json={"DTMFEventIds": ["no_such_event"]}, timeout=10)
    assert r.status_code == 400
    for user in (VIEWER, OPERATOR):  # which events open the door is configuration: admin only
        assert st.session(user).put(f"{st.url}/api/door/bindings", json={"DTMFEventIds": []},
                                    timeout=10).status_code == 403
    r = s.put(f"{st.url}/api/door/bindings", json={"DTMFEventIds": [event_id]}, timeout=10)
    assert r.status_code == 200 and r.json()["Effective"] == [event_id]
    assert st.session(VIEWER).get(f"{st.url}/api/door/bindings", timeout=10).json()["DTMFEventIds"] == [event_id]
    assert doorstation("door", "unbind", event_id, state_dir=st.state_dir).returncode == 0
    assert s.get(f"{st.url}/api/door/bindings", timeout=10).json()["DTMFEventIds"] == []
    assert doorstation("door", "bind", event_id, state_dir=st.state_dir).returncode == 0
    st.ok("RemoveDTMFEvent", {"DTMFEventId": event_id})
    assert s.get(f"{st.url}/api/door/bindings", timeout=10).json()["Effective"] == []


def test_invalid_hardware_config_refuses_to_start_naming_the_key(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "hardware.toml").write_text(HARDWARE.replace("debounce_ms = 20", "debounce_ms = -1"))
    st = Station(state)
    with pytest.raises(RuntimeError) as e:
        st.start(timeout=30)
    assert "gpio.call_button.debounce_ms" in str(e.value)


def test_a_button_call_the_engine_cannot_place_is_recorded_as_a_failed_call(tmp_path):
    """The button names an account that does not exist (removed after hardware.toml was written):
    the press gets its CallId at once, the engine refuses the call later; that call must still be
    told (Initiated, Failed), kept in the history, and reported as the intercom's CallFailed."""
    from tests.stack_sip import enable_sip
    state = tmp_path / "state"
    state.mkdir()
    (state / "hardware.toml").write_text(HARDWARE.replace('recipient = "VMS_CALL"',
                                                          'recipient = "sip:bob@127.0.0.1:9"\naccount_id = "gone"'))
    st = Station(state).start()
    try:
        enable_sip(st)
        _, after = events_after(st, 0, wait=0.5)
        assert doorstation("press", state_dir=st.state_dir).returncode == 0
        events, _ = events_after(st, after, wait=15,
                                 until=lambda e: e["topic"] == "doorstation:Intercom/CallFailed")
        failed = [e for e in events if e["topic"] == "doorstation:Intercom/CallFailed"]
        assert failed, events
        call_id = failed[0]["data"]["CallId"]
        events, _ = events_after(st, after, wait=5, until=lambda e: e["data"].get("Reason") == "Failed")
        reasons = [e["data"]["Reason"] for e in events
                   if e["topic"] == "tnsaxis:Call/StateChange" and e["data"].get("CallId") == call_id]
        assert reasons == ["Initiated", "Failed"], events
        status = st.ok("GetCallStatus", {"CallId": call_id})["CallStatus"]
        assert status["CallState"] == "Terminated" and status["CallStateReason"] == "Failed", status
        hw = doorstation("status", state_dir=st.state_dir)
        assert '"LED": "off"' in hw.stdout
    finally:
        st.stop()
