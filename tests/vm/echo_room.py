"""A "room" between the station's speaker and its microphone, on snd-aloop (VM lane only).

    python -m tests.vm.echo_room --out DIR --near NEAR.raw [--delay-ms 50] [--gain-db -6] ...

It captures what the station plays (its speaker: hw:Loopback,0,1 -> we read hw:Loopback,1,1),
delays it by `delay` ms, attenuates it, adds three weaker reflections (5-40 ms later, as walls
would), adds the visitor's voice (near end, an S16 raw file at the station's rate) and plays the sum into the
station's microphone (we write hw:Loopback,0,0 -> it captures hw:Loopback,1,0).

Timeline (frames of 20 ms, counted from the room's first frame):
- near end alone from 0.5 s for `solo` s: the analysis aligns the station's output with it;
- far-end onset: the first frame after the solo whose speaker peak is above -36 dBFS (the far end
  is whatever the test sends to the speaker, e.g. transmit.cgi);
- double talk: the near end speaks again from onset + `far_alone` s for `double_talk` s;
- the room stops `after` s later (or at `max_s`, whatever comes first).

It writes to DIR: speaker.raw (what it captured), mic.raw (what it played to the microphone),
near.raw (the near-end part of mic.raw, same indexes), room.json (frame indexes of the timeline,
its own xruns, CLOCK_MONOTONIC of its first write). Nothing here asserts.

Why its own process: the bench/test process also runs HTTP clients; one Python thread there could
lose the GIL long enough (under qemu TCG) to make the room miss a period. Here it asks for
SCHED_FIFO (root in the guest) and counts the xruns it still has, so the figures can be judged.
"""
from __future__ import annotations

import argparse
import array
import json
import os
import time
from pathlib import Path

from tests.vm.rig import MIC_FEED, SPEAKER_TAP

RATE = 16000                             # the hub's default sample_rate (--rate: the station's)
ONSET_PEAK = 512                         # -36 dBFS: the far end has started
QUEUE_PERIODS = 4                        # the room's playback queue (its buffer holds 8)
REFLECTIONS = ((5, 0.45), (17, -0.3), (40, 0.2))   # (ms after the direct echo, gain relative to it)


def _pcm(kind: str, device: str, rate: int, periods: int):
    import alsaaudio
    k = alsaaudio.PCM_PLAYBACK if kind == "playback" else alsaaudio.PCM_CAPTURE
    return alsaaudio.PCM(k, alsaaudio.PCM_NORMAL, device=device, channels=1, rate=rate,
                         format=alsaaudio.PCM_FORMAT_S16_LE, periodsize=rate // 50, periods=periods)


def clip(s: int) -> int:
    return 32767 if s > 32767 else -32768 if s < -32768 else s


def tap_segment(x: array.array, start: int, n: int) -> array.array:
    """x[start:start+n], zeros where start is before the beginning."""
    if start >= 0:
        return x[start:start + n]
    pad = min(n, -start)
    return array.array("h", bytes(pad * 2)) + x[0:max(0, start + n)]


def realtime() -> bool:
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(20))
        return True
    except (OSError, AttributeError):
        return False


