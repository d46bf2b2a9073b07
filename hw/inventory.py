"""What the board has, whatever hardware.toml says: GPIO chips and sound cards present. For the web
page's hardware section and `doorstation status`, so an installer can see the names to put in
hardware.toml (docs/hardware.md). Read on demand; bounded; never raises."""
from __future__ import annotations

import re
from pathlib import Path

MAX_ITEMS = 32
_CARD = re.compile(r"^\s*(\d+)\s+\[([^\]]*)\]\s*:\s*(.*)$")


def sound_cards(proc_asound: Path = Path("/proc/asound")) -> list[dict]:
    """ALSA cards: [{"Card": 0, "Id": "Loopback", "Name": "Loopback - Loopback", "Device": "hw:Loopback"}]."""
    try:
        text = (proc_asound / "cards").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    cards: list[dict] = []
    for line in text.splitlines():
        m = _CARD.match(line)
        if m and len(cards) < MAX_ITEMS:
            card_id = m.group(2).strip()
            cards.append({"Card": int(m.group(1)), "Id": card_id, "Name": m.group(3).strip()[:120],
                          "Device": f"hw:{card_id}" if card_id else f"hw:{m.group(1)}"})
    return cards


def gpio_chips(dev: Path = Path("/dev")) -> list[dict]:
    """GPIO character devices: [{"Path": "/dev/gpiochip0", "Name": "gpiochip0", "Label": "pinctrl-bcm2711",
    "Lines": 58}] (the label is what hardware.toml's [gpio] chip may name)."""
    try:
        paths = sorted(p for p in dev.glob("gpiochip*") if p.name[8:].isdigit())[:MAX_ITEMS]
    except OSError:
        return []
    chips = []
    for path in paths:
        entry: dict = {"Path": str(path), "Name": path.name}
        try:
            import gpiod
            with gpiod.Chip(str(path)) as chip:
                info = chip.get_info()
                entry.update(Label=info.label, Lines=info.num_lines)
        except (OSError, ImportError, ValueError) as e:       # no access, not a chip: say so
            entry["Error"] = str(e)[:120] or type(e).__name__
        chips.append(entry)
    return chips
