"""One echo-path run in the VM lane: the station's audio hub on snd-aloop, the room between its
speaker and microphone (tests/vm/echo_room.py, its own process), and a media clock that plays the
far end's speech to the hub's speaker and keeps what the hub's microphone side gives the call
(after its echo canceller). Used by bench/vm_echo.py and tests/vm/test_echo_path.py; the figures
come from tests/echo_figures.py. Nothing here asserts.

The hub is built the way the supervisor builds it: hardware.toml's [audio] table through
hw.config.parse_audio and hw.backends.open_audio (AlsaPcm + AudioBridge + EchoCanceller). Its
clock here is a thread ticking every 20 ms (as tests/vm/test_alsa.py does), calling the two
callbacks in pjmedia's conference-bridge order (the port's frame is read, then the mix is put).

Why not the whole `doorstation run` with transmit.cgi/receive.cgi: tried first (the bench's
history in docs/audio.md): under qemu TCG, with another VM on the same two host cores, the
supervisor used 97-107 % of a vCPU with the canceller on or off (pjmedia's clock, the stream
sockets, the HTTP processes), the microphone FIFO overflowed hundreds to thousands of times and
seconds of audio were dropped: the figures measured the emulator, not the canceller. The HTTP
audio path is tested on its own (tests/test_vms_audio.py, tests/vm/test_alsa.py).
"""
from __future__ import annotations

import array
import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from hw.g711 import Resampler
from tests.harness import REPO
from tests.vm.rig import STATION_CAPTURE, STATION_PLAYBACK

RATE = 16000                 # the hub's default sample_rate
# The VM lane runs the hub at 8 kHz (G.711's rate, receive.cgi's): at 16 kHz its two callbacks
# (canceller, Python) took 44-93 % of a vCPU under qemu TCG on a host shared with another VM, the
# clock fell behind (up to 996 of 1000 ticks late) and the FIFOs' levels, part of the echo path,
# moved under the canceller. bench/aec.py measures the canceller at 16 kHz offline.
LANE_RATE = 8000
FAR_TEXT = ("The door station speaker says this sentence while the visitor waits outside. "
            "Please hold the line, somebody will come to the door in a moment. ") * 3
NEAR_TEXT = "Hello, I have a parcel for number twelve, can you open the door please? " * 2


def speech(workdir: Path, rate: int = RATE) -> tuple[bytes, bytes]:
    """(far, near): S16_LE mono at `rate`, made with espeak-ng (bench/aec.py's voices, 16 kHz)."""
    from bench.aec import RATE as SPEAK_RATE
    from bench.aec import speak
    far = speak(FAR_TEXT, "en", workdir)
    near = speak(NEAR_TEXT, "en+f3", workdir)

    def pcm(xs: list[float], gain: float) -> bytes:
        s16 = array.array("h", (max(-32768, min(32767, int(gain * v))) for v in xs)).tobytes()
        return Resampler(SPEAK_RATE, rate).process(s16)
    return pcm(far, 1.0), pcm(near, 0.7)


def hardware_toml(aec: bool, tail_ms: int = 200, rate: int = RATE) -> str:
    return f"""
[audio]
capture_device = "{STATION_CAPTURE}"
playback_device = "{STATION_PLAYBACK}"
sample_rate = {rate}
fifo_ms = 200
target_ms = 40
[audio.aec]
enabled = {"true" if aec else "false"}
tail_ms = {tail_ms}
"""


def open_hub(aec: bool, tail_ms: int = 200, rate: int = RATE):
    from hw.backends import open_audio
    from hw.config import parse_audio
    return open_audio(parse_audio(tomllib.loads(hardware_toml(aec, tail_ms, rate))["audio"]))


