"""GPIO contract: the same cases for every Lines backend.

Imported by tests/hw/test_gpio_contract.py (simulator, on the host) and by
tests/vm/test_gpio_contract.py (libgpiod on a gpio-sim chip, inside the VM lane). Each of those
modules provides a `harness` fixture with:
  open(specs) -> Lines                      request lines (closed by the harness)
  drive(role, level)                        put an electrical level on an input pin
  level(role) -> int                        read the electrical level of an output pin
  open_missing_chip(specs), chip line names  for the lookup-failure cases
The chip has lines named CALL_BUTTON, CALL_LED, DOOR_LOCK, DOOR_CONTACT.
"""
from __future__ import annotations

import select
import time

import pytest

from hw.gpio import Bias, ChipNotFoundError, Direction, EdgeEvent, LineNotFoundError, LineSpec

DEBOUNCE_MS = 30
WAIT_S = 3.0          # upper bound for an event to arrive (qemu TCG is slow)


def button(active_low: bool = True, debounce_ms: int = DEBOUNCE_MS) -> LineSpec:
    return LineSpec("call_button", "CALL_BUTTON", Direction.INPUT, active_low,
                    Bias.PULL_UP if active_low else Bias.PULL_DOWN, debounce_ms)


def output(role: str, name: str, active_low: bool) -> LineSpec:
    return LineSpec(role, name, Direction.OUTPUT, active_low)


def wait_events(lines, want: int, timeout_s: float = WAIT_S) -> list[EdgeEvent]:
    """Collect events through the fd, as the supervisor's poll loop would, until `want` arrived."""
    events: list[EdgeEvent] = []
    deadline = time.monotonic() + timeout_s
    poller = select.poll()
    poller.register(lines.fileno(), select.POLLIN)
    for _ in range(1000):
        left = deadline - time.monotonic()
        if len(events) >= want or left <= 0:
            break
        if poller.poll(left * 1000):
            events += lines.read_edge_events()
    return events


def settle(lines, quiet_s: float) -> list[EdgeEvent]:
    """Everything that arrives during quiet_s (used to show that nothing does)."""
    return wait_events(lines, want=10**6, timeout_s=quiet_s)


def test_lines_are_found_by_name(harness):
    lines = harness.open([button(), output("call_led", "CALL_LED", False)])
    assert lines.get_value("call_button") is False       # pull-up, active-low: released
    lines.set_value("call_led", True)
    assert lines.get_value("call_led") is True
    assert harness.level("call_led") == 1


def test_press_and_release_give_one_edge_each_way(harness):
    lines = harness.open([button(active_low=True)])
    harness.drive("call_button", 0)                       # active-low: pressed
    pressed = wait_events(lines, 1)
    harness.drive("call_button", 1)
    released = wait_events(lines, 1)
    assert [(e.role, e.active) for e in pressed] == [("call_button", True)]
    assert [(e.role, e.active) for e in released] == [("call_button", False)]
    assert released[0].timestamp_ns > pressed[0].timestamp_ns
    assert lines.get_value("call_button") is False


def test_active_high_input_edges(harness):
    lines = harness.open([button(active_low=False)])
    harness.drive("call_button", 1)
    assert [e.active for e in wait_events(lines, 1)] == [True]
    harness.drive("call_button", 0)
    assert [e.active for e in wait_events(lines, 1)] == [False]


def test_bounce_shorter_than_debounce_gives_no_event(harness):
    lines = harness.open([button(debounce_ms=400)])
    for _ in range(3):                                    # three quick bounces, each well under 400 ms
        harness.drive("call_button", 0)
        harness.drive("call_button", 1)
    assert settle(lines, 1.2) == []
    harness.drive("call_button", 0)                       # a real press still comes through, once
    assert [e.active for e in wait_events(lines, 1)] == [True]
    assert settle(lines, 0.9) == []


@pytest.mark.parametrize("active_low", [False, True])
def test_outputs_respect_active_low(harness, active_low):
    lines = harness.open([output("door_relay", "DOOR_LOCK", active_low)])
    assert harness.level("door_relay") == (1 if active_low else 0)   # requested inactive
    lines.set_value("door_relay", True)
    assert lines.get_value("door_relay") is True
    assert harness.level("door_relay") == (0 if active_low else 1)
    lines.set_value("door_relay", False)
    assert harness.level("door_relay") == (1 if active_low else 0)


def test_several_roles_in_one_request(harness):
    lines = harness.open([button(), LineSpec("door_contact", "DOOR_CONTACT", Direction.INPUT, True,
                                             Bias.PULL_UP, 0),
                          output("call_led", "CALL_LED", False), output("door_relay", "DOOR_LOCK", True)])
    harness.drive("door_contact", 0)
    events = wait_events(lines, 1)
    assert [(e.role, e.active) for e in events] == [("door_contact", True)]
    lines.set_value("door_relay", True)
    assert (harness.level("door_relay"), harness.level("call_led")) == (0, 0)


def test_missing_line_is_a_typed_error(harness):
    with pytest.raises(LineNotFoundError) as e:
        harness.open([LineSpec("call_button", "NO_SUCH_LINE", Direction.INPUT)])
    assert "NO_SUCH_LINE" in str(e.value) and e.value.role == "call_button"


def test_missing_chip_is_a_typed_error(harness):
    with pytest.raises(ChipNotFoundError) as e:
        harness.open_missing_chip([button()])
    assert "no-such-chip" in str(e.value)


def test_reading_with_nothing_pending_does_not_block(harness):
    lines = harness.open([button()])
    assert lines.read_edge_events() == []          # returns at once (the poll loop relies on it)
    assert lines.read_edge_events() == []
