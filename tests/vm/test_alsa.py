"""The audio bridge on real, paced ALSA devices (snd-aloop, inside the VM lane).

Whatever is played on hw:Loopback,0,0 is captured on hw:Loopback,1,0, so a tone sent "from the
call" to the speaker comes back through the microphone. A thread stands in for pjsua2's media
clock (one tick per 20 ms), except in the last test, where pjsua2's own clock drives the port.
"""
import array
import gc
import json
import math
import os
import time
from itertools import pairwise

import pytest

from hw.audio import AlsaPcm, AudioBridge
from hw.echo import AecConfig
from tests.pj_null_endpoint import start_null_endpoint

RATE = 16000
CAPTURE = os.environ.get("DOORSTATION_ALSA_CAPTURE", "hw:Loopback,1,0")
PLAYBACK = os.environ.get("DOORSTATION_ALSA_PLAYBACK", "hw:Loopback,0,0")
OUT = os.environ.get("VMLANE_OUT")


def tone(hz, seconds, level=0.5):
    amp = int(32767 * level)
    return array.array("h", (int(amp * math.sin(2 * math.pi * hz * i / RATE))
                             for i in range(int(RATE * seconds)))).tobytes()


def analyse(pcm: bytes, seconds: float = 0.5):
    """Onset, RMS and frequency of the tone in pcm. The frequency is the median of the periods
    between rising zero crossings (interpolated), so one dropped or padded frame in the window
    (which is what drift handling does, by design) does not skew it; `glitches` counts the
    periods more than 10 % off the median."""
    s = array.array("h", pcm)
    start = next((i for i, x in enumerate(s) if abs(x) > 2000), None)
    if start is None:
        return None
    seg = s[start + RATE // 10:start + RATE // 10 + int(RATE * seconds)]   # past the onset
    rms = math.sqrt(sum(x * x for x in seg) / len(seg))
    rising = [i - 1 + seg[i - 1] / (seg[i - 1] - seg[i])
              for i in range(1, len(seg)) if seg[i - 1] < 0 <= seg[i]]
    periods = sorted(b - a for a, b in pairwise(rising))
    if not periods:
        return {"onset_ms": round(start * 1000 / RATE), "rms": round(rms), "freq_hz": 0.0, "glitches": 0}
    median = periods[len(periods) // 2]
    glitches = sum(1 for p in periods if abs(p - median) > 0.1 * median)
    return {"onset_ms": round(start * 1000 / RATE), "rms": round(rms),
            "freq_hz": round(RATE / median, 1), "glitches": glitches}


def report(name, data):
    if OUT:
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            json.dump(data, f, indent=1)


def run_clock(bridge, source: bytes, seconds: float, tick_s: float, samples=None):
    """Tick like the media clock for `seconds`; returns what the call side received."""
    got = bytearray()
    pos = 0
    n = bridge.frame_bytes
    t0 = time.monotonic()
    ticks = int(seconds / tick_s)
    for i in range(ticks):
        frame = source[pos:pos + n]
        pos = (pos + n) % (len(source) - n)
        bridge.frame_from_call(frame)
        got += bridge.frame_for_call()
        if samples is not None and i % int(1 / tick_s) == 0:
            samples.append((len(bridge.mic), len(bridge.speaker)))
        delay = t0 + (i + 1) * tick_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return bytes(got), time.monotonic() - t0


@pytest.fixture
def bridge():
    # snd-aloop plays the speaker straight back into the microphone: a perfect echo path, which the
    # echo canceller (on by default) removes. These tests measure the bridge's transport: AEC off.
    b = AudioBridge(AlsaPcm(CAPTURE, PLAYBACK, RATE), RATE, fifo_ms=200, echo=AecConfig(enabled=False))
    yield b
    b.close()


def test_tone_played_to_the_speaker_comes_back_through_the_microphone(bridge):
    got, wall = run_clock(bridge, tone(1000, 1.0), 3.0, 0.020)
    result = analyse(got)
    report("alsa-tone", {"analysis": result, "wall_s": round(wall, 2), "stats": bridge.stats()})
    assert result is not None, f"only silence came back: {bridge.stats()}"
    expected_rms = 0.5 * 32767 / math.sqrt(2)                    # 11585
    assert abs(result["rms"] - expected_rms) < 0.1 * expected_rms, result
    assert abs(result["freq_hz"] - 1000) < 10, result


def test_sixty_seconds_of_clock_drift_are_absorbed(bridge):
    """The 'media clock' runs 1% fast against the sound card for 60 s: the speaker FIFO must drop
    and the microphone FIFO pad, with both levels bounded the whole time, and audio still flowing."""
    samples = []
    got, wall = run_clock(bridge, tone(1000, 1.0), 60.0, 0.0198, samples)
    s = bridge.stats()
    tail = analyse(got[-RATE * 2 * 4:], seconds=3.0)
    report("alsa-drift", {"wall_s": round(wall, 1), "stats": s, "levels_per_s": samples,
                          "tail": tail})
    cap = bridge.mic.capacity
    assert max(m for m, _ in samples) <= cap and max(sp for _, sp in samples) <= cap
    assert s["mic"]["high_water"] <= cap and s["speaker"]["high_water"] <= cap
    # ...and the speaker could not keep up: the excess was dropped, and latency stayed near target
    assert s["speaker"]["dropped_bytes"] + s["speaker"]["trimmed_bytes"] > 0
    late = sorted(sp for _, sp in samples[-30:])
    assert late[len(late) // 2] <= 4 * bridge.frame_bytes, late
    assert s["mic"]["underruns"] > 0            # the fast clock outran the microphone
    assert tail is not None and abs(tail["freq_hz"] - 1000) < 15, tail


def test_pjsua2_media_clock_drives_the_alsa_bridge(bridge, tmp_path):
    """Far end (a simulated device playing 700 Hz) -> pjsua2 -> our port -> ALSA speaker ->
    loopback -> ALSA mic -> our port -> pjsua2 -> far end's speaker (a WAV file)."""
    pj = pytest.importorskip("pjsua2")
    import wave

    from hw.audio_sim import SimPcm
    ep = start_null_endpoint(pj)
    far_out = tmp_path / "far.wav"
    far = AudioBridge(SimPcm(RATE, "tone:700", sink=str(far_out)), RATE)
    try:
        bridge.open_port(ep, "door")
        bridge.attach(far.open_port(ep, "far"))
        end = time.monotonic() + 4.0
        for _ in range(1000):
            if time.monotonic() >= end:
                break
            ep.libHandleEvents(10)
        bridge.detach()
        stats = {"door": bridge.stats(), "far": far.stats()}
    finally:
        far.close()
        bridge._port = None
        gc.collect()
        ep.libDestroy(pj.PJSUA_DESTROY_NO_RX_MSG)
    with wave.open(str(far_out)) as w:
        back = w.readframes(w.getnframes())
    result = analyse(back)
    report("alsa-pjsua2", {"analysis": result, "stats": stats})
    assert result is not None and abs(result["freq_hz"] - 700) < 15, (result, stats)
    assert result["rms"] > 3000, result
