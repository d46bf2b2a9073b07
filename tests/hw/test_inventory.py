"""hw.inventory: the GPIO chips and sound cards present (real devices: tests/vm/test_gpio_contract.py)."""
from hw.inventory import gpio_chips, sound_cards

CARDS = """ 0 [Loopback       ]: Loopback - Loopback
                      Loopback 1
 1 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones
                      bcm2835 Headphones
"""


def test_sound_cards_from_proc_asound(tmp_path):
    (tmp_path / "cards").write_text(CARDS)
    assert sound_cards(tmp_path) == [
        {"Card": 0, "Id": "Loopback", "Name": "Loopback - Loopback", "Device": "hw:Loopback"},
        {"Card": 1, "Id": "Headphones", "Name": "bcm2835_headpho - bcm2835 Headphones", "Device": "hw:Headphones"}]
    assert sound_cards(tmp_path / "absent") == []                  # no ALSA at all


def test_gpio_chips_lists_only_chip_devices_and_says_why_one_cannot_be_read(tmp_path):
    (tmp_path / "gpiochip0").write_text("not a device")
    (tmp_path / "gpiochipX").write_text("")                        # not a chip name
    (tmp_path / "null").write_text("")
    chips = gpio_chips(tmp_path)
    assert [c["Name"] for c in chips] == ["gpiochip0"]
    assert chips[0]["Path"] == str(tmp_path / "gpiochip0") and chips[0]["Error"]
    assert gpio_chips(tmp_path / "absent") == []
