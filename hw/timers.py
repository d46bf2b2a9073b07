"""One-shot timers driven by the owner's poll loop (no threads).

The supervisor owns one TimerQueue: it uses `timeout()` as its poll timeout and calls `run_due()`
after every wake-up. Hardware devices (LED blinking, relay pulses) and the intercom schedule on it,
so every output change happens on the loop thread — never in a request thread or a timer thread.
The clock is passed in so unit tests can drive time by hand.
"""
from __future__ import annotations

import heapq
import itertools
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
