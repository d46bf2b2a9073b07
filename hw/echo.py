"""Echo cancellation and noise suppression for the hub: speexdsp (Debian's libspeexdsp1) via ctypes.

Why speexdsp, and why a ctypes binding (docs/audio.md has the measurements):
- pjmedia's own echo canceller (in our pjsua2 build) is speexdsp's MDF filter plus its
  preprocessor, bundled; pjsua2 applies it only to a pjmedia sound port, and our audio never
  passes one (the hub owns ALSA and feeds pjmedia through an AudioMediaPort), and its C API is not
  in the SWIG binding. So it is the same algorithm, out of reach.
- WebRTC's audio processing: Debian ships only a C++ API (a compiled shim would be ours to keep),
  and PyPI's bindings are source-only (no aarch64 wheel) and bundle their own WebRTC copy.
- speexdsp: a small, stable C API (eight functions used here), packaged for arm64 in Debian and
  Raspberry Pi OS (libspeexdsp1, in runtime_debs), nothing to compile. The binding loads the
  library once and checks every state it creates.

`EchoCanceller.process(mic, ref)` takes one frame of microphone audio and the frame of speaker
audio that went out at the same clock tick, and returns the cleaned microphone frame (echo
cancelled, residual echo and noise suppressed, optional AGC). S16_LE mono.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import threading
from typing import Any

from hw.aec_config import AecConfig  # defined there; callers also import it from here

_ECHO_SET_SAMPLING_RATE = 24
_PP_SET_DENOISE, _PP_SET_AGC, _PP_SET_NOISE_SUPPRESS = 0, 2, 18
_PP_SET_ECHO_STATE, _PP_SET_AGC_TARGET = 24, 46


class EchoError(Exception):
    """libspeexdsp is missing or refused a state (the hub then runs without AEC, and says so)."""




_lib: Any = None


def _speexdsp() -> Any:
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError as e:
            raise EchoError(f"libspeexdsp is not installed ({e})") from None
        vp, i16p = ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16)
        lib.speex_echo_state_init.restype, lib.speex_echo_state_init.argtypes = vp, [ctypes.c_int, ctypes.c_int]
        lib.speex_echo_state_destroy.argtypes = [vp]
        lib.speex_echo_ctl.argtypes = [vp, ctypes.c_int, vp]
        lib.speex_echo_cancellation.argtypes = [vp, i16p, i16p, i16p]
        lib.speex_preprocess_state_init.restype = vp
        lib.speex_preprocess_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.speex_preprocess_state_destroy.argtypes = [vp]
        lib.speex_preprocess_ctl.argtypes = [vp, ctypes.c_int, vp]
        lib.speex_preprocess_run.argtypes = [vp, i16p]
        _lib = lib
    return _lib


class EchoCanceller:
    """speexdsp MDF echo canceller + preprocessor (residual echo, noise, AGC) for one stream of
    fixed-size frames. The hub's clock thread is its only user, but close() may come from another
    thread while that clock still ticks (pjmedia calls every port's callbacks, connected or not,
    until the endpoint is destroyed): a lock keeps close() from freeing the states under a frame,
    and a closed canceller passes frames through."""

    def __init__(self, rate: int, frame_samples: int, config: AecConfig | None = None) -> None:
        lib = _speexdsp()
        self._lock = threading.Lock()
        self.config = config = config or AecConfig()
        self.frame_samples = frame_samples
        self.frame_bytes = frame_samples * 2
        self._lib = lib
        tail = max(frame_samples, rate * config.tail_ms // 1000)
        self._echo = lib.speex_echo_state_init(frame_samples, tail)
        self._pre = lib.speex_preprocess_state_init(frame_samples, rate) if self._echo else None
        if not self._echo or not self._pre:
            self.close()
            raise EchoError("libspeexdsp could not create its state")
        r = ctypes.c_int(rate)
        lib.speex_echo_ctl(self._echo, _ECHO_SET_SAMPLING_RATE, ctypes.byref(r))
        lib.speex_preprocess_ctl(self._pre, _PP_SET_ECHO_STATE, ctypes.c_void_p(self._echo))
        self._ctl(_PP_SET_DENOISE, int(config.noise_suppress_db < 0))
        if config.noise_suppress_db < 0:
            self._ctl(_PP_SET_NOISE_SUPPRESS, config.noise_suppress_db)
        self._ctl(_PP_SET_AGC, int(config.agc))
        if config.agc:
            self._ctl(_PP_SET_AGC_TARGET, config.agc_target)
        buf = ctypes.c_int16 * frame_samples
        self._mic, self._ref, self._out = buf(), buf(), buf()
        self.frames = 0

    def _ctl(self, request: int, value: int) -> None:
        v = ctypes.c_int(value)
        self._lib.speex_preprocess_ctl(self._pre, request, ctypes.byref(v))

    def process(self, mic: bytes, ref: bytes) -> bytes:
        n = self.frame_bytes
        if len(mic) != n:
            return mic
        with self._lock:
            if not self._echo or not self._pre:       # closed
                return mic
            ctypes.memmove(self._mic, mic, n)
            if len(ref) == n:
                ctypes.memmove(self._ref, ref, n)
            else:
                ctypes.memset(self._ref, 0, n)
            self._lib.speex_echo_cancellation(self._echo, self._mic, self._ref, self._out)
            self._lib.speex_preprocess_run(self._pre, self._out)
            self.frames += 1
            return ctypes.string_at(self._out, n)

    def close(self) -> None:
        lock = getattr(self, "_lock", None)
        if lock is None:                 # __init__ failed before the states existed
            return
        with lock:
            if getattr(self, "_pre", None):
                self._lib.speex_preprocess_state_destroy(self._pre)
                self._pre = None
            if getattr(self, "_echo", None):
                self._lib.speex_echo_state_destroy(self._echo)
                self._echo = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
