"""GPIO seam: a small `Lines` protocol that backends implement, and the devices built on it.

Values are *logical* everywhere above this module: True = active (button pressed, LED lit,
relay energised = door unlocked). Each backend applies `active_low` itself (gpiod in the kernel,
the simulator in Python), so devices never see electrical levels.

Roles are the names the configuration gives to lines ("call_button", "call_led", "door_relay",
"door_contact", ...); backends map a role to a chip line by line name or offset.
"""
from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from hw.timers import Scheduler, TimerHandle


class GpioError(Exception):
    """Base of the typed GPIO errors."""


class ChipNotFoundError(GpioError, FileNotFoundError):
    def __init__(self, chip: str, known: list[str] | None = None) -> None:
        hint = f" (chips present: {', '.join(known)})" if known else " (no GPIO chips present)"
        super().__init__(f"GPIO chip {chip!r} not found{hint}")
        self.chip = chip


class LineNotFoundError(GpioError, LookupError):
    def __init__(self, role: str, line: str | int, chip: str) -> None:
        super().__init__(f"GPIO line {line!r} for {role} not found on chip {chip!r}")
        self.role, self.line, self.chip = role, line, chip


class LineBusyError(GpioError, PermissionError):
    def __init__(self, role: str, detail: str) -> None:
        super().__init__(f"GPIO line for {role} could not be requested: {detail}")
        self.role = role


class Direction(enum.Enum):
    INPUT = "input"
    OUTPUT = "output"


class Bias(enum.Enum):
    AS_IS = "as-is"
    DISABLED = "disabled"
    PULL_UP = "pull-up"
    PULL_DOWN = "pull-down"


@dataclass(frozen=True)
class LineSpec:
    role: str                 # our name for the line, e.g. "call_button"
    line: str | int           # chip line name (preferred) or offset
    direction: Direction
    active_low: bool = False
    bias: Bias = Bias.AS_IS
    debounce_ms: int = 0      # inputs only
    initial: bool = False     # outputs only: logical value at request time


@dataclass(frozen=True)
class EdgeEvent:
    role: str
    active: bool              # the logical value the line went to (True = became active)
    timestamp_ns: int         # CLOCK_MONOTONIC, as the kernel reports it


class Lines(Protocol):
    """One request of several lines; what the devices and the supervisor's poll loop use."""

    def fileno(self) -> int:
        """Readable when edge events are pending (put it in the poll loop)."""
        ...

    def read_edge_events(self) -> list[EdgeEvent]:
        """Pending edge events, oldest first; [] if none. Does not block."""
        ...

    def get_value(self, role: str) -> bool: ...

    def set_value(self, role: str, active: bool) -> None: ...

    def close(self) -> None: ...


class Button:
    """A momentary input. `handle()` turns the line's (already debounced) edges into press/release."""

    def __init__(self, lines: Lines, role: str = "call_button") -> None:
        self._lines = lines
        self.role = role
        self.pressed = lines.get_value(role)

    def handle(self, event: EdgeEvent) -> str | None:
        """'pressed', 'released', or None when the event is not ours or repeats the state."""
        if event.role != self.role or event.active == self.pressed:
            return None
        self.pressed = event.active
        return "pressed" if event.active else "released"


class Led:
    """An indicator: off, on, or blinking on the loop's timers."""

    def __init__(self, lines: Lines, scheduler: Scheduler, role: str = "call_led") -> None:
        self._lines = lines
        self._scheduler = scheduler
        self.role = role
        self._timer: TimerHandle | None = None
        self.mode: str | tuple[str, int, int] = "off"    # off, on, or ("blink", on_ms, off_ms)
        self._set(False)

    def _set(self, lit: bool) -> None:
        self._lines.set_value(self.role, lit)

    def _stop_blinking(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def off(self) -> None:
        self._stop_blinking()
        self.mode = "off"
        self._set(False)

    def on(self) -> None:
        self._stop_blinking()
        self.mode = "on"
        self._set(True)

    def blink(self, on_ms: int, off_ms: int) -> None:
        if self.mode == ("blink", on_ms, off_ms):
            return  # already blinking with this pattern: keep the phase
        self._stop_blinking()
        self.mode = ("blink", on_ms, off_ms)
        self._phase(True, on_ms / 1000, off_ms / 1000)

    def _phase(self, lit: bool, on_s: float, off_s: float) -> None:
        self._set(lit)
        self._timer = self._scheduler.call_later(
            on_s if lit else off_s, lambda: self._phase(not lit, on_s, off_s))


class Relay:
    """The door-lock relay. Inactive = locked. Locked at construction and by `lock()`.

    `pulse()` unlocks and schedules the re-lock; a pulse during a pulse extends it (the door stays
    open pulse_ms after the latest request). In the supervisor the scheduler is a `ThreadTimers` of
    the relay's own, so the re-lock happens on time even when the supervisor's loop is stalled; the
    `on_locked` callback is then handed back to the loop through `notify` (loop.call_soon_threadsafe)
    because it writes the event log. A lock guards the line and the pending timer, which the loop
    and the timer thread both touch.
    """

    def __init__(self, lines: Lines, scheduler: Scheduler, role: str = "door_relay",
                 notify: Callable[[Callable[[], None]], object] | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self._lines = lines
        self._scheduler = scheduler
        self._notify = notify or (lambda fn: fn())
        self._wall_clock = wall_clock
        self.role = role
        self._lock = threading.Lock()
        self._timer: TimerHandle | None = None
        self.unlocked_at: float | None = None   # wall-clock time of the last unlock / re-lock
        self.locked_at: float | None = None
        self.lock()

    @property
    def unlocked(self) -> bool:
        return self._lines.get_value(self.role)

    def lock(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._lines.set_value(self.role, False)
            self.locked_at = self._wall_clock()

    def pulse(self, pulse_ms: int, on_locked: Callable[[float], None] | None = None) -> float:
        """Unlock now, re-lock after pulse_ms; returns the wall-clock time of the unlock.
        `on_locked(locked_at)` runs (through `notify`) after that re-lock, not if a later pulse or
        lock() supersedes this one."""
        handle: TimerHandle | None = None

        def relock() -> None:
            with self._lock:
                if self._timer is not handle:
                    return              # superseded by a later pulse or lock()
                self._timer = None
                self._lines.set_value(self.role, False)
                locked_at = self.locked_at = self._wall_clock()
            if on_locked:
                self._notify(lambda: on_locked(locked_at))

        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._lines.set_value(self.role, True)
            unlocked_at = self.unlocked_at = self._wall_clock()
            handle = self._timer = self._scheduler.call_later(pulse_ms / 1000, relock)
        return unlocked_at
