"""build_station_hardware: the one call the supervisor makes, on simulated hardware."""
import select
import time

import pytest

from daemon.hwconfig import HwConfigError
from hw.gpio import ChipNotFoundError
from hw.station import TOPIC_INPUT, build_station_hardware
from hw.timers import ManualClock, TimerQueue
from tests.hw.fakes import FakeSip


def test_simulated_station_wires_button_to_intercom_and_inputs_to_events(tmp_path):
    sip, events = FakeSip(), []
    timers = TimerQueue(ManualClock())
    hw = build_station_hardware(tmp_path, sip=sip, scheduler=timers, emit=lambda t, d: events.append((t, d)))
    hw.intercom.start()
    hw.lines.press()                           # simulated button, 30 ms debounce in real time
    assert select.select([hw.fileno()], [], [], 2.0)[0]
    for _ in range(20):
        hw.on_readable()
        if sip.calls:
            break
        select.select([hw.fileno()], [], [], 0.1)
    assert sip.calls == [(None, "VMS_CALL")]
    st = hw.status()
    assert st["State"] == "Calling" and st["SimulatedGPIO"] and st["SimulatedAudio"]
    relay = hw.lines.outputs("door_relay")
    hw.close()
    assert hw.lines.outputs("door_relay")[-1].active is False and len(hw.lines.outputs("door_relay")) > len(relay)


def test_extra_inputs_are_published(tmp_path):
    (tmp_path / "hardware.toml").write_text(
        '[gpio]\nsimulated = true\n[gpio.call_button]\nline = "B"\n[gpio.call_led]\nline = "L"\n'
        '[gpio.door_relay]\nline = "R"\n[gpio.inputs.door_contact]\nline = "C"\n')
    events = []
    hw = build_station_hardware(tmp_path, sip=FakeSip(), scheduler=TimerQueue(ManualClock()),
                                emit=lambda t, d: events.append((t, d)))
    hw.lines.press("door_contact")             # no debounce on this input: immediate
    assert select.select([hw.fileno()], [], [], 2.0)[0]
    hw.on_readable()
    assert events == [(TOPIC_INPUT, {"Input": "door_contact", "Active": True})]
    hw.close()


def test_real_chip_that_is_absent_fails_with_a_typed_error(tmp_path):
    (tmp_path / "hardware.toml").write_text(
        '[gpio]\nchip = "no-such-chip"\n[gpio.call_button]\nline = "GPIO17"\n'
        '[gpio.call_led]\nline = "GPIO27"\n[gpio.door_relay]\nline = "GPIO22"\n')
    with pytest.raises(ChipNotFoundError, match="no-such-chip"):
        build_station_hardware(tmp_path, sip=FakeSip(), scheduler=TimerQueue(), emit=lambda t, d: None)


def test_bad_config_fails_with_the_key(tmp_path):
    (tmp_path / "hardware.toml").write_text('[relay]\ndtmf_events = [1]\n')
    with pytest.raises(HwConfigError) as e:
        build_station_hardware(tmp_path, sip=FakeSip(), scheduler=TimerQueue(), emit=lambda t, d: None)
    assert e.value.key == "relay.dtmf_events"


def test_door_guard_relocks_while_the_loop_never_runs(tmp_path):
    """The loop's timers are frozen (a manual clock nobody advances) and `notify` only queues: the
    relay still re-locks on time, on its own thread; the "Locked" event waits for the loop."""
    (tmp_path / "hardware.toml").write_text(
        '[gpio]\nsimulated = true\n[gpio.call_button]\nline = "B"\n[gpio.call_led]\nline = "L"\n'
        '[gpio.door_relay]\nline = "R"\npulse_ms = 200\n')
    events, queued = [], []
    hw = build_station_hardware(tmp_path, sip=FakeSip(), scheduler=TimerQueue(ManualClock()),
                                emit=lambda t, d: events.append((t, d)), notify=queued.append)
    try:
        hw.intercom.start()
        hw.intercom.door_open({"api": "admin"})
        deadline = time.monotonic() + 5
        while hw.lines.get_value("door_relay") and time.monotonic() < deadline:
            time.sleep(0.005)
        changes = hw.lines.outputs("door_relay")[-2:]
        assert [c.active for c in changes] == [True, False]
        held_ms = (changes[1].timestamp_ns - changes[0].timestamp_ns) / 1e6
        assert 200 <= held_ms < 250, held_ms
        assert [d["State"] for t, d in events if t == "doorstation:Relay"] == ["Locked", "Unlocked"]
        assert len(queued) == 1
        queued[0]()                            # the loop runs again: the event is logged
        locked = events[-1][1]
        assert (locked["State"], locked["Cause"]) == ("Locked", "PulseEnded")
        assert 200 <= locked["UnlockedMs"] < 250
    finally:
        hw.close()
