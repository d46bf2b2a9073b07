"""Simulated audio device: a microphone that plays a tone or a WAV file, a speaker that writes a
WAV file (or discards). Same non-blocking `Pcm` interface as AlsaPcm, and paced by a clock like a
real device: read() returns what a microphone would have captured since the last read, and
write() accepts only what a speaker's buffer would hold. `clock_factor` makes the simulated device
clock run fast or slow, to exercise drift handling without hardware.
"""
from __future__ import annotations

import array
import math
import time
import wave
from typing import Callable

from hw.audio import SAMPLE_BYTES, AudioDeviceError


def _tone(rate: int, hz: float, level: float = 0.5) -> bytes:
    # a whole number of cycles over one second, so the loop is seamless
    amp = int(32767 * level)
    return array.array("h", (int(amp * math.sin(2 * math.pi * hz * i / rate))
                             for i in range(rate))).tobytes()


def _read_wav(path: str, rate: int) -> bytes:
    try:
        with wave.open(path, "rb") as w:
            if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, rate):
                raise AudioDeviceError(path, f"must be mono 16-bit {rate} Hz WAV")
            return w.readframes(w.getnframes()) or bytes(SAMPLE_BYTES)
    except (OSError, wave.Error) as e:
        raise AudioDeviceError(path, str(e)) from None


class SimPcm:
    def __init__(self, rate: int = 16000, source: str = "tone:440", sink: str | None = None,
                 clock: Callable[[], float] = time.monotonic, clock_factor: float = 1.0,
                 buffer_ms: int = 80) -> None:
        self.rate = rate
        if source == "silence":
            self._source = bytes(rate * SAMPLE_BYTES // 10)
        elif source.startswith("tone:"):
            self._source = _tone(rate, float(source[5:]))
        else:
            self._source = _read_wav(source, rate)
        self._pos = 0
        self._clock = clock
        self._bytes_per_s = rate * SAMPLE_BYTES * clock_factor
        self._buffer = rate * SAMPLE_BYTES * buffer_ms // 1000
        self._last_read = clock()
        self._play_t = clock()
        self._queued = 0.0          # bytes in the simulated speaker buffer
        self._wav = None
        if sink:
            self._wav = wave.open(sink, "wb")
            self._wav.setnchannels(1)
            self._wav.setsampwidth(SAMPLE_BYTES)
            self._wav.setframerate(rate)
        self.captured_bytes = 0
        self.played_bytes = 0
        self.playback_xruns = 0

    def read(self) -> bytes:
        now = self._clock()
        n = int((now - self._last_read) * self._bytes_per_s)
        n -= n % SAMPLE_BYTES
        n = min(n, self._buffer)                      # a device buffer only holds so much
        if n <= 0:
            return b""
        self._last_read = now
        out = bytearray()
        while len(out) < n:
            chunk = self._source[self._pos:self._pos + n - len(out)]
            out += chunk
            self._pos = (self._pos + len(chunk)) % len(self._source)
        self.captured_bytes += n
        return bytes(out)

    def write(self, data: bytes) -> int:
        now = self._clock()
        drained = (now - self._play_t) * self._bytes_per_s
        self._play_t = now
        if drained > self._queued and self.played_bytes:
            self.playback_xruns += 1                  # the speaker ran dry before this write
        self._queued = max(0.0, self._queued - drained)
        room = int(self._buffer - self._queued)
        room -= room % SAMPLE_BYTES
        taken = data[:max(0, room)]
        if not taken:
            return 0
        self._queued += len(taken)
        self.played_bytes += len(taken)
        if self._wav is not None:
            self._wav.writeframes(taken)
        return len(taken)

    def stats(self) -> dict[str, int]:
        return {"captured_bytes": self.captured_bytes, "played_bytes": self.played_bytes,
                "playback_xruns": self.playback_xruns}

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None