def realtime() -> bool:
    """SCHED_FIFO for the calling thread (root in the guest): fewer late ticks under emulation."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        return True
    except (OSError, AttributeError):
        return False


def run_once(out: Path, far: bytes, near_raw: Path, delay_ms: int, aec: bool, tail_ms: int = 200,
             gain_db: float = -6.0, solo_s: float = 2.0, far_alone_s: float = 10.0,
             double_talk_s: float = 4.0, rate: int = RATE) -> dict:
    """One delay, one hub: tracks to `out` (the room's files, output.raw = what the call got,
    run.json); returns run.json."""
    out.mkdir(parents=True, exist_ok=True)
    hub = open_hub(aec, tail_ms, rate)
    fb = hub.frame_bytes
    room_s = 0.5 + solo_s + 1.0 + far_alone_s + double_talk_s + 1.0
    room = subprocess.Popen([sys.executable, "-m", "tests.vm.echo_room", "--out", str(out), "--near", str(near_raw),
                             "--rate", str(rate), "--delay-ms", str(delay_ms), "--gain-db", str(gain_db),
                             "--solo", str(solo_s), "--far-alone", str(far_alone_s),
                             "--double-talk", str(double_talk_s), "--max-s", str(room_s + 30)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    output = bytearray()
    at_far: dict = {}
    speaker = bytearray()                        # the frames the clock put, i.e. the canceller's reference
    late = 0
    cpu_ns = 0
    try:
        ready = room.stdout.readline().strip() == "ready"   # Python starts slowly under emulation
        rt = realtime()
        far_from = int((0.5 + solo_s + 1.0) * 50)            # ticks: the near end alone first
        ticks = int((room_s + 1.5) * 50)
        silence = bytes(fb)
        t0 = time.monotonic()
        for i in range(ticks):
            if room.poll() is not None and i > far_from:
                break
            k = (i - far_from) * fb % len(far)
            frame = far[k:k + fb] if i >= far_from and k + fb <= len(far) else silence
            if i == far_from:
                at_far = hub.stats()
            c = time.thread_time_ns()
            output += hub.frame_for_call()       # the port's frame: microphone after the canceller
            hub.frame_from_call(frame)           # the mix: to the speaker
            speaker += frame
            cpu_ns += time.thread_time_ns() - c
            delay = t0 + (i + 1) * 0.020 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.020:
                late += 1                        # a tick more than a frame late
        wall = time.monotonic() - t0
        if rt:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        try:
            _, stderr = room.communicate(timeout=room_s + 60)
        except subprocess.TimeoutExpired:
            room.kill()
            _, stderr = room.communicate()
        stats = hub.stats()
    finally:
        if room.poll() is None:
            room.kill()
            room.wait(10)
        hub.close()
    info = json.loads((out / "room.json").read_text()) if (out / "room.json").exists() else {}
    (out / "output.raw").write_bytes(bytes(output))
    (out / "reference.raw").write_bytes(bytes(speaker))
    run = {"delay_ms": delay_ms, "aec": aec, "tail_ms": tail_ms, "gain_db": gain_db, "rate": rate,
           "room_rc": room.returncode, "room_ready": ready, "room_stderr": stderr[-2000:], "clock_t0": t0,
           "room_t_first_write": info.get("t_first_write"), "ticks": len(output) // fb, "late_ticks": late,
           "clock_sched_fifo": rt, "hub_cpu_pct": round(100 * cpu_ns / 1e9 / max(wall, 1e-3), 2),
           "hub": {k: stats.get(k) for k in ("mic", "speaker", "device", "echo", "device_errors")},
           "hub_at_far_start": {k: at_far.get(k) for k in ("mic", "speaker", "device")}}
    run["disruptions"] = disruptions(run, info)
    (out / "run.json").write_text(json.dumps(run, indent=1))
    return run


def disruptions(run: dict, room: dict) -> dict:
    """What moved the echo path from the far end's start on: the room's xruns, the hub's FIFO
    under/overruns and latency trims, the ALSA devices' xruns (each shifts the delay between what
    the speaker played and what the microphone hears, which the canceller must learn again)."""
    out = {"room": room.get("overruns_after_onset", 0) + room.get("underruns_after_onset", 0)}
    end, start = run["hub"], run.get("hub_at_far_start") or {}
    for fifo in ("mic", "speaker"):
        for k in ("underruns", "overruns", "trims"):
            out[f"{fifo}_{k}"] = ((end.get(fifo) or {}).get(k) or 0) - ((start.get(fifo) or {}).get(k) or 0)
    for k in ("capture_overruns", "playback_xruns"):
        out[k] = ((end.get("device") or {}).get(k) or 0) - ((start.get("device") or {}).get(k) or 0)
    out["total"] = sum(out.values())
    return out


def approx_lag(run: dict) -> int:
    """The lag (8 kHz samples, tests/echo_figures.py's sign) implied by the clocks: the room's first
    sample reached the hub's output about (room start - clock start) into it."""
    if run.get("room_t_first_write") is None:
        return 0
    return -round((run["room_t_first_write"] - run["clock_t0"]) * 8000)


def output_8k(run_dir: Path, rate: int, pcm: bytes | None = None) -> bytes:
    """The hub's output (or `pcm` at the hub's rate) brought to 8 kHz (the room's tracks get the
    same resampler)."""
    return Resampler(rate, 8000).process((run_dir / "output.raw").read_bytes() if pcm is None else pcm)


def replay(run_dir: Path, rate: int, config) -> bytes:
    """The hub's canceller (hw.echo.EchoCanceller with `config`) on the frames of a run recorded
    with it off, paired exactly as AudioBridge pairs them: the microphone frame of tick i (what
    the hub gave the call) with the speaker frame of tick i-1 (`_echo_ref`). The output is what
    the hub with that config would have given the call, had the clock's timing been the same."""
    from hw.echo import EchoCanceller
    mic = (run_dir / "output.raw").read_bytes()
    ref = (run_dir / "reference.raw").read_bytes()
    fb = rate // 50 * 2
    ec = EchoCanceller(rate, fb // 2, config)
    try:
        prev = bytes(fb)
        out = bytearray()
        for i in range(0, min(len(mic), len(ref)) - fb + 1, fb):
            out += ec.process(mic[i:i + fb], prev)
            prev = ref[i:i + fb]
        return bytes(out)
    finally:
        ec.close()
