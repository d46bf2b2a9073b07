"""Tone checks for the audio tests: mu-law decoding (written here, independent of the station's
codec), WAV reading and a Goertzel detector (the power of one frequency in a block)."""
from __future__ import annotations

import array
import math
import wave


def mulaw_to_pcm(data: bytes) -> list[int]:
    out = []
    for u in data:
        u = ~u & 0xFF
        exp, mant = (u >> 4) & 7, u & 0x0F
        s = (((mant << 3) + 0x84) << exp) - 0x84
        out.append(-s if u & 0x80 else s)
    return out


def pcm_to_mulaw(samples) -> bytes:
    out = bytearray()
    for s in samples:
        sign = 0x80 if s < 0 else 0
        s = min(abs(int(s)), 32635) + 0x84
        exp = max(0, (s >> 7).bit_length() - 1)
        out.append(~(sign | (exp << 4) | ((s >> (exp + 3)) & 0x0F)) & 0xFF)
    return bytes(out)


def tone(hz: float, rate: int, seconds: float, level: float = 0.5) -> list[int]:
    return [int(32767 * level * math.sin(2 * math.pi * hz * i / rate)) for i in range(int(rate * seconds))]


def read_wav(path) -> tuple[list[int], int]:
    with wave.open(str(path), "rb") as w:
        return list(array.array("h", w.readframes(w.getnframes()))), w.getframerate()


def goertzel(samples, rate: int, hz: float) -> float:
    """Power of `hz` in samples, normalised by the block's length (amplitude^2 / 4 for a pure tone)."""
    k = 2 * math.cos(2 * math.pi * hz / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    return (s1 * s1 + s2 * s2 - k * s1 * s2) / (len(samples) ** 2)


def dominant(samples, rate: int, candidates) -> float:
    """The candidate frequency with the most power in the block."""
    return max(candidates, key=lambda hz: goertzel(samples, rate, hz))


def tone_blocks(samples, rate: int, hz: float, others, block_s: float = 0.1, min_level: float = 300.0) -> int:
    """How many blocks hold `hz` above every other candidate and above a floor (amplitude)."""
    n = int(rate * block_s)
    count = 0
    for i in range(0, len(samples) - n + 1, n):
        block = samples[i:i + n]
        p = goertzel(block, rate, hz)
        if p > (min_level ** 2) / 4 and all(p > 4 * goertzel(block, rate, o) for o in others):
            count += 1
    return count
