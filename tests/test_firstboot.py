"""daemon.firstboot: doorstation.txt parsing, checking, applying into a temporary root, scrubbing.
Pure logic (commands are recorded, not run): also part of the arm64 subset run inside the image."""
import hashlib
import subprocess
from pathlib import Path

import pytest

from daemon import firstboot
from daemon.firstboot import FirstBootError, System

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx6ZgYy9Q1mQfJq3Qk2Y0nQe8Kk2yB2T6P0bq0xQ2pF me@laptop"


def test_parse_accepts_every_key_and_strips_quotes():
    s = firstboot.parse(f"""# comment
hostname = frontdoor
admin_password = "correct horse battery"
ssh_authorized_key = {KEY}
hardware = pi4-gpio17-27-22
wifi_ssid = Home
wifi_psk = 'passphrase1'
wifi_country = DE
""")
    assert s.hostname == "frontdoor" and s.admin_password == "correct horse battery"
    assert s.ssh_authorized_key == KEY and s.hardware == "pi4-gpio17-27-22"
    assert (s.wifi_ssid, s.wifi_psk, s.wifi_country) == ("Home", "passphrase1", "DE")


@pytest.mark.parametrize("text, problem", [
    ("hostname = Front_Door", "hostname"),
    ("hostname = -x", "hostname"),
    ("admin_password = short", "admin_password"),
    ("ssh_authorized_key = ssh-ed25519 AAAA", "ssh_authorized_key"),
    ("ssh_authorized_key = command=\"rm\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA", "ssh_authorized_key"),
    ("hardware = pi5", "hardware"),
    ("wifi_ssid = x", "all three"),
    ("wifi_ssid = x\nwifi_psk = short\nwifi_country = DE", "wifi_psk"),
    ("wifi_ssid = x\nwifi_psk = longenough\nwifi_country = de", "wifi_country"),
    ("colour = blue", "unknown key"),
    ("hostname = a\nhostname = b", "twice"),
    ("just words", "key = value"),
    ("# " + "x" * 20000, "larger"),
])
def test_parse_rejects(text, problem):
    with pytest.raises(FirstBootError, match=problem):
        firstboot.parse(text)


def test_scrubbed_removes_secret_values_only():
    out = firstboot.scrubbed("hostname = a\nadmin_password = secret-secret\nwifi_psk=abcdefgh\n")
    assert "secret-secret" not in out and "abcdefgh" not in out
    assert "hostname = a" in out and "admin_password = (applied and removed)" in out


def test_default_hostname_from_serial():
    assert firstboot.default_hostname("10000000c0ffee42") == "doorstation-c0ffee42"
    assert firstboot.default_hostname("00000000") == "doorstation"
    assert firstboot.default_hostname(None) == "doorstation"


def test_wpa_key_is_the_pbkdf2_of_wpa_passphrase_not_the_passphrase():
    conf = firstboot.wpa_supplicant_conf("Home", "passphrase1", "DE")
    assert "passphrase1" not in conf
    assert hashlib.pbkdf2_hmac("sha1", b"passphrase1", b"Home", 4096, 32).hex() in conf
    assert "ssid=486f6d65" in conf and "country=DE" in conf


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, argv, **kwargs):
        self.calls.append((argv, kwargs.get("input")))
        return subprocess.CompletedProcess(argv, 0, "", "")


def make_system(tmp_path: Path) -> tuple[System, Recorder, list[str]]:
    rec, names = Recorder(), []
    boot = tmp_path / "boot"
    boot.mkdir()
    return System(root=tmp_path / "root", boot=boot, state=Path("/var/lib/doorstation"), run=rec,
                  set_hostname=names.append), rec, names


def test_first_boot_applies_and_consumes_the_file(tmp_path):
    system, rec, names = make_system(tmp_path)
    (system.boot / "doorstation.txt").write_text(
        f"hostname = frontdoor\nadmin_password = a-long-password\nssh_authorized_key = {KEY}\n"
        "hardware = pi4-gpio17-27-22\n")
    logs: list[str] = []
    assert firstboot.first_boot(system, logs.append) == 0
    assert not (system.boot / "doorstation.txt").exists()
    applied = (system.boot / "doorstation-applied.txt").read_text()
    assert "a-long-password" not in applied and "hostname = frontdoor" in applied
    assert names[-1] == "frontdoor"
    assert (system.root / "etc/hostname").read_text() == "frontdoor\n"
    assert "127.0.1.1\tfrontdoor" in (system.root / "etc/hosts").read_text()
    assert (system.root / "root/.ssh/authorized_keys").read_text() == KEY + "\n"
    hw = (system.root / "var/lib/doorstation/hardware.toml").read_text()
    assert 'line = "GPIO17"' in hw and 'line = "GPIO22"' in hw
    user_add = [c for c in rec.calls if "user" in c[0]]
    assert user_add and user_add[0][1] == "a-long-password\n"
    assert ["systemctl", "enable", "ssh.service"] in [c[0] for c in rec.calls]


def test_preset_is_a_valid_hardware_toml(tmp_path):
    from daemon import hwconfig
    (tmp_path / "hardware.toml").write_text(firstboot.PRESETS["pi4-gpio17-27-22"])
    cfg = hwconfig.load(tmp_path)
    assert cfg.gpio.chip == "pinctrl-bcm2711" and not cfg.gpio.simulated


def test_a_bad_file_changes_nothing_and_is_still_consumed(tmp_path):
    system, rec, names = make_system(tmp_path)
    (system.boot / "doorstation.txt").write_text("hostname = ok\nadmin_password = tiny\n")
    logs: list[str] = []
    assert firstboot.first_boot(system, logs.append) == 1
    assert not (system.boot / "doorstation.txt").exists()
    applied = (system.boot / "doorstation-applied.txt").read_text()
    assert "NOT applied: admin_password" in applied and "tiny" not in applied
    assert not [c for c in rec.calls if "user" in c[0]]
    assert names == [names[0]] and names[0].startswith("doorstation")   # only the default name


def test_without_a_file_only_the_default_name_once(tmp_path):
    system, rec, names = make_system(tmp_path)
    assert firstboot.first_boot(system, lambda m: None) == 0
    assert firstboot.first_boot(system, lambda m: None) == 0
    assert len(names) == 1 and rec.calls == []
