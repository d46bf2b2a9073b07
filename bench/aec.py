"""Echo cancellation bench, offline: speech made with espeak-ng (nothing downloaded), an echo path
built from it, run frame by frame through the hub's canceller (hw/echo.py: speexdsp).

    .venv/bin/python bench/aec.py [--seconds 20] [--delays 20,50,100,150] [--tail-ms 200]

Scenario per delay (16 kHz, 20 ms frames, as the hub runs it):
- far end (what the speaker plays): a male espeak-ng voice, all the time;
- echo = far end delayed by `delay` ms and attenuated (echo gain, -6 dB by default), through a
  small room (six reflections, 5-60 ms later, decaying); plus -60 dBFS noise;
- near end (the visitor): a female voice from 60 % to 85 % of the run: double talk.
Figures:
- ERLE: 10 log10(mic energy / output energy) over the far-end-only part after convergence
  (frames where the far end speaks), for the canceller alone and with its preprocessor (residual
  echo + noise suppression);
- convergence: time until the 0.5 s ERLE first reaches 20 dB and stays above 15 dB;
- near-end attenuation in double talk: how much of the visitor's voice survives (the output's
  projection on the clean near-end signal), in dB (0 = untouched);
- CPU per call: process time per second of audio (% of one core) with AEC off (the hub's copy),
  canceller only, canceller + noise suppression; the ratio is against AEC off in the same run.
- the same for pjmedia's echo canceller from our pjsua2 build (Speex backend + its noise
  suppressor), called through the extension's exported C symbols: the candidate the hub cannot use.
"""
from __future__ import annotations

import argparse
import array
import math
import platform
import random
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hw.echo import AecConfig, EchoCanceller  # noqa: E402

RATE = 16000
FRAME = RATE // 50          # 20 ms

FAR_TEXT = ("The door station speaker says this sentence while the visitor waits outside. "
            "Please hold the line, somebody will come to the door in a moment. ") * 3
NEAR_TEXT = "Hello, I have a parcel for number twelve, can you open the door please? " * 2


class PjmediaCanceller:
    """pjmedia's echo canceller from our pjsua2 build (its Speex backend: our build links Debian's
    libspeexdsp), reached through the extension module's exported C symbols. Bench only: the
    product cannot put it on the hub's frames (docs/audio.md)."""

    SPEEX, NO_LOCK, NOISE_SUPPRESSOR = 1, 16, 128

    def __init__(self, tail_ms: int, noise_suppressor: bool) -> None:
        import ctypes

        import _pjsua2
        self._c = ctypes
        lib = ctypes.CDLL(_pjsua2.__file__)
        lib.pj_log_set_level(1)
        lib.pj_init()
        self._cp = ctypes.create_string_buffer(8192)          # pj_caching_pool (far smaller)
        lib.pj_caching_pool_init.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        lib.pj_caching_pool_init(self._cp, None, 0)
        lib.pj_pool_create.restype = ctypes.c_void_p
        lib.pj_pool_create.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                       ctypes.c_size_t, ctypes.c_void_p]
        pool = lib.pj_pool_create(self._cp, b"bench-ec", 4000, 4000, None)
        self._ec = ctypes.c_void_p()
        lib.pjmedia_echo_create2.argtypes = [ctypes.c_void_p] + [ctypes.c_uint] * 6 + [ctypes.POINTER(ctypes.c_void_p)]
        options = self.SPEEX | self.NO_LOCK | (self.NOISE_SUPPRESSOR if noise_suppressor else 0)
        if lib.pjmedia_echo_create2(pool, RATE, 1, FRAME, tail_ms, 0, options, ctypes.byref(self._ec)):
            raise RuntimeError("pjmedia_echo_create2 failed")
        lib.pjmedia_echo_cancel.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_uint, ctypes.c_void_p]
        lib.pjmedia_echo_destroy.argtypes = [ctypes.c_void_p]
        self._lib = lib
        self._rec, self._play = (ctypes.c_int16 * FRAME)(), (ctypes.c_int16 * FRAME)()

    def process(self, mic: bytes, ref: bytes) -> bytes:
        self._c.memmove(self._rec, mic, FRAME * 2)
        self._c.memmove(self._play, ref, FRAME * 2)
        self._lib.pjmedia_echo_cancel(self._ec, self._rec, self._play, 0, None)
        return self._c.string_at(self._rec, FRAME * 2)

    def close(self) -> None:
        self._lib.pjmedia_echo_destroy(self._ec)


