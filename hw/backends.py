"""Pick the GPIO backend from the configuration: simulated, or libgpiod on a real chip."""
from __future__ import annotations

from daemon.hwconfig import GpioConfig
from hw.gpio import Lines
from hw.gpio_sim import SimLines


def open_lines(cfg: GpioConfig, dev_dir: str = "/dev") -> Lines:
    if cfg.simulated:
        return SimLines(cfg.line_specs())
    from hw.gpio_gpiod import GpiodLines  # only a real chip needs the C extension
    return GpiodLines(cfg.line_specs(), chip=cfg.chip, consumer=cfg.consumer, dev_dir=dev_dir)
