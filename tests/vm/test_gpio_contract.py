"""The GPIO contract against libgpiod v2 on a real kernel gpio-sim chip (inside the VM lane)."""
import os

import pytest

from hw.gpio import ChipNotFoundError
from hw.gpio_gpiod import GpiodLines, resolve_chip
from tests.hw.gpio_contract import *  # noqa: F401,F403  (the shared cases)
from tests.hw.gpio_contract import button
from tests.vm.gpiosim import CHIP, LABEL, SYSFS  # noqa: F401
from tests.vm.gpiosim import sim as _sim


class GpiodHarness:
    def __init__(self):
        self.lines = None

    def open(self, specs):
        self.lines = GpiodLines(specs, chip=CHIP, consumer="contract-test")
        return self.lines

    def open_missing_chip(self, specs):
        return GpiodLines(specs, chip="no-such-chip")

    def drive(self, role, level):
        _sim(self.lines.offset(role), "pull", "pull-up" if level else "pull-down")

    def level(self, role):
        return int(_sim(self.lines.offset(role), "value"))

    def close(self):
        if self.lines is not None:
            self.lines.close()
        for off in range(8):  # back to the chip's resting state for the next case
            _sim(off, "pull", "pull-down")


@pytest.fixture
def harness():
    h = GpiodHarness()
    yield h
    h.close()


def test_chip_found_by_label_and_by_line_name():
    assert resolve_chip(LABEL, [button()]) == CHIP
    assert resolve_chip(os.path.basename(CHIP), [button()]) == CHIP
    assert resolve_chip(None, [button()]) == CHIP


def test_missing_chip_path_is_a_typed_error():
    with pytest.raises(ChipNotFoundError):
        GpiodLines([button()], chip="/dev/gpiochip99")


def test_line_held_by_another_request_is_a_typed_error():
    from hw.gpio import LineBusyError
    first = GpiodLines([button()], chip=CHIP, consumer="first")
    try:
        with pytest.raises(LineBusyError):
            GpiodLines([button()], chip=CHIP, consumer="second")
    finally:
        first.close()


def test_inventory_lists_the_gpiosim_chip_and_the_loopback_card():
    from hw.inventory import gpio_chips, sound_cards
    chips = {c["Path"]: c for c in gpio_chips()}
    assert chips[CHIP]["Label"] == LABEL and chips[CHIP]["Lines"] >= 8, chips
    assert "Loopback" in [c["Id"] for c in sound_cards()]
