"""Simulated GPIO lines, in process: same `Lines` interface as the gpiod backend.

- Inputs are driven with press()/release() (logical) or drive() (electrical level), like a finger
  or a wire would; `active_low` is applied the same way the kernel applies it.
- Debounce is emulated like the kernel's software debouncer: an edge is reported only once the
  line has been stable for debounce_ms, so bounces shorter than that produce no events at all.
- Every output change is kept in `history` with a timestamp (logical and electrical value).
- `fileno()` is the read end of a pipe that is made readable when events become pending, so the
  simulator sits in the same poll loop as a real line request. With debounce, a timer thread
  marks the pipe readable when the stable period ends (the events themselves are produced on the
  caller's thread in read_edge_events()).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from hw.gpio import ChipNotFoundError, Direction, EdgeEvent, LineNotFoundError, LineSpec


@dataclass(frozen=True)
class SimChip:
    """A simulated chip's identity, for lookups that should fail like the real ones."""
    name: str
    label: str
    line_names: tuple[str, ...]

    def offset(self, line: str | int) -> int | None:
        if isinstance(line, int):
            return line if 0 <= line < len(self.line_names) else None
        if line in self.line_names:
            return self.line_names.index(line)
        return int(line) if line.isdigit() and int(line) < len(self.line_names) else None


def open_sim_lines(specs: Iterable[LineSpec], chip: str | None, chips: Iterable[SimChip],
                   **kw: Any) -> "SimLines":
    """Resolve `chip` (name or label, or the chip holding the first line) like the gpiod backend."""
    specs, chips = list(specs), list(chips)
    for c in chips:
        if chip in (c.name, c.label) or (chip is None and specs and c.offset(specs[0].line) is not None):
            for s in specs:
                if c.offset(s.line) is None:
                    raise LineNotFoundError(s.role, s.line, c.name)
            return SimLines(specs, chip=c.name, **kw)
    raise ChipNotFoundError(chip or "<chip with the configured lines>", [c.name for c in chips])


@dataclass(frozen=True)
class OutputChange:
    timestamp_ns: int
    role: str
    active: bool
    level: int       # electrical level on the pin, after active_low


class _SimLine:
    def __init__(self, spec: LineSpec, now_ns: int) -> None:
        self.spec = spec
        if spec.direction is Direction.OUTPUT:
            self.active = spec.initial
        else:
            # an unconnected input rests at its bias; pull-up on an active-low button = released
            self.active = False
        self.reported = self.active     # last value reported through an edge event
        self.changed_ns = now_ns        # time of the last raw change


class SimLines:
    def __init__(self, specs: Iterable[LineSpec], clock_ns: Callable[[], int] = time.monotonic_ns,
                 chip: str = "sim") -> None:
        self._clock_ns = clock_ns
        self.chip = chip
        self._lock = threading.Lock()  # press() may come from a test or dev-console thread
        now = clock_ns()
        self._lines = {s.role: _SimLine(s, now) for s in specs}
        self._queue: list[EdgeEvent] = []
        self.history: list[OutputChange] = []
        self._rfd, self._wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._wake_timers: list[threading.Timer] = []
        self._closed = False
        for line in self._lines.values():
            if line.spec.direction is Direction.OUTPUT:
                self._record(line)

    # --- Lines protocol ---------------------------------------------------------------------
    def fileno(self) -> int:
        return self._rfd

    def read_edge_events(self) -> list[EdgeEvent]:
        with self._lock:
            self._drain_pipe()
            now = self._clock_ns()
            for role, line in self._lines.items():
                if line.spec.direction is not Direction.INPUT or line.spec.debounce_ms <= 0:
                    continue
                stable_at = line.changed_ns + line.spec.debounce_ms * 1_000_000
                if line.active != line.reported and now >= stable_at:
                    line.reported = line.active
                    self._queue.append(EdgeEvent(role, line.active, stable_at))
                elif line.active != line.reported:
                    # woken a little early: make sure the pipe fires again when it is stable
                    self._arm_wake((stable_at - now) / 1e9)
            events, self._queue = self._queue, []
            events.sort(key=lambda e: e.timestamp_ns)
            return events

    def get_value(self, role: str) -> bool:
        return self._line(role).active

    def set_value(self, role: str, active: bool) -> None:
        line = self._line(role)
        if line.spec.direction is not Direction.OUTPUT:
            raise ValueError(f"{role} is an input")
        with self._lock:
            line.active = bool(active)
            self._record(line)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for t in self._wake_timers:
            t.cancel()
        os.close(self._rfd)
        os.close(self._wfd)

    # --- the simulated outside world --------------------------------------------------------
    def press(self, role: str = "call_button") -> None:
        self._set_input(role, True)

    def release(self, role: str = "call_button") -> None:
        self._set_input(role, False)

    def drive(self, role: str, level: int) -> None:
        """Put an electrical level on an input pin (0/1); active_low decides what it means."""
        line = self._line(role)
        self._set_input(role, bool(level) != line.spec.active_low)

    def level(self, role: str) -> int:
        """Electrical level of a line, as a meter (or gpio-sim's sim_gpioN/value) would read it."""
        line = self._line(role)
        return int(line.active != line.spec.active_low)

    def outputs(self, role: str) -> list[OutputChange]:
        return [c for c in self.history if c.role == role]

    # --- internals ----------------------------------------------------------------------------
    def _line(self, role: str) -> _SimLine:
        try:
            return self._lines[role]
        except KeyError:
            raise LineNotFoundError(role, role, self.chip) from None

    def _record(self, line: _SimLine) -> None:
        self.history.append(OutputChange(self._clock_ns(), line.spec.role, line.active,
                                         int(line.active != line.spec.active_low)))

    def _set_input(self, role: str, active: bool) -> None:
        line = self._line(role)
        if line.spec.direction is not Direction.INPUT:
            raise ValueError(f"{role} is an output")
        with self._lock:
            if line.active == active:
                return
            now = self._clock_ns()
            line.active = active
            line.changed_ns = now
            if line.spec.debounce_ms <= 0:
                line.reported = active
                self._queue.append(EdgeEvent(role, active, now))
                self._wake()
            else:
                self._arm_wake(line.spec.debounce_ms / 1000)

    def _arm_wake(self, delay_s: float) -> None:
        timer = threading.Timer(delay_s, self._wake)
        timer.daemon = True
        self._wake_timers = [t for t in self._wake_timers if t.is_alive()] + [timer]
        timer.start()

    def _wake(self) -> None:
        try:
            os.write(self._wfd, b"\x01")
        except (BlockingIOError, OSError):
            pass  # pipe full (already readable) or closed

    def _drain_pipe(self) -> None:
        try:
            while os.read(self._rfd, 4096):
                pass
        except BlockingIOError:
            pass

    def __enter__(self) -> "SimLines":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
