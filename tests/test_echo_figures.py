"""tests/echo_figures.py on made-up tracks: a room's files and a "station output" built from them
with a known lag, echo reduction and near-end gain; the figures must find them."""
import array
import json
import math
import random

from hw.g711 import Resampler
from tests.echo_figures import figures

RATE = 16000
FRAME = RATE // 50


def bursts(n: int, seed: int, level: float) -> list[float]:
    """Speech-like: noise in 150-400 ms bursts with pauses (so envelopes have shape)."""
    rng = random.Random(seed)
    out, on = [], True
    while len(out) < n:
        k = int(RATE * rng.uniform(0.15, 0.4))
        out += [rng.gauss(0, level) if on else 0.0 for _ in range(k)]
        on = not on
    return out[:n]


def make_room(tmp_path, lag_ms: float, echo_db: float, near_gain: float, converge_s: float):
    solo, onset, dt, end = (25, 75), 100, 350, 420          # frames of 20 ms
    n = end * FRAME
    near_voice = bursts(n, 1, 3000)
    far_echo = bursts(n, 2, 4000)
    near = [near_voice[i] if solo[0] * FRAME <= i < solo[1] * FRAME or dt * FRAME <= i < (dt + 50) * FRAME else 0.0
            for i in range(n)]
    echo = [far_echo[i] if i >= onset * FRAME else 0.0 for i in range(n)]
    mic = [e + v for e, v in zip(echo, near, strict=True)]
    pcm = lambda xs: array.array("h", (max(-32768, min(32767, int(x))) for x in xs)).tobytes()  # noqa: E731
    (tmp_path / "mic.raw").write_bytes(pcm(mic))
    (tmp_path / "near.raw").write_bytes(pcm(near))
    (tmp_path / "room.json").write_text(json.dumps({
        "delay_ms": 50, "capture_overruns": 0, "playback_underruns": 0, "short_reads": 0, "sched_fifo": True,
        "frames": end, "solo": solo, "onset": onset, "double_talk": [dt, dt + 50]}))
    # the "station": echo reduced after convergence (linearly in dB before), near end scaled,
    # at 8 kHz, lagging by lag_ms
    g = 10 ** (echo_db / 20)
    out = []
    for i in range(n):
        t = (i - onset * FRAME) / RATE
        ge = 1.0 if t < 0 else g if t >= converge_s else 10 ** (echo_db * t / converge_s / 20)
        out.append(ge * echo[i] + near_gain * near[i])
    lead = int(8000 * lag_ms / 1000)
    return bytes(lead * 2) + Resampler(RATE, 8000).process(pcm(out))


def test_figures_find_lag_erle_convergence_and_near_end(tmp_path):
    received = make_room(tmp_path, lag_ms=230, echo_db=-30, near_gain=0.5, converge_s=2.0)
    f = figures(tmp_path, received, approx_lag=-1600, search=4000)
    assert abs(f["lag_ms"]["solo"] + 230) <= 1 and abs(f["lag_ms"]["double_talk"] + 230) <= 1, f
    assert 27 <= f["erle_db"] <= 33, f
    assert 0.5 <= f["convergence_s"] <= 2.5, f
    expected = 20 * math.log10(0.5)
    assert abs(f["near_solo_db"] - expected) < 1 and abs(f["near_double_talk_db"] - expected) < 1, f


def test_no_cancellation_gives_zero_erle_and_no_convergence(tmp_path):
    received = make_room(tmp_path, lag_ms=100, echo_db=0, near_gain=1.0, converge_s=0.1)
    f = figures(tmp_path, received, approx_lag=0, search=2000)
    assert abs(f["erle_db"]) < 1 and f["convergence_s"] is None, f
    assert abs(f["near_double_talk_db"]) < 1, f
