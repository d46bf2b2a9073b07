"""Timers, Button, Led, Relay and the simulator's own behaviour."""
import select

import pytest

from hw.gpio import Bias, Button, Direction, EdgeEvent, Led, LineSpec, Relay
from hw.gpio_sim import SimLines
from hw.timers import ManualClock, TimerQueue


def test_timer_queue_runs_due_callbacks_in_order_and_skips_cancelled():
    clock = ManualClock()
    q = TimerQueue(clock)
    ran = []
    q.call_later(0.2, lambda: ran.append("b"))
    q.call_later(0.1, lambda: ran.append("a"))
    q.call_later(0.1, lambda: ran.append("a2")).cancel()
    assert q.timeout() == pytest.approx(0.1)
    clock.advance(0.15)
    assert q.run_due() == 1 and ran == ["a"]
    clock.advance(0.1)
    q.run_due()
    assert ran == ["a", "b"] and q.timeout() is None and len(q) == 0


def test_timer_queue_bounds_work_per_wakeup():
    q = TimerQueue(ManualClock())

    def rearm():
        q.call_later(0, rearm)
    q.call_later(0, rearm)
    assert q.run_due(limit=50) == 50


def test_button_reports_press_and_release_once():
    lines = SimLines([LineSpec("call_button", "B", Direction.INPUT, True, Bias.PULL_UP)])
    b = Button(lines)
    assert b.handle(EdgeEvent("call_button", True, 1)) == "pressed"
    assert b.handle(EdgeEvent("call_button", True, 2)) is None
    assert b.handle(EdgeEvent("door_contact", False, 3)) is None
    assert b.handle(EdgeEvent("call_button", False, 4)) == "released"


def test_led_blink_then_on_cancels_the_blink_timer():
    clock = ManualClock()
    q = TimerQueue(clock)
    lines = SimLines([LineSpec("call_led", "L", Direction.OUTPUT, active_low=True)])
    led = Led(lines, q)
    led.blink(100, 100)
    led.blink(100, 100)                     # same pattern again: no restart
    clock.advance(0.1)
    q.run_due()
    assert lines.get_value("call_led") is False
    led.on()
    clock.advance(1.0)
    q.run_due()
    assert lines.get_value("call_led") is True and lines.level("call_led") == 0 and len(q) == 0


def test_relay_is_locked_on_construction():
    lines = SimLines([LineSpec("door_relay", "R", Direction.OUTPUT, active_low=True, initial=True)])
    Relay(lines, TimerQueue(ManualClock()))
    assert lines.get_value("door_relay") is False and lines.level("door_relay") == 1


def test_sim_history_records_level_and_time():
    clock = ManualClock()
    lines = SimLines([LineSpec("door_relay", "R", Direction.OUTPUT, active_low=True)],
                     clock_ns=lambda: int(clock() * 1e9))
    clock.advance(1.5)
    lines.set_value("door_relay", True)
    last = lines.outputs("door_relay")[-1]
    assert (last.active, last.level, last.timestamp_ns) == (True, 0, int(1001.5e9))


def test_sim_without_debounce_reports_every_edge_through_its_fd():
    lines = SimLines([LineSpec("call_button", "B", Direction.INPUT)])
    lines.press()
    lines.release()
    lines.press()
    assert select.select([lines.fileno()], [], [], 1.0)[0]
    assert [e.active for e in lines.read_edge_events()] == [True, False, True]
    assert lines.read_edge_events() == []
    lines.close()


def test_sim_rejects_writing_an_input_and_pressing_an_output():
    lines = SimLines([LineSpec("call_button", "B", Direction.INPUT),
                      LineSpec("call_led", "L", Direction.OUTPUT)])
    with pytest.raises(ValueError):
        lines.set_value("call_button", True)
    with pytest.raises(ValueError):
        lines.press("call_led")
