"""G.711 mu-law (ITU-T G.711, the segment/mantissa form) and integer-ratio resampling, pure Python.
Used by the hub (receivers: one encoding per frame for all) and the API process (transmitters).

Tables are built once: decoding is one lookup per byte, encoding one lookup per 16-bit sample
(a 64 KiB table indexed by the sample as unsigned). At 16 kHz that is 320 lookups per 20 ms frame.
The resampler is deliberately simple (linear interpolation up, box average down): speech at 8 or
16 kHz through a door-station speaker does not need more, and it costs no dependency.
"""
from __future__ import annotations

import array
import struct

BIAS = 0x84
CLIP = 32635


def _encode_sample(s: int) -> int:
    sign = 0x80 if s < 0 else 0
    if s < 0:
        s = -s
    s = min(s, CLIP) + BIAS
    exponent = max(0, (s >> 7).bit_length() - 1)
    mantissa = (s >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _decode_byte(u: int) -> int:
    u = ~u & 0xFF
    exponent, mantissa = (u >> 4) & 0x07, u & 0x0F
    s = (((mantissa << 3) + BIAS) << exponent) - BIAS
    return -s if u & 0x80 else s


_DECODE = [struct.pack("<h", _decode_byte(u)) for u in range(256)]
_ENCODE = bytes(_encode_sample(v if v < 32768 else v - 65536) for v in range(65536))


def mulaw_decode(data: bytes) -> bytes:
    """mu-law bytes -> S16_LE PCM (two bytes per input byte)."""
    return b"".join(map(_DECODE.__getitem__, data))


def mulaw_encode(pcm: bytes) -> bytes:
    """S16_LE PCM (an even number of bytes) -> mu-law bytes."""
    return bytes(map(_ENCODE.__getitem__, array.array("H", pcm[:len(pcm) - len(pcm) % 2])))


class Resampler:
    """S16 mono from `src` Hz to `dst` Hz where one divides the other. Keeps the last input sample
    between calls, so frames of any size join without clicks."""

    def __init__(self, src: int, dst: int) -> None:
        if src <= 0 or dst <= 0 or (src % dst and dst % src):
            raise ValueError(f"cannot resample {src} Hz to {dst} Hz (one must divide the other)")
        self.up = dst // src if dst >= src else 1
        self.down = src // dst if src > dst else 1
        self._last = 0
        self._pending = array.array("h")

    def process(self, pcm: bytes) -> bytes:
        if self.up == 1 and self.down == 1:
            return pcm
        samples = array.array("h", pcm[:len(pcm) - len(pcm) % 2])
        if self.up > 1:
            out = array.array("h")
            k, last = self.up, self._last
            for x in samples:
                step = x - last
                out.extend(last + step * j // k for j in range(1, k + 1))
                last = x
            self._last = last
            return out.tobytes()
        buf = self._pending + samples
        k = self.down
        whole = len(buf) - len(buf) % k
        out = array.array("h", (sum(buf[i:i + k]) // k for i in range(0, whole, k)))
        self._pending = buf[whole:]
        return out.tobytes()
