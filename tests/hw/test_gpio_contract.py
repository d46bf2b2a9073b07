"""The GPIO contract against the simulator (the VM lane runs it against gpiod on gpio-sim)."""
import pytest

from hw.gpio_sim import SimChip, open_sim_lines
from tests.hw.gpio_contract import *  # noqa: F401,F403  (the shared cases)

CHIP = SimChip("gpiochip9", "doorstation-sim", ("CALL_BUTTON", "CALL_LED", "DOOR_LOCK", "DOOR_CONTACT"))


class SimHarness:
    def __init__(self):
        self.lines = None

    def open(self, specs):
        self.lines = open_sim_lines(specs, CHIP.label, [CHIP])
        return self.lines

    def open_missing_chip(self, specs):
        return open_sim_lines(specs, "no-such-chip", [CHIP])

    def drive(self, role, level):
        self.lines.drive(role, level)

    def level(self, role):
        return self.lines.level(role)


@pytest.fixture
def harness():
    h = SimHarness()
    yield h
    if h.lines is not None:
        h.lines.close()
