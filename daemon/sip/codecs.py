"""The endpoint's codec priorities (the spec's AudioCodec order). Engine thread only."""
from __future__ import annotations

from typing import Callable

import pjsua2 as pj


class CodecPriorities:
    def __init__(self, lib: Callable[[], "pj.Endpoint"]) -> None:
        self._lib = lib
        self._defaults: dict[str, int] | None = None    # the stack's own order, read once
        self.applied = False

    def apply(self, priorities: tuple[tuple[str, int | None], ...]) -> None:
        """`(name, rate | None)` first to last; empty: back to the stack's defaults."""
        lib = self._lib()
        infos = list(lib.codecEnum2())
        if self._defaults is None:
            # The stack's default order (its enumeration order; several codecs tie at 128, and
            # re-setting equal priorities does not keep their order): strictly decreasing values.
            self._defaults = {ci.codecId: (200 - i if ci.priority > 0 else 0) for i, ci in enumerate(infos)}
        if not priorities:
            for codec_id, prio in self._defaults.items():
                lib.codecSetPriority(codec_id, prio)
        else:
            for ci in infos:
                lib.codecSetPriority(ci.codecId, 0)
            prio = 254
            for name, rate in priorities:
                for ci in infos:
                    c_name, c_rate = ci.codecId.split("/")[:2]
                    if c_name.lower() == name.lower() and (rate is None or int(c_rate) == rate):
                        lib.codecSetPriority(ci.codecId, max(prio, 1))
                prio -= 1
        self.applied = True

    def supported(self) -> list[dict]:
        """[{"Name": "PCMU", "SampleRate": 8000}, ...], each name/rate once."""
        out, seen = [], set()
        for ci in self._lib().codecEnum2():
            name, rate = ci.codecId.split("/")[:2]
            if (name, rate) not in seen:
                seen.add((name, rate))
                out.append({"Name": name, "SampleRate": int(rate)})
        return out
