"""libgpiod v2 backend: one line request for all configured lines, looked up by line name.

- The chip is given by path (/dev/gpiochip0), by name (gpiochip0) or by label
  (pinctrl-bcm2711 on a Pi 4, pinctrl-rp1 on a Pi 5); if no chip is given, the chip that has the
  first named line is used. Offsets are accepted but names are preferred: they survive a move
  between board revisions.
- active_low, bias and debounce_period are configured in the kernel, which then reports edges
  and values as *logical* values — the same contract as the simulator.
- fileno() is the request's fd, for the supervisor's poll loop; read_edge_events() only reads
  when events are pending, so it never blocks.
- Failures at the boundary become typed errors (ChipNotFoundError, LineNotFoundError,
  LineBusyError), never raw OSError tracebacks.
"""
from __future__ import annotations

import errno
import glob
import os
import select
from datetime import timedelta
from typing import Iterable

import gpiod
from gpiod.line import Bias as GBias
from gpiod.line import Direction as GDirection
from gpiod.line import Edge, Value

from hw.gpio import Bias, ChipNotFoundError, Direction, EdgeEvent, LineBusyError, LineNotFoundError, LineSpec

_BIAS = {Bias.AS_IS: GBias.AS_IS, Bias.DISABLED: GBias.DISABLED,
         Bias.PULL_UP: GBias.PULL_UP, Bias.PULL_DOWN: GBias.PULL_DOWN}


def list_chips(dev_dir: str = "/dev") -> list[str]:
    return sorted(p for p in glob.glob(os.path.join(dev_dir, "gpiochip*"))
                  if gpiod.is_gpiochip_device(p))


def _chip_identity(path: str) -> tuple[str, str]:
    with gpiod.Chip(path) as chip:
        info = chip.get_info()
        return info.name, info.label


def resolve_chip(chip: str | None, specs: Iterable[LineSpec], dev_dir: str = "/dev") -> str:
    """Path of the chip meant by `chip` (path, name or label), or of the chip holding the lines."""
    chips = list_chips(dev_dir)
    if chip and os.path.isabs(chip):
        if chip in chips or (os.path.exists(chip) and gpiod.is_gpiochip_device(chip)):
            return chip
        raise ChipNotFoundError(chip, chips)
    named = [s.line for s in specs if isinstance(s.line, str)]
    for path in chips:
        try:
            name, label = _chip_identity(path)
        except OSError:
            continue  # a chip we may not open is not the one we want
        if chip is not None and chip in (name, label):
            return path
        if chip is None and named:
            with gpiod.Chip(path) as c:
                try:
                    c.line_offset_from_id(named[0])
                    return path
                except OSError:
                    continue
    raise ChipNotFoundError(chip or f"<chip with line {named[0] if named else '?'}>", chips)


def _settings(spec: LineSpec) -> gpiod.LineSettings:
    if spec.direction is Direction.INPUT:
        return gpiod.LineSettings(
            direction=GDirection.INPUT, active_low=spec.active_low, bias=_BIAS[spec.bias],
            edge_detection=Edge.BOTH,
            debounce_period=timedelta(milliseconds=spec.debounce_ms))
    return gpiod.LineSettings(
        direction=GDirection.OUTPUT, active_low=spec.active_low, bias=_BIAS[spec.bias],
        output_value=Value.ACTIVE if spec.initial else Value.INACTIVE)


class GpiodLines:
    def __init__(self, specs: Iterable[LineSpec], chip: str | None = None,
                 consumer: str = "doorstation", dev_dir: str = "/dev") -> None:
        specs = list(specs)
        self.chip_path = resolve_chip(chip, specs, dev_dir)
        self._offsets: dict[str, int] = {}
        with gpiod.Chip(self.chip_path) as c:
            for spec in specs:
                try:
                    self._offsets[spec.role] = c.line_offset_from_id(spec.line)
                except (OSError, ValueError):
                    raise LineNotFoundError(spec.role, spec.line, self.chip_path) from None
        self._roles = {off: role for role, off in self._offsets.items()}
        if len(self._roles) != len(self._offsets):
            raise LineBusyError("several roles", "two roles name the same line")
        config: dict[Iterable[int | str] | int | str, gpiod.LineSettings | None] = {
            self._offsets[s.role]: _settings(s) for s in specs}
        try:
            self._req = gpiod.request_lines(self.chip_path, consumer=consumer, config=config)
        except OSError as e:
            if e.errno in (errno.EBUSY, errno.EPERM, errno.EACCES):
                raise LineBusyError(",".join(self._offsets), os.strerror(e.errno)) from None
            raise ChipNotFoundError(self.chip_path, list_chips(dev_dir)) from e
        self._inputs = {s.role for s in specs if s.direction is Direction.INPUT}

    def offset(self, role: str) -> int:
        try:
            return self._offsets[role]
        except KeyError:
            raise LineNotFoundError(role, role, self.chip_path) from None

    def fileno(self) -> int:
        return self._req.fd

    def read_edge_events(self) -> list[EdgeEvent]:
        if not self._inputs:
            return []
        ready, _, _ = select.select([self._req.fd], [], [], 0)
        if not ready:
            return []
        return [EdgeEvent(self._roles[ev.line_offset],
                          ev.event_type is ev.Type.RISING_EDGE, ev.timestamp_ns)
                for ev in self._req.read_edge_events()]

    def get_value(self, role: str) -> bool:
        return self._req.get_value(self.offset(role)) is Value.ACTIVE

    def set_value(self, role: str, active: bool) -> None:
        self._req.set_value(self.offset(role), Value.ACTIVE if active else Value.INACTIVE)

    def close(self) -> None:
        if self._req:
            self._req.release()

    def __enter__(self) -> "GpiodLines":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