def speak(text: str, voice: str, workdir: Path) -> list[float]:
    """espeak-ng to WAV (22050 Hz), resampled to 16 kHz by linear interpolation. A WAV already in
    `workdir` is used as it is (--speech-dir: a machine without espeak-ng, e.g. the arm64 guest)."""
    path = workdir / f"{voice.replace('+', '_')}.wav"
    if not path.exists():
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text], check=True,
                       capture_output=True, timeout=120)
    with wave.open(str(path), "rb") as w:
        src_rate = w.getframerate()
        src = array.array("h", w.readframes(w.getnframes()))
    n = int(len(src) * RATE / src_rate)
    out = []
    for i in range(n):
        x = i * src_rate / RATE
        j = int(x)
        f = x - j
        a = src[j]
        b = src[j + 1] if j + 1 < len(src) else a
        out.append(a + (b - a) * f)
    return out


def fit(signal: list[float], n: int) -> list[float]:
    """Loop (or cut) to n samples."""
    out: list[float] = []
    while len(out) < n:
        out.extend(signal[:n - len(out)])
    return out


def echo_path(far: list[float], delay_ms: int, gain: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    taps = [(int(RATE * delay_ms / 1000), gain)]
    for _ in range(6):     # reflections: later and weaker
        extra = rng.uniform(5, 60)
        taps.append((int(RATE * (delay_ms + extra) / 1000), gain * rng.choice((-1, 1)) * 0.5 * math.exp(-extra / 25)))
    n = len(far)
    out = [0.0] * n
    for d, g in taps:
        for i in range(d, n):
            out[i] += g * far[i - d]
    return out


def energy(x, lo: int, hi: int) -> float:
    return sum(v * v for v in x[lo:hi]) + 1e-9


def to_frames(x: list[float]) -> list[bytes]:
    clip = [max(-32768, min(32767, int(v))) for v in x]
    return [array.array("h", clip[i:i + FRAME]).tobytes() for i in range(0, len(clip) - FRAME + 1, FRAME)]


Canceller = EchoCanceller | PjmediaCanceller


def run(canceller: Canceller | None, mic: list[bytes], ref: list[bytes]) -> tuple[list[float], float]:
    out = bytearray()
    t0 = time.process_time()
    for m, r in zip(mic, ref, strict=True):
        out += canceller.process(m, r) if canceller else bytes(m)
    return list(array.array("h", bytes(out))), time.process_time() - t0


def measure(delay_ms: int, gain: float, seconds: float, tail_ms: int, far: list[float],
            near_voice: list[float]) -> dict:
    n = int(seconds * RATE)
    far = fit(far, n)
    dt_lo, dt_hi = int(0.6 * n), int(0.85 * n)
    near = [0.0] * n
    for i, v in enumerate(fit(near_voice, dt_hi - dt_lo)):
        near[dt_lo + i] = v * 0.7
    rng = random.Random(7)
    echo = echo_path(far, delay_ms, gain, seed=delay_ms)
    mic_sig = [e + s + rng.gauss(0, 32.767) for e, s in zip(echo, near, strict=True)]
    mic, ref = to_frames(mic_sig), to_frames(far)
    results = {}
    cancellers = [("aec", lambda: EchoCanceller(RATE, FRAME, AecConfig(tail_ms=tail_ms, noise_suppress_db=0))),
                  ("aec+ns", lambda: EchoCanceller(RATE, FRAME, AecConfig(tail_ms=tail_ms))),
                  ("pjmedia", lambda: PjmediaCanceller(tail_ms, noise_suppressor=True))]
    for name, make in cancellers:
        c = make()
        out, cpu = run(c, mic, ref)
        c.close()
        results[name] = (out, cpu)
    _, cpu_off = run(None, mic, ref)
    # ERLE per 0.5 s window where the far end speaks (its energy above 1 % of the loudest window)
    win = RATE // 2
    windows = [(i, i + win) for i in range(0, dt_lo - win + 1, win)]
    loud = max(energy(far, a, b) for a, b in windows)
    active = [(a, b) for a, b in windows if energy(far, a, b) > 0.01 * loud]
    figures = {"delay_ms": delay_ms, "echo_gain_db": round(20 * math.log10(gain), 1)}
    for name, (out, cpu) in results.items():
        erle = [(a, 10 * math.log10(energy(mic_sig, a, b) / energy(out, a, b))) for a, b in active]
        conv = next((a / RATE for k, (a, e) in enumerate(erle)
                     if e >= 20 and all(x >= 15 for _, x in erle[k:])), None)
        settled = [e for a, e in erle if a >= (conv or 0) * RATE + RATE]
        steady = 10 * math.log10(sum(energy(mic_sig, a, a + win) for a, _ in erle if a >= (conv or 0) * RATE + RATE)
                                 / sum(energy(out, a, a + win) for a, _ in erle if a >= (conv or 0) * RATE + RATE)) \
            if settled else float("nan")
        # the processing delays the output (speexdsp: one frame); find it, then project
        seg = range(dt_lo, min(dt_hi, dt_lo + RATE))

        def corr(lag: int, out: list[float] = out, seg: range = seg) -> float:
            return sum(out[i + lag] * near[i] for i in seg if i + lag < len(out))
        lag = max(range(0, 2 * FRAME + 1), key=corr)
        hi = min(dt_hi, len(out) - lag)
        proj = sum(out[i + lag] * near[i] for i in range(dt_lo, hi)) / energy(near, dt_lo, hi)
        figures[name] = {"erle_db": round(steady, 1), "convergence_s": conv, "latency_ms": lag * 1000 // RATE,
                         "near_end_db": round(20 * math.log10(max(proj, 1e-6)), 1),
                         "cpu_pct": round(100 * cpu / seconds, 2)}
    figures["off_cpu_pct"] = round(100 * cpu_off / seconds, 3)
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--delays", default="20,50,100,150")
    ap.add_argument("--gains", default="0.5", help="echo gains (linear), e.g. 0.5,0.25")
    ap.add_argument("--tail-ms", type=int, default=AecConfig.tail_ms, help="default: the hub's")
    ap.add_argument("--speech-dir", type=Path, help="keep the espeak-ng WAVs here (and use those found)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        where = args.speech_dir or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        far = speak(FAR_TEXT, "en-us", where)
        near = speak(NEAR_TEXT, "en-us+f3", where)
    print(f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}")
    print(f"speexdsp MDF, {RATE} Hz, 20 ms frames, tail {args.tail_ms} ms, {args.seconds:g} s per run "
          f"(double talk {0.6 * args.seconds:g}-{0.85 * args.seconds:g} s)")
    print("aec = hw/echo.py canceller only; +ns = with its preprocessor (the hub's default); "
          "pjmedia = pjmedia_echo (Speex backend, noise suppressor on) from our pjsua2 build")
    print(f"{'delay':>6} {'echo':>6} | {'ERLE aec':>9} {'conv':>6} {'near':>6} {'CPU':>6} | "
          f"{'ERLE +ns':>9} {'conv':>6} {'near':>6} {'CPU':>6} | {'ERLE pjm':>9} {'conv':>6} {'near':>6} "
          f"{'CPU':>6} | {'off CPU':>7}  ratio  latency")
    for gain in (float(g) for g in args.gains.split(",")):
        for delay in (int(d) for d in args.delays.split(",")):
            f = measure(delay, gain, args.seconds, args.tail_ms, far, near)
            a, b, p = f["aec"], f["aec+ns"], f["pjmedia"]

            def conv(x):
                return f"{x:5.1f}s" if x is not None else "  never"
            print(f"{delay:>4}ms {f['echo_gain_db']:>4}dB | {a['erle_db']:>7.1f}dB {conv(a['convergence_s'])} "
                  f"{a['near_end_db']:>4.1f}dB {a['cpu_pct']:>5.2f}% | {b['erle_db']:>7.1f}dB "
                  f"{conv(b['convergence_s'])} {b['near_end_db']:>4.1f}dB {b['cpu_pct']:>5.2f}% | "
                  f"{p['erle_db']:>7.1f}dB {conv(p['convergence_s'])} {p['near_end_db']:>4.1f}dB "
                  f"{p['cpu_pct']:>5.2f}% | "
                  f"{f['off_cpu_pct']:>6.3f}%  x{b['cpu_pct'] / max(f['off_cpu_pct'], 1e-3):.0f}"
                  f"  {b['latency_ms']} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
