"""Audio bridge core on the simulated device: FIFOs, drift, ring-back (host side, manual clock)."""
import array
import math
from itertools import pairwise

import pytest

from hw.audio import AudioBridge, ByteFifo, RingbackTone
from hw.audio_sim import SimPcm
from hw.echo import AecConfig
from hw.timers import ManualClock

RATE = 16000
NO_AEC = AecConfig(enabled=False)


def rms(pcm: bytes) -> float:
    s = array.array("h", pcm)
    return math.sqrt(sum(x * x for x in s) / max(1, len(s)))


def freq(pcm: bytes, rate: int = RATE) -> float:
    s = array.array("h", pcm)
    crossings = sum(1 for a, b in pairwise(s) if (a < 0) != (b < 0))
    return crossings / 2 / (len(s) / rate)


def test_fifo_drops_oldest_when_full_and_pads_when_short():
    f = ByteFifo(8)
    f.push(b"\x01\x00\x02\x00\x03\x00")
    f.push(b"\x04\x00\x05\x00")                     # 10 bytes into 8: the oldest sample goes
    assert (len(f), f.overruns, f.dropped_bytes) == (8, 1, 2)
    assert f.pop(4) == b"\x02\x00\x03\x00"
    assert f.pop(6) == b"\x04\x00\x05\x00\x00\x00"  # short: padded with silence
    assert (f.underruns, f.padded_bytes, f.high_water) == (1, 2, 8)


def test_fifo_keeps_sample_alignment_on_odd_drops():
    f = ByteFifo(6)
    f.push(bytes(5))
    f.push(bytes(3))
    assert len(f) % 2 == 0 and len(f) <= 6


def test_ringback_cadence_and_frequency():
    tone = RingbackTone(RATE, 425.0, on_ms=1000, off_ms=4000, level=0.25)
    on = tone.next(RATE * 2)                        # first second
    off = tone.next(RATE * 2 * 4)                   # next four
    assert 0.25 * 32767 / math.sqrt(2) * 0.95 < rms(on) < 0.25 * 32767 / math.sqrt(2) * 1.05
    assert abs(freq(on) - 425) < 3
    assert rms(off) == 0
    assert tone.next(640) == on[:640]               # cadence repeats


@pytest.mark.parametrize("device_factor", [1.01, 0.99])
def test_sixty_seconds_of_drift_stay_bounded(device_factor):
    """The device clock runs 1% fast or slow against the 20 ms media clock for 60 s."""
    clock = ManualClock()
    pcm = SimPcm(RATE, "tone:1000", clock=clock, clock_factor=device_factor)
    bridge = AudioBridge(pcm, RATE, fifo_ms=200, echo=NO_AEC)   # the FIFOs alone
    got = bytearray()
    for _ in range(3000):                           # 3000 ticks x 20 ms = 60 s
        clock.advance(0.020)
        bridge.frame_from_call(bytes(bridge.frame_bytes))
        got += bridge.frame_for_call()
    s = bridge.stats()
    cap = bridge.mic.capacity
    assert s["mic"]["high_water"] <= cap and s["speaker"]["high_water"] <= cap
    if device_factor > 1:     # the mic produces more than the call consumes: old audio dropped
        dropped = s["mic"]["dropped_bytes"] + s["mic"]["trimmed_bytes"]
        assert dropped >= 0.005 * 60 * RATE * 2
        assert len(bridge.mic) <= 4 * bridge.frame_bytes       # latency held near the 40 ms target
    else:                     # the mic falls behind: silence padded
        assert s["mic"]["underruns"] > 0 and s["mic"]["padded_bytes"] >= 0.005 * 60 * RATE * 2
    assert abs(freq(bytes(got[-RATE * 2:])) - 1000 * device_factor) < 15   # audio still flows


def test_ringback_replaces_call_audio_on_the_speaker_while_active(tmp_path):
    import wave
    clock = ManualClock()
    out = tmp_path / "speaker.wav"
    pcm = SimPcm(RATE, "silence", sink=str(out), clock=clock, buffer_ms=1000)
    bridge = AudioBridge(pcm, RATE, ringback=RingbackTone(RATE, 425.0, 1000, 4000, 0.25))
    bridge.start()
    for _ in range(25):                             # 500 ms of ring-back
        clock.advance(0.020)
        bridge.frame_from_call(bytes(bridge.frame_bytes))
    bridge.stop()
    call_audio = SimPcm(RATE, "tone:800", clock=clock)
    for _ in range(25):                             # then 500 ms of call audio
        clock.advance(0.020)
        bridge.frame_from_call(call_audio.read())
    pcm.close()
    with wave.open(str(out)) as w:
        played = w.readframes(w.getnframes())
    ring = RATE * 2 // 2                            # 25 frames x 20 ms of ring-back, in bytes
    assert abs(freq(played[:ring]) - 425) < 5 and abs(freq(played[ring:]) - 800) < 5


def test_device_errors_are_counted_not_raised():
    from hw.audio import AudioDeviceError

    class BrokenPcm:
        def read(self):
            raise AudioDeviceError("capture", "device unplugged")

        def write(self, data):
            return 0

        def close(self):
            pass
    bridge = AudioBridge(BrokenPcm(), RATE)
    assert bridge.frame_for_call() == bytes(bridge.frame_bytes)
    assert bridge.device_errors == 1 and "unplugged" in bridge.last_error


def test_latency_trimmer_cuts_standing_level_to_target_but_keeps_jitter_headroom():
    from hw.audio import LatencyTrimmer
    f = ByteFifo(10_000)
    trimmer = LatencyTrimmer(f, target=1000, window_ticks=10)
    f.push(bytes(3000))
    for _ in range(10):                  # level never below 3000 during the window
        trimmer.tick()
    assert len(f) == 1000 and f.trims == 1 and f.trimmed_bytes == 2000
    for i in range(10):                  # a window that touched 0 once: nothing to trim
        f.push(bytes(500)) if i else f.pop(len(f))
        trimmer.tick()
    assert f.trims == 1
