"""Log lines whose text a remote peer controls (pjsip quotes an unparsable packet whole in its
error line): escaped so they cannot forge log lines, truncated, and rate-limited so a flood of
garbage packets cannot fill the log. Pure Python, no pjsua2, so it is unit-tested on its own."""
from __future__ import annotations

import threading
import time
from typing import Callable

LINE_LIMIT = 200        # characters of an error/warning line kept (after escaping)
RATE = 2.0              # error/warning lines per second allowed on average...
BURST = 20              # ...after a burst of this many

_NAMED = {"\r": "\\r", "\n": "\\n", "\t": "\\t", "\\": "\\\\"}


def escape(text: str, limit: int = LINE_LIMIT) -> str:
    """One printable line: CR, LF, tab and backslash as \\r \\n \\t \\\\, every other character that
    is not printable (controls, U+2028, lone surrogates, ...) as \\xNN / \\uNNNN; at most `limit`
    characters, then `... (<n> chars)` with the length of the original."""
    out: list[str] = []
    size = 0
    for ch in text:
        piece = _NAMED.get(ch) or (ch if ch.isprintable() else
                                   f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        if size + len(piece) > limit:
            return "".join(out) + f"... ({len(text)} chars)"
        out.append(piece)
        size += len(piece)
    return "".join(out)


class TokenBucket:
    """`admit()` is True while tokens last (one per line, `rate` per second refilled up to `burst`).
    `take_suppressed()` returns how many lines were refused since it was last called."""

    def __init__(self, rate: float = RATE, burst: int = BURST,
                 clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tokens = float(burst)
        self._last = clock()
        self._suppressed = 0
        self._lock = threading.Lock()   # pjsip logs from its worker and media threads too

    def admit(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            self._suppressed += 1
            return False

    def take_suppressed(self) -> int:
        with self._lock:
            count, self._suppressed = self._suppressed, 0
            return count
