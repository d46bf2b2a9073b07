"""DTMF sequence matching for one call: pure logic, no SIP, clock passed in.

Rules (the precise definition the engine and the tests rely on):

* A *run* is the digits received since the last match, wrong sequence or timeout reset.
* Sliding window: after every digit, if some trigger sequence is a suffix of the run, that trigger
  matches; its event id is returned and the run is cleared. So `99#1234#` still matches `#1234#`
  (provided the `99#` part did not clear the run: see the `#` rule, which keeps the `#`).
* A sequence is *wrong* (counted once) when one of these ends a run without a match:
  1. inter-digit timeout: no digit for `inter_digit_timeout` seconds and the run holds at least one
     digit other than `#`;
  2. `#` terminator: a `#` arrives, nothing matches, the run holds a digit other than `#`, and the
     run is not the beginning of any trigger (so a `#` inside a trigger such as `12#34` is fine).
     The run is then reset to `#`, because that `#` may start the next sequence (`5#1234#`);
  3. over-length: the run reaches twice the longest trigger length without a match (continuous
     digit streams cannot try codes forever); the run keeps its last (longest-1) digits so the
     window keeps sliding.
* After `max_wrong` wrong sequences the matcher locks: every further digit is ignored.
* A matcher with no triggers (an account without DTMF configuration) never matches and never
  counts anything: DTMF on such calls triggers nothing.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Mapping

DTMF_DIGITS = frozenset("0123456789*#ABCD")
DEFAULT_INTER_DIGIT_TIMEOUT = 5.0
DEFAULT_MAX_WRONG = 5


@dataclass(frozen=True)
class DtmfResult:
    """What one digit (or one tick) did. `event_id` is set on a match."""
    event_id: str | None = None
    wrong_added: int = 0       # wrong sequences counted by this step (0..2: timeout + '#')
    ignored: bool = False      # digit ignored: matcher locked, no triggers, or not a DTMF digit
    locked_now: bool = False   # this step reached max_wrong


class DtmfMatcher:
    def __init__(self, triggers: Mapping[str, str], *,
                 inter_digit_timeout: float = DEFAULT_INTER_DIGIT_TIMEOUT,
                 max_wrong: int = DEFAULT_MAX_WRONG,
                 clock: Callable[[], float] = time.monotonic):
        """`triggers`: DTMF sequence -> DTMF event id (a sequence triggers one event only)."""
        self._triggers = {seq.upper(): ev for seq, ev in triggers.items() if seq}
        self._longest = max((len(s) for s in self._triggers), default=0)
        self._timeout = inter_digit_timeout
        self._max_wrong = max_wrong
        self._clock = clock
        self._run = ""
        self._last_digit_at: float | None = None
        self.wrong = 0

    @property
    def locked(self) -> bool:
        return self.wrong >= self._max_wrong

    @property
    def active(self) -> bool:
        return bool(self._triggers)

    def tick(self, now: float | None = None) -> DtmfResult:
        """Close a run whose inter-digit timeout has passed (call it periodically)."""
        now = self._clock() if now is None else now
        if self.locked or not self._triggers:
            return DtmfResult()
        added = self._expire(now)
        return DtmfResult(wrong_added=added, locked_now=added > 0 and self.locked)

    def feed(self, digit: str, now: float | None = None) -> DtmfResult:
        now = self._clock() if now is None else now
        digit = digit.upper()
        if not self._triggers or self.locked or digit not in DTMF_DIGITS:
            return DtmfResult(ignored=True)
        added = self._expire(now)
        if self.locked:
            return DtmfResult(wrong_added=added, ignored=True, locked_now=True)
        self._last_digit_at = now
        self._run += digit
        for seq, event_id in self._triggers.items():
            if self._run.endswith(seq):
                self._run = ""
                return DtmfResult(event_id=event_id, wrong_added=added)
        if digit == "#" and self._has_real_digit() and not self._is_prefix(self._run):
            added += self._count_wrong()
            self._run = "#"
        elif len(self._run) >= 2 * self._longest:
            added += self._count_wrong()
            self._run = self._run[-(self._longest - 1):] if self._longest > 1 else ""
        return DtmfResult(wrong_added=added, locked_now=added > 0 and self.locked)

    # -- helpers ---------------------------------------------------------------------------
    def _expire(self, now: float) -> int:
        if self._last_digit_at is None or now - self._last_digit_at < self._timeout:
            return 0
        real = self._has_real_digit()
        self._run = ""
        self._last_digit_at = None
        return self._count_wrong() if real else 0

    def _count_wrong(self) -> int:
        self.wrong += 1
        return 1

    def _has_real_digit(self) -> bool:
        return any(d != "#" for d in self._run)

    def _is_prefix(self, run: str) -> bool:
        return any(seq.startswith(run) and seq != run for seq in self._triggers)