def run(out: Path, near: array.array, rate: int, delay_ms: int, gain: float, solo_s: float, far_alone_s: float,
        double_talk_s: float, after_s: float, max_s: float) -> dict:
    import alsaaudio
    rt = realtime()
    period = rate // 50                    # 20 ms
    cap = _pcm("capture", SPEAKER_TAP, rate, periods=8)
    play = _pcm("playback", MIC_FEED, rate, periods=8)
    taps = [(rate * delay_ms // 1000, gain)] + [(rate * (delay_ms + ms) // 1000, gain * g) for ms, g in REFLECTIONS]
    spk, mic, near_out = array.array("h"), array.array("h"), array.array("h")
    solo = (int(0.5 * 50), int((0.5 + solo_s) * 50))
    onset = dt = end = None
    info: dict = {"delay_ms": delay_ms, "gain": gain, "sched_fifo": rt, "capture_overruns": 0,
                  "playback_underruns": 0, "short_reads": 0,
                  "overruns_after_onset": 0, "underruns_after_onset": 0}
    # silence queued first: a late wake-up of this process (up to QUEUE_PERIODS x 20 ms) then does
    # not starve the station's microphone; it is part of the room's delay (room.json says how much)
    queue = bytes(QUEUE_PERIODS * period * 2)
    play.write(queue)
    info["prefill_ms"] = QUEUE_PERIODS * 20
    print("ready", flush=True)            # the caller starts its clock for the timeline here
    t_end = time.monotonic() + max_s
    near_pos = 0
    for f in range(int(max_s * 50) + 1):
        if time.monotonic() >= t_end or (end is not None and f >= end):
            break
        n, data = cap.read()
        if n < 0:
            info["capture_overruns"] += 1
            if onset is not None:
                info["overruns_after_onset"] += 1
            data = b""
        got = array.array("h", data[:period * 2])
        if len(got) < period:
            info["short_reads"] += 1
            got.extend([0] * (period - len(got)))
        base = len(spk)
        spk.extend(got)
        if onset is None and f >= solo[1] and max(map(abs, got)) >= ONSET_PEAK:
            onset = f
            dt = onset + int(far_alone_s * 50)
            end = dt + int((double_talk_s + after_s) * 50)
        speaking = solo[0] <= f < solo[1] or (dt is not None and dt <= f < dt + int(double_talk_s * 50))
        if speaking and near_pos + period > len(near):
            near_pos = 0
        voice = near[near_pos:near_pos + period] if speaking else None
        if speaking:
            near_pos += period
        if f == solo[1]:
            near_pos = 0                  # double talk starts the sentence again
        segs = [tap_segment(spk, base - d, period) for d, _ in taps]
        gains = [g for _, g in taps]
        voice = voice if voice is not None else array.array("h", bytes(period * 2))
        frame = array.array("h", [clip(int(gains[0] * a + gains[1] * b + gains[2] * c + gains[3] * e) + v)
                                  for a, b, c, e, v in zip(*segs, voice, strict=True)])
        near_out.extend(voice)
        mic.extend(frame)
        if play.state() == alsaaudio.PCM_STATE_XRUN:
            info["playback_underruns"] += 1
            if onset is not None:
                info["underruns_after_onset"] += 1
            play.write(queue)             # the same queue again: the echo's delay stays what it was
        if f == 0:
            info["t_first_write"] = time.monotonic()
        play.write(frame.tobytes())
    cap.close()
    play.close()
    info.update(frames=len(mic) // period, solo=solo, onset=onset, double_talk=(dt, dt + int(double_talk_s * 50))
                if dt is not None else None, rate=rate, frame=period)
    (out / "speaker.raw").write_bytes(spk.tobytes())
    (out / "mic.raw").write_bytes(mic.tobytes())
    (out / "near.raw").write_bytes(near_out.tobytes())
    (out / "room.json").write_text(json.dumps(info, indent=1))
    return info


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--near", type=Path, required=True, help="near-end voice, S16_LE mono raw at --rate")
    p.add_argument("--rate", type=int, default=RATE)
    p.add_argument("--delay-ms", type=int, default=50)
    p.add_argument("--gain-db", type=float, default=-6.0)
    p.add_argument("--solo", type=float, default=2.0)
    p.add_argument("--far-alone", type=float, default=10.0)
    p.add_argument("--double-talk", type=float, default=4.0)
    p.add_argument("--after", type=float, default=1.0)
    p.add_argument("--max-s", type=float, default=60.0)
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    near = array.array("h", a.near.read_bytes())
    run(a.out, near, a.rate, a.delay_ms, 10 ** (a.gain_db / 20), a.solo, a.far_alone, a.double_talk, a.after, a.max_s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
