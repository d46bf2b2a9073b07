"""The hub's echo canceller (hw/echo.py, libspeexdsp) on synthetic signals: it converges on an
echo path and keeps the near end; the hub runs it between the speaker and the microphone."""
from __future__ import annotations

import array
import math
import random

import pytest

from hw.audio import AudioBridge
from hw.audio_sim import SimPcm
from hw.config import HwConfigError, parse_aec
from hw.echo import AecConfig, EchoCanceller
from hw.timers import ManualClock

RATE, FRAME = 16000, 320


def energy(x) -> float:
    return sum(v * v for v in x) + 1e-9


def frames(samples) -> list[bytes]:
    clip = [max(-32768, min(32767, int(v))) for v in samples]
    return [array.array("h", clip[i:i + FRAME]).tobytes() for i in range(0, len(clip) - FRAME + 1, FRAME)]


def test_canceller_converges_on_a_delayed_echo_and_keeps_the_near_end():
    rng = random.Random(1)
    n = RATE * 6
    far = [rng.gauss(0, 4000) for _ in range(n)]
    delay = RATE * 50 // 1000
    echo = [0.0] * delay + [0.5 * x for x in far[:n - delay]]
    near = [0.0] * n
    for i in range(RATE * 4, RATE * 5):                 # 1 s of a near-end tone in double talk
        near[i] = 6000 * math.sin(2 * math.pi * 700 * i / RATE)
    mic = [e + s for e, s in zip(echo, near, strict=True)]
    c = EchoCanceller(RATE, FRAME, AecConfig(noise_suppress_db=0))
    out = array.array("h", b"".join(c.process(m, r) for m, r in zip(frames(mic), frames(far), strict=True)))
    c.close()
    lo, hi = RATE * 3, RATE * 4                           # after 3 s, echo only
    erle = 10 * math.log10(energy(mic[lo:hi]) / energy(out[lo:hi]))
    assert erle > 20, f"ERLE {erle:.1f} dB"
    lag = FRAME                                           # speexdsp's output is one frame late
    seg = range(RATE * 4 + RATE // 4, RATE * 5 - lag)
    kept = sum(out[i + lag] * near[i] for i in seg) / energy([near[i] for i in seg])
    assert kept > 0.7, f"near end kept at {20 * math.log10(max(kept, 1e-6)):.1f} dB"


def test_hub_cancels_what_its_speaker_played():
    """On the hub: the reference is the previous tick's speaker frame. A simulated room that feeds
    the speaker back to the microphone one tick later is cancelled."""
    hub = AudioBridge(SimPcm(RATE, "silence", clock=ManualClock()), RATE)
    assert hub.echo is not None and hub.stats()["echo"]["tail_ms"] == 500
    rng = random.Random(2)
    last, before, after = bytes(hub.frame_bytes), 0.0, 0.0
    for tick in range(250):                               # 5 s
        hub.mic.push(array.array("h", (int(0.5 * x) for x in array.array("h", last))).tobytes())
        cleaned = array.array("h", hub.frame_for_call())
        far = array.array("h", (int(rng.gauss(0, 4000)) for _ in range(FRAME))).tobytes()
        hub.frame_from_call(far)
        hub.speaker.drain()
        if tick >= 200:
            before += energy(array.array("h", last)) * 0.25
            after += energy(cleaned)
        last = far
    assert 10 * math.log10(before / after) > 20


def test_aec_table_is_validated():
    assert parse_aec(None) == AecConfig()
    assert parse_aec({"enabled": False, "tail_ms": 300}).tail_ms == 300
    for bad in ({"tail_ms": 5}, {"agc": "yes"}, {"noise_suppress_db": 3}, {"what": 1}):
        with pytest.raises(HwConfigError) as e:
            parse_aec(bad)
        assert e.value.key.startswith("audio.aec.")
    assert AudioBridge(SimPcm(RATE, "silence"), RATE, echo=AecConfig(enabled=False)).echo is None


def test_peak_meter_reports_the_last_second_in_dbfs():
    from hw.audio import PeakMeter
    meter = PeakMeter(frames_per_window=3)
    assert meter.dbfs() is None
    half = array.array("h", [0, 16384, -8000, 0]).tobytes()
    for _ in range(3):
        meter.feed(half)
    assert meter.dbfs() == -6.0
    for _ in range(3):
        meter.feed(bytes(8))                       # a second of silence replaces it
    assert meter.dbfs() is None
