"""Call flow: button -> call, call state -> LED/ring-back, DTMF -> relay (simulated lines, manual clock)."""
from itertools import pairwise

from daemon.hwconfig import ButtonConfig
from daemon.intercom import ACTIVE, CALLING, IDLE, TOPIC_BUTTON, TOPIC_CALL_FAILED, TOPIC_RELAY
from tests.hw.fakes import Rig


def state(rig, call_id, st, reason=""):
    rig.call_state(call_id, st, reason)


def test_press_calls_the_configured_recipient_and_blinks_while_calling():
    rig = Rig()
    rig.press()
    assert rig.sip.calls == [("acc0", "sip:desk@127.0.0.1")]
    assert rig.intercom.state == CALLING and rig.ringback.playing
    state(rig, "Out-1", "Calling", "Initiated")
    led_before = len(rig.lines.outputs("call_led"))
    rig.advance(1.0)                                  # 200 ms on / 300 ms off => 4 changes per second
    blinks = rig.lines.outputs("call_led")[led_before:]
    assert [c.active for c in blinks] == [False, True, False, True]
    gaps = [round((b.timestamp_ns - a.timestamp_ns) / 1e6) for a, b in pairwise(blinks)]
    assert gaps == [300, 200, 300]


def test_answer_makes_led_steady_and_stops_ring_back_then_hangup_turns_it_off():
    rig = Rig()
    rig.press()
    state(rig, "Out-1", "Active", "AcceptedByRemote")
    assert rig.intercom.state == ACTIVE and not rig.ringback.playing
    n = len(rig.lines.outputs("call_led"))
    rig.advance(2.0)
    assert rig.lines.get_value("call_led") is True and len(rig.lines.outputs("call_led")) == n
    state(rig, "Out-1", "Terminated", "Terminated")
    assert rig.intercom.state == IDLE and rig.lines.get_value("call_led") is False


def test_bounces_shorter_than_debounce_never_start_a_call():
    rig = Rig(debounce_ms=30)
    for _ in range(5):
        rig.lines.press()
        rig.advance(0.01)                             # 10 ms contact, under the 30 ms debounce
        rig.lines.release()
        rig.advance(0.01)
    rig.advance(0.5)
    assert rig.sip.calls == [] and rig.intercom.state == IDLE
    rig.press(hold_s=0.05)                            # a real press
    assert len(rig.sip.calls) == 1


def test_press_while_calling_hangs_up_by_default_and_holding_does_not_repeat():
    rig = Rig()
    rig.lines.press()
    rig.advance(2.0)                                  # holding the button: still one call
    rig.lines.release()
    rig.advance(0.1)
    assert len(rig.sip.calls) == 1
    rig.press()
    assert rig.sip.hangups == ["Out-1"]
    assert rig.topics(TOPIC_BUTTON)[-1] == {"Action": "Hangup", "CallState": CALLING}


def test_press_while_active_can_be_ignored():
    rig = Rig(button_cfg=ButtonConfig(recipient="VMS_CALL", while_active="ignore", while_calling="ignore"))
    rig.press()
    assert rig.sip.calls == [(None, "VMS_CALL")]
    rig.press()
    state(rig, "Out-1", "Active")
    rig.press()
    assert rig.sip.hangups == [] and len(rig.sip.calls) == 1
    assert [d["Action"] for d in rig.topics(TOPIC_BUTTON)] == ["Call", "Ignored", "Ignored"]


def test_press_while_active_hangs_up_the_active_call():
    rig = Rig()
    rig.press()
    state(rig, "Out-1", "Active")
    rig.press()
    assert rig.sip.hangups == ["Out-1"]


def test_failed_call_is_reported_and_stays_idle():
    rig = Rig()
    rig.sip.fail_with = RuntimeError("SIP disabled")
    rig.press()
    assert rig.intercom.state == IDLE and not rig.ringback.playing
    assert rig.topics(TOPIC_CALL_FAILED) == [{"To": "sip:desk@127.0.0.1", "Error": "RuntimeError: SIP disabled"}]


def test_call_that_ends_inside_sip_call_does_not_leave_us_calling():
    rig = Rig()
    rig.sip.on_call = lambda cid: state(rig, cid, "Terminated", "Failed")
    rig.press()
    assert rig.intercom.state == IDLE and not rig.ringback.playing and rig.lines.get_value("call_led") is False


def test_incoming_call_blinks_without_ring_back_and_outgoing_api_call_rings_back():
    rig = Rig()
    state(rig, "In-1", "Calling")
    assert rig.intercom.state == CALLING and not rig.ringback.playing
    state(rig, "In-1", "Terminated")
    rig.call_state("Out-9", "Calling", "Initiated", "Outgoing")
    assert rig.ringback.playing


