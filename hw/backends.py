"""Pick the GPIO backend from the configuration: simulated, or libgpiod on a real chip."""
from __future__ import annotations

from typing import TYPE_CHECKING

from hw.config import AudioConfig, GpioConfig
from hw.gpio import Lines
from hw.gpio_sim import SimLines

if TYPE_CHECKING:  # hw.audio needs the ALSA extension: imported only when audio is opened
    from hw.audio import AudioBridge


def open_lines(cfg: GpioConfig, dev_dir: str = "/dev") -> Lines:
    if cfg.simulated:
        return SimLines(cfg.line_specs())
    from hw.gpio_gpiod import GpiodLines  # only a real chip needs the C extension
    return GpiodLines(cfg.line_specs(), chip=cfg.chip, consumer=cfg.consumer, dev_dir=dev_dir)


def open_audio(cfg: AudioConfig) -> AudioBridge:
    """The audio bridge on the configured device (ALSA) or on the simulator."""
    from hw.audio import AlsaPcm, AudioBridge, RingbackTone, set_volume
    from hw.audio_sim import SimPcm
    rb = cfg.ringback
    tone = RingbackTone(cfg.sample_rate, rb.frequency_hz, rb.on_ms, rb.off_ms, rb.level)
    pcm: SimPcm | AlsaPcm
    if cfg.simulated:
        pcm = SimPcm(cfg.sample_rate, cfg.sim_input, cfg.sim_output)
    else:
        if cfg.playback_mixer and cfg.playback_volume is not None:
            set_volume(cfg.mixer_card, cfg.playback_mixer, cfg.playback_volume)
        if cfg.capture_mixer and cfg.capture_volume is not None:
            set_volume(cfg.mixer_card, cfg.capture_mixer, cfg.capture_volume, capture=True)
        pcm = AlsaPcm(cfg.capture_device, cfg.playback_device, cfg.sample_rate)
    return AudioBridge(pcm, cfg.sample_rate, cfg.fifo_ms, tone, cfg.target_ms, echo=cfg.aec)
