"""Echo-path figures from one run of the VM lane's room (tests/vm/echo_room.py) and what the
station's audio hub gave the call meanwhile. Pure Python (no numpy), used by bench/vm_echo.py
and the VM-lane test; the unit test (tests/test_echo_figures.py) checks it on made-up signals.

The hub's output (after its echo canceller), brought to 8 kHz, is compared with what the room
played into its microphone, brought to 8 kHz by the same resampler (hw.g711's, the one the hub
uses for receive.cgi):
- alignment: the output lags the room's microphone track by an unknown amount (buffers, FIFOs);
  it is found where the near end speaks (alone at first, then in double talk) by correlating
  10 ms energy envelopes, then samples; between the two points it is interpolated (the hub's
  FIFOs may drop or pad a frame under emulation);
- ERLE: 10 log10(microphone energy / output energy) over 0.5 s windows where only the far end
  talks (and loud enough: above 1 % of the loudest window), after convergence;
- convergence: from the far end's onset until the window ERLE first reaches 20 dB and never falls
  below 15 dB again (bench/aec.py's definition);
- near end kept: the output's projection on the clean near-end track (<out, near> / <near, near>)
  in dB, alone and in double talk; 0 dB = untouched.
"""
from __future__ import annotations

import array
import json
import math
from pathlib import Path

from hw.g711 import Resampler

OUT_RATE = 8000
BLOCK = OUT_RATE // 100                 # 10 ms envelope blocks
WINDOW = OUT_RATE // 2                  # 0.5 s ERLE windows


def to_8k(pcm: bytes, rate: int) -> array.array:
    return array.array("h", Resampler(rate, OUT_RATE).process(pcm))


def energy(x, lo: int, hi: int) -> float:
    lo, hi = max(0, lo), min(len(x), hi)
    return float(sum(v * v for v in x[lo:hi])) if hi > lo else 0.0


def envelope(x) -> list[float]:
    return [math.sqrt(energy(x, i, i + BLOCK) / BLOCK) for i in range(0, len(x) - BLOCK + 1, BLOCK)]


def _ncorr(a: list[float], b: list[float]) -> float:
    n = min(len(a), len(b))
    if n < 4:
        return -1.0
    a, b = a[:n], b[:n]
    ma, mb = sum(a) / n, sum(b) / n
    num = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    da = math.sqrt(sum((x - ma) ** 2 for x in a))
    db = math.sqrt(sum((y - mb) ** 2 for y in b))
    return num / (da * db) if da and db else -1.0


