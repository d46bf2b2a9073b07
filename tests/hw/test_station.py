"""open_station_hardware: the devices the supervisor opens from hardware.toml, on simulated lines."""
import select
import time

import pytest

from daemon import hwconfig
from daemon.hwconfig import HwConfigError
from hw.gpio import ChipNotFoundError
from hw.station import open_station_hardware
from hw.timers import ManualClock, TimerQueue


def open_hardware(state_dir, **kw):
    """As the supervisor's wiring does: hardware.toml read, then the devices opened."""
    cfg = hwconfig.load(state_dir)
    return open_station_hardware(cfg.gpio, cfg.audio, **kw)


def test_simulated_station_opens_locked_and_reports_edges(tmp_path):
    hw = open_hardware(tmp_path, scheduler=TimerQueue(ManualClock()))
    try:
        assert hw.lines.get_value("door_relay") is False          # locked at once
        hw.lines.press()                                          # simulated button, 30 ms debounce
        assert select.select([hw.fileno()], [], [], 2.0)[0]
        edges = []
        for _ in range(20):
            edges += hw.read_edges()
            if edges:
                break
            select.select([hw.fileno()], [], [], 0.1)
        assert [(e.role, e.active) for e in edges] == [("call_button", True)]
        st = hw.status()
        assert st["SimulatedGPIO"] and st["SimulatedAudio"] and "mic" in st["Audio"]
        hw.relay.pulse(60_000)
    finally:
        hw.close()
    assert hw.lines.outputs("door_relay")[-1].active is False            # closed locked


def test_extra_inputs_are_reported_with_their_role(tmp_path):
    (tmp_path / "hardware.toml").write_text(
        '[gpio]\nsimulated = true\n[gpio.call_button]\nline = "B"\n[gpio.call_led]\nline = "L"\n'
        '[gpio.door_relay]\nline = "R"\n[gpio.inputs.door_contact]\nline = "C"\n')
    hw = open_hardware(tmp_path, scheduler=TimerQueue(ManualClock()))
    try:
        hw.lines.press("door_contact")             # no debounce on this input: immediate
        assert select.select([hw.fileno()], [], [], 2.0)[0]
        assert [(e.role, e.active) for e in hw.read_edges()] == [("door_contact", True)]
    finally:
        hw.close()


def test_real_chip_that_is_absent_fails_with_a_typed_error(tmp_path):
    (tmp_path / "hardware.toml").write_text(
        '[gpio]\nchip = "no-such-chip"\n[gpio.call_button]\nline = "GPIO17"\n'
        '[gpio.call_led]\nline = "GPIO27"\n[gpio.door_relay]\nline = "GPIO22"\n')
    with pytest.raises(ChipNotFoundError, match="no-such-chip"):
        open_hardware(tmp_path, scheduler=TimerQueue())


def test_bad_config_fails_with_the_key(tmp_path):
    (tmp_path / "hardware.toml").write_text('[relay]\ndtmf_events = [1]\n')
    with pytest.raises(HwConfigError) as e:
        open_hardware(tmp_path, scheduler=TimerQueue())
    assert e.value.key == "relay.dtmf_events"


def test_door_guard_relocks_while_the_loop_never_runs(tmp_path):
    """The loop's timers are frozen (a manual clock nobody advances) and `notify` only queues: the
    relay still re-locks on time, on its own thread; the "Locked" notice waits for the loop."""
    (tmp_path / "hardware.toml").write_text(
        '[gpio]\nsimulated = true\n[gpio.call_button]\nline = "B"\n[gpio.call_led]\nline = "L"\n'
        '[gpio.door_relay]\nline = "R"\npulse_ms = 200\n')
    queued, locked = [], []
    hw = open_hardware(tmp_path, scheduler=TimerQueue(ManualClock()), notify=queued.append)
    try:
        hw.relay.pulse(200, on_locked=locked.append)
        deadline = time.monotonic() + 5
        while hw.lines.get_value("door_relay") and time.monotonic() < deadline:
            time.sleep(0.005)
        changes = hw.lines.outputs("door_relay")[-2:]
        assert [c.active for c in changes] == [True, False]
        held_ms = (changes[1].timestamp_ns - changes[0].timestamp_ns) / 1e6
        assert 200 <= held_ms < 250, held_ms
        assert len(queued) == 1 and locked == []
        queued[0]()                            # the loop runs again: the notice is delivered
        assert len(locked) == 1
    finally:
        hw.close()
