"""[audio.aec] in hardware.toml: the echo canceller's settings (the canceller is hw/echo.py).

A module of its own so that reading the configuration (the API does, for the Axis device surface)
does not load ctypes and the speexdsp binding.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AecConfig:
    enabled: bool = True
    # echo path the filter covers: the hub's own buffering (speaker FIFO + ALSA buffers + microphone
    # FIFO, 100-200 ms measured in the VM lane) + the room; 200 ms only covered a 20 ms room there
    tail_ms: int = 500
    noise_suppress_db: int = -15    # 0 = no noise suppression
    agc: bool = False
    agc_target: int = 8000          # AGC's target level (of 32767)
