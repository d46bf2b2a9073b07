"""The bridge inside a real pjsua2 conference bridge (null sound device clock, no SIP needed).

Two bridges on simulated devices are connected to each other exactly as attach() connects a
call's audio media: A's microphone (a 1 kHz tone) must come out of B's speaker, and B's ring-back
must replace it while on. This exercises the AudioMediaPort callbacks and the frame.buf fast path.
"""
import gc
import time
import wave
from pathlib import Path

import pytest

from hw.audio import AudioBridge, RingbackTone, fast_bytes, fast_path_ok
from hw.audio_sim import SimPcm
from tests.hw.test_audio import freq, rms
from tests.pj_null_endpoint import start_null_endpoint

pj = pytest.importorskip("pjsua2")
RATE = 16000


@pytest.fixture(scope="module")
def endpoint():
    ep = start_null_endpoint(pj)
    yield ep
    gc.collect()                      # ports must be destroyed before the library is
    ep.libDestroy(pj.PJSUA_DESTROY_NO_RX_MSG)


def pump(ep, seconds):
    end = time.monotonic() + seconds
    for _ in range(1000):
        if time.monotonic() >= end:
            break
        ep.libHandleEvents(10)


def pump_until(ep, done, seconds=15.0):
    """Pump until `done()` (frame counts: the null device's clock thread may lag on a loaded
    machine, so a fixed time would give a varying number of frames), at most `seconds`."""
    end = time.monotonic() + seconds
    for _ in range(3000):
        if done() or time.monotonic() >= end:
            break
        ep.libHandleEvents(10)


def test_fast_frame_buffer_path_agrees_with_swig():
    assert fast_path_ok()
    data = bytes(range(256)) * 3
    assert fast_bytes(pj.ByteVector(data)) == data == bytes(pj.ByteVector(data))


def test_tone_flows_through_the_conference_bridge_and_ringback_replaces_it(endpoint, tmp_path):
    out = tmp_path / "b-speaker.wav"
    a = AudioBridge(SimPcm(RATE, "tone:1000"), RATE)
    b = AudioBridge(SimPcm(RATE, "silence", sink=str(out)), RATE,
                    ringback=RingbackTone(RATE, 425.0, 1000, 0, 0.25))
    # what the SIP engine's media_hook does with the call's AudioMedia (b's port opens on first use)
    b.media_hook("call-1", a.open_port(endpoint, "a"))
    assert b.call_id == "call-1"
    pump_until(endpoint, lambda: a.frames_out >= 75 and b.frames_in >= 75 and b.pcm.played_bytes >= 3 * RATE)
    ring_from = b.pcm.played_bytes
    b.start()                         # ring-back on B's speaker
    pump_until(endpoint, lambda: b.pcm.played_bytes - ring_from >= 2 * RATE * 3 // 2)   # 1.5 s of it
    b.stop()
    ring_to = b.pcm.played_bytes
    b.detach()
    frames = b.frames_in
    pump(endpoint, 0.3)
    assert b.frames_in == frames      # no call, no ring-back: the ticks do nothing
    assert not b.stats()["active"]
    b.start()                         # ring-back alone: frames are worked on again
    pump_until(endpoint, lambda: b.frames_in > frames + 5)
    assert b.frames_in > frames and b.stats()["active"]
    b.stop()
    a.close()
    b.close()
    with wave.open(str(out)) as w:
        played = w.readframes(w.getnframes())
    second = RATE * 2
    assert 40 <= a.frames_out and 100 <= b.frames_in              # ~50 frames per second
    assert a.frames_in >= 40          # a is only connected by b's attach: still fed what b sends
    call_part = played[second // 2:second * 3 // 2]
    ring_part = played[ring_from + second // 5:ring_to]     # skip the speaker buffer's latency
    assert abs(freq(call_part) - 1000) < 20 and rms(call_part) > 5000
    assert abs(freq(ring_part) - 425) < 10


def test_port_survives_endpoint_restart_without_aborting(tmp_path):
    """Run in a child process: an abort (pjmedia assertion) must show up as a failed exit code."""
    import subprocess
    import sys
    import textwrap
    script = textwrap.dedent("""
        import json
        import pjsua2 as pj
        from hw.audio import AudioBridge
        from hw.audio_sim import SimPcm

        def endpoint():
            ep = pj.Endpoint(); ep.libCreate()
            cfg = pj.EpConfig(); cfg.uaConfig.threadCnt = 0; cfg.uaConfig.mainThreadOnly = False
            cfg.logConfig.level = 0; cfg.logConfig.consoleLevel = 0
            ep.libInit(cfg); ep.libStart(); ep.audDevManager().setNullDev()
            return ep

        bridge = AudioBridge(SimPcm(16000, "tone:440"), 16000)
        counts = []
        for _ in range(2):                       # the engine may stop and start the library
            ep = endpoint()
            bridge.open_port()                   # second time: the stale port is replaced
            bridge.start()                       # ring-back: the port works on its frames
            before = bridge.frames_in
            for _ in range(30):
                ep.libHandleEvents(10)
            counts.append(bridge.frames_in - before)
            ep.libDestroy(pj.PJSUA_DESTROY_NO_RX_MSG)
            del ep
        print("FRAMES", json.dumps(counts))
    """)
    repo = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=repo, env={"PYTHONPATH": repo})
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("FRAMES "))
    counts = __import__("json").loads(line[len("FRAMES "):])
    assert all(c >= 5 for c in counts), counts