def find_lag(out, ref, lo: int, hi: int, around: int, search: int) -> tuple[int, float]:
    """Lag L (samples) such that out[i - L] matches ref[i] for i in [lo, hi): envelopes first
    (|L - around| <= search), then samples (+-2 blocks). Returns (L, envelope correlation)."""
    env_ref = envelope(ref[lo:hi])
    env_out = envelope(out)
    b0, nb = lo // BLOCK, len(env_ref)
    best, best_c = around, -2.0
    for lb in range((around - search) // BLOCK, (around + search) // BLOCK + 1):
        s = b0 - lb
        if s < 0 or s + nb > len(env_out):
            continue
        c = _ncorr(env_ref, env_out[s:s + nb])
        if c > best_c:
            best, best_c = lb * BLOCK, c
    # sample refinement on the loudest 0.25 s of the segment
    seg = max(range(lo, max(lo + 1, hi - OUT_RATE // 4), BLOCK),
              key=lambda a: energy(ref, a, a + OUT_RATE // 4))
    seg_hi = min(hi, seg + OUT_RATE // 4)

    def dot(lag: int) -> float:
        return sum(ref[i] * out[i - lag] for i in range(seg, seg_hi) if 0 <= i - lag < len(out))
    fine = max(range(best - 2 * BLOCK, best + 2 * BLOCK + 1), key=dot)
    return fine, best_c


def _dot(out, ref, lo: int, hi: int, lag: int) -> float:
    return float(sum(ref[i] * out[i - lag] for i in range(max(lo, lag), min(hi, len(out) + lag))))


def projection_db(out, ref, lo: int, hi: int, lag: int) -> tuple[float | None, int]:
    """<out, ref> / <ref, ref> over [lo, hi) in dB, in 0.5 s blocks, each at its own lag (followed
    from `lag`, +-30 ms): a frame padded or dropped by the hub's FIFOs (or a late room) moves the
    alignment, and one misplaced sample already costs a speech projection several dB. Returns
    (dB, the last block's lag)."""
    num = den = 0.0
    blocks = [(a, min(hi, a + WINDOW)) for a in range(lo, hi, WINDOW)]
    loud = max((energy(ref, a, b) for a, b in blocks), default=0.0)
    for a, b in blocks:
        e = energy(ref, a, b)
        if e < 0.01 * loud:                      # a pause: nothing to project, nothing to align on
            continue
        # on the block's loudest 1/8 s: every other lag within +-30 ms, then the samples around
        # the best (the dot product itself: the echo in the output does not correlate with ref)
        seg = max(range(a, max(a + 1, b - OUT_RATE // 8), BLOCK), key=lambda x: energy(ref, x, x + OUT_RATE // 8))
        seg_hi = min(b, seg + OUT_RATE // 8)
        span = 30 * OUT_RATE // 1000
        coarse = max(range(lag - span, lag + span + 1, 2), key=lambda g: _dot(out, ref, seg, seg_hi, g))
        lag = max(range(coarse - 1, coarse + 2), key=lambda g: _dot(out, ref, seg, seg_hi, g))
        num += _dot(out, ref, a, b, lag)
        den += e
    if den <= 0:
        return None, lag
    return round(20 * math.log10(max(num / den, 1e-6)), 1), lag


def figures(room_dir: Path, output: bytes, approx_lag: int = 0, search: int = 3 * OUT_RATE) -> dict:
    """`output`: S16_LE at 8 kHz, from before the room started; `approx_lag`: a guess of the lag
    (samples at 8 kHz), searched +- `search`."""
    info = json.loads((room_dir / "room.json").read_text())
    rate = info.get("rate", 16000)
    mic = to_8k((room_dir / "mic.raw").read_bytes(), rate)
    near = to_8k((room_dir / "near.raw").read_bytes(), rate)
    out = array.array("h", output[:len(output) - len(output) % 2])
    per_frame = OUT_RATE // 50
    result: dict = {"delay_ms": info["delay_ms"], "room": {k: info[k] for k in (
        "capture_overruns", "playback_underruns", "short_reads", "sched_fifo", "frames")}}
    if info.get("onset") is None or info.get("double_talk") is None:
        result["error"] = "the room never heard the far end"
        return result
    solo = (info["solo"][0] * per_frame, info["solo"][1] * per_frame)
    onset = info["onset"] * per_frame
    dt = (info["double_talk"][0] * per_frame, min(len(mic), info["double_talk"][1] * per_frame))
    lag_solo, c_solo = find_lag(out, near, *solo, approx_lag, search)
    # in double talk the output is the near end (canceller on) or near end + echo (off): align on
    # whichever of the two tracks matches it better
    lag_dt, c_dt = max((find_lag(out, ref, *dt, lag_solo, OUT_RATE // 4) for ref in (near, mic)),
                       key=lambda lc: lc[1])
    result["lag_ms"] = {"solo": round(lag_solo * 1000 / OUT_RATE, 1), "double_talk": round(lag_dt * 1000 / OUT_RATE, 1)}
    result["alignment_corr"] = {"solo": round(c_solo, 3), "double_talk": round(c_dt, 3)}

    def lag_at(i: int) -> int:
        span = dt[0] - solo[0]
        return round(lag_solo + (lag_dt - lag_solo) * min(1.0, max(0.0, (i - solo[0]) / span)))

    result["near_solo_db"], _ = projection_db(out, near, *solo, lag_solo)
    result["near_double_talk_db"], _ = projection_db(out, near, *dt, lag_dt)
    # ERLE over far-end-only windows
    wins = [(a, a + WINDOW) for a in range(onset, dt[0] - WINDOW + 1, WINDOW)]
    e_in = [energy(mic, a, b) for a, b in wins]
    loud = max(e_in, default=0.0)
    erle = []
    for (a, b), ei in zip(wins, e_in, strict=True):
        if ei <= 0.01 * loud:
            continue
        lag = lag_at(a)
        eo = energy(out, a - lag, b - lag)
        erle.append((a, ei, eo, 10 * math.log10(ei / max(eo, 1.0))))
    result["windows"] = [round(e, 1) for *_, e in erle]
    conv = next((k for k, w in enumerate(erle) if w[3] >= 20 and all(x[3] >= 15 for x in erle[k:])), None)
    if conv is not None:
        t_conv = (erle[conv][0] - onset) / OUT_RATE
        settled = [w for w in erle if w[0] >= erle[conv][0] + OUT_RATE]
        result["convergence_s"] = round(t_conv, 1)
    else:
        settled = erle[len(erle) // 2:]          # not converged: the second half, for the record
        result["convergence_s"] = None
    if settled:
        result["erle_db"] = round(10 * math.log10(sum(w[1] for w in settled) / max(1.0, sum(w[2] for w in settled))), 1)
        result["erle_windows"] = len(settled)
    else:
        result["erle_db"] = None
        result["erle_windows"] = 0
    return result
