"""The gpio-sim chip the VM lane's guest.sh makes: where it is, and its lines' sysfs attributes
(`pull` drives an input from outside, `value` reads what the station drives)."""
import os

CHIP = os.environ.get("DOORSTATION_GPIOSIM_CHIP", "")
SYSFS = os.environ.get("DOORSTATION_GPIOSIM_SYSFS", "")
LABEL = os.environ.get("DOORSTATION_GPIOSIM_LABEL", "doorstation-sim")


def sim(offset: int, attr: str, value: str | None = None) -> str:
    """Read `sim_gpio<offset>/<attr>`, or write `value` to it."""
    path = f"{SYSFS}/sim_gpio{offset}/{attr}"
    if value is None:
        with open(path) as f:
            return f.read().strip()
    with open(path, "w") as f:
        f.write(value)
    return value
