"""One-shot timers behind one small `Scheduler` protocol, with three implementations:

- `TimerQueue`: driven by its owner's poll loop (`timeout()` as the poll timeout, `run_due()` after
  every wake-up); with a `ManualClock`, unit tests drive time by hand.
- `AsyncioScheduler`: the supervisor's asyncio loop (LED blinking, the intercom's timers).
- `ThreadTimers`: a dedicated thread, for the one deadline that must hold even when the loop is
  stalled: the door relay's re-lock (docs/hardware.md "Door guard").
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import Callable, Protocol


class TimerHandle:
    __slots__ = ("deadline", "callback", "cancelled")

    def __init__(self, deadline: float, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler(Protocol):
    """What devices and the intercom need from the loop's timers."""

    def now(self) -> float: ...

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> TimerHandle: ...


class TimerQueue:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()  # FIFO order among equal deadlines

    def now(self) -> float:
        return self._clock()

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(self._clock() + max(0.0, delay_s), callback)
        heapq.heappush(self._heap, (handle.deadline, next(self._seq), handle))
        return handle

    def timeout(self) -> float | None:
        """Seconds until the next live timer (0 if overdue), None if there is none."""
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        if not self._heap:
            return None
        return max(0.0, self._heap[0][0] - self._clock())

    def run_due(self, limit: int = 1000) -> int:
        """Run the callbacks whose deadline has passed; returns how many ran.

        `limit` bounds the work per wake-up, so a callback that keeps re-arming a zero delay
        cannot starve the loop.
        """
        ran = 0
        now = self._clock()
        while self._heap and ran < limit:
            deadline, _, handle = self._heap[0]
            if handle.cancelled:
                heapq.heappop(self._heap)
                continue
            if deadline > now:
                break
            heapq.heappop(self._heap)
            handle.cancelled = True  # fired: a later cancel() is a harmless no-op
            handle.callback()
            ran += 1
        return ran

    def __len__(self) -> int:
        return sum(1 for _, _, h in self._heap if not h.cancelled)


class ManualClock:
    """A clock for tests and simulations: time moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class AsyncioScheduler:
    """The same Scheduler on an asyncio loop (its call_later handles have cancel())."""

    def __init__(self, loop) -> None:
        self._loop = loop

    def now(self) -> float:
        return self._loop.time()

    def call_later(self, delay_s: float, callback: Callable[[], None]):
        return self._loop.call_later(max(0.0, delay_s), callback)


class ThreadTimers:
    """The Scheduler protocol on a thread of its own: callbacks run on that thread at their deadline,
    whatever the supervisor's loop is doing (a blocked loop, a slow handler, a flood of requests).

    Callbacks must be short and thread-safe: the relay's re-lock is one GPIO write. The thread sleeps
    on a condition until the earliest deadline, so it costs nothing while no pulse is pending.
    """

    def __init__(self, name: str = "timers", log: logging.Logger | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._log = log or logging.getLogger("doorstation.timers")
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def now(self) -> float:
        return self._clock()

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(self._clock() + max(0.0, delay_s), callback)
        with self._cond:
            if self._closed:
                raise RuntimeError("timer thread is closed")
            heapq.heappush(self._heap, (handle.deadline, next(self._seq), handle))
            self._cond.notify()
        return handle

    def close(self, timeout: float = 2.0) -> None:
        """Stop the thread; pending callbacks do not run (the owner locks the door itself)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _next_due(self) -> TimerHandle | None:
        """Under the condition: wait until a live timer is due; None once closed."""
        while not self._closed:
            while self._heap and self._heap[0][2].cancelled:
                heapq.heappop(self._heap)
            if not self._heap:
                self._cond.wait()
                continue
            left = self._heap[0][0] - self._clock()
            if left > 0:
                self._cond.wait(left)
                continue
            handle = heapq.heappop(self._heap)[2]
            handle.cancelled = True
            return handle
        return None

    def _run(self) -> None:
        while True:
            with self._cond:
                handle = self._next_due()
            if handle is None:
                return
            try:
                handle.callback()
            except Exception:       # one failing callback must not end the guard
                self._log.exception("timer callback failed")