def test_bound_dtmf_event_pulses_relay_and_relocks_after_pulse_ms():
    rig = Rig()
    assert rig.relay_levels() == [False, False, False]     # requested locked, Relay(), start()
    rig.intercom.on_dtmf({"DTMFEventId": "open", "CallId": "Out-1"})
    assert rig.lines.get_value("door_relay") is True
    rig.advance(2.9)
    assert rig.lines.get_value("door_relay") is True
    rig.advance(0.2)
    assert rig.lines.get_value("door_relay") is False
    changes = rig.lines.outputs("door_relay")[-2:]
    assert round((changes[1].timestamp_ns - changes[0].timestamp_ns) / 1e6) == 3000
    relay = rig.topics(TOPIC_RELAY)
    assert relay[0] == {"State": "Locked", "Cause": "Startup"}
    assert relay[1] == {"State": "Unlocked", "Cause": "DTMF", "DTMFEventId": "open", "CallId": "Out-1",
                        "PulseMs": 3000, "At": relay[1]["At"]}
    assert relay[2] == {"State": "Locked", "Cause": "PulseEnded", "At": relay[2]["At"],
                        "UnlockedMs": relay[2]["UnlockedMs"]}
    assert 3000 <= relay[2]["UnlockedMs"] <= 3010     # the manual clock moves in 10 ms steps


def test_unbound_dtmf_event_does_nothing():
    rig = Rig()
    rig.intercom.on_dtmf({"DTMFEventId": "lights", "CallId": "Out-1"})
    rig.advance(0.1)
    assert rig.lines.get_value("door_relay") is False and len(rig.topics(TOPIC_RELAY)) == 1


def test_second_pulse_extends_and_shutdown_locks_at_once():
    rig = Rig()
    rig.intercom.open_door(user="operator")
    rig.advance(2.0)
    rig.intercom.on_dtmf({"DTMFEventId": "open", "CallId": "c7"})
    rig.advance(2.0)
    assert rig.lines.get_value("door_relay") is True     # 4 s after the first, 2 s after the second
    rig.intercom.shutdown()
    assert rig.lines.get_value("door_relay") is False and rig.lines.get_value("call_led") is False
    rig.advance(5.0)                                     # the cancelled re-lock timer emits nothing
    causes = [d.get("Cause") for d in rig.topics(TOPIC_RELAY)]
    assert causes == ["Startup", "User", "DTMF", "Shutdown"]
    assert rig.topics(TOPIC_RELAY)[1]["User"] == "operator"


def test_supervisor_forms_press_door_open_status_and_positional_events():
    rig = Rig()
    done = rig.intercom.press()                           # the CLI's press: no GPIO involved
    assert done == {"Action": "Call", "To": "sip:desk@127.0.0.1", "CallId": "Out-1"}
    rig.calls.set("Out-1", "Active")
    rig.intercom.on_call_state("Out-1", "Active", "AcceptedByRemote")
    rig.intercom.on_dtmf("open", "Out-1")
    st = rig.intercom.status()
    assert (st["State"], st["Relay"], st["LED"], st["Calls"]) == ("Active", "Unlocked", "on", {"Out-1": "Active"})
    assert rig.intercom.door_open({"api": "admin"}) == {"Relay": "Unlocked", "PulseMs": 3000, "User": "admin"}
    assert rig.topics(TOPIC_RELAY)[-1]["User"] == "admin"
    rig.intercom.stop()
    assert rig.intercom.status()["Relay"] == "Locked"


def test_asyncio_scheduler_drives_relay_pulse():
    import asyncio

    from daemon.hwconfig import SIMULATED_GPIO
    from hw.gpio import Relay
    from hw.gpio_sim import SimLines
    from hw.timers import AsyncioScheduler

    async def scenario():
        lines = SimLines(SIMULATED_GPIO.line_specs())
        relay = Relay(lines, AsyncioScheduler(asyncio.get_running_loop()))
        locked = asyncio.Event()
        relay.pulse(50, on_locked=lambda at: locked.set())
        assert lines.get_value("door_relay") is True
        await asyncio.wait_for(locked.wait(), 5)
        return lines.get_value("door_relay")
    assert asyncio.run(scenario()) is False


def test_a_reused_call_id_starts_fresh():
    rig = Rig()
    rig.press()
    state(rig, "Out-1", "Terminated")
    rig.sip.calls.clear()                                 # the engine hands out Out-1 again
    rig.press()
    assert rig.intercom.state == CALLING and rig.ringback.playing
