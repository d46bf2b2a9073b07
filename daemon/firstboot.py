"""First boot of the Raspberry Pi image without keyboard or screen (docs/image.md).

`doorstation-firstboot.service` runs `python -m daemon.firstboot` as root at every boot, before the
network and the station start. On the first boot it names the station `doorstation-<serial>`. When
the boot partition holds a `doorstation.txt` (the person who flashed the card wrote it on their
computer), its settings are applied and the file is consumed: overwritten, deleted, and replaced by
`doorstation-applied.txt`, which keeps only what is not secret.

The file is `key = value` lines; `#` starts a comment. Keys: hostname, admin_password,
ssh_authorized_key, hardware (`pi4-gpio17-27-22`, `custom` = the `hardware.toml` next to it, or
`simulated`), wifi_ssid, wifi_psk, wifi_country. Every value is checked before anything is applied:
a file with one bad line changes nothing and says why in doorstation-applied.txt and the journal.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

FILE_NAME = "doorstation.txt"
APPLIED_NAME = "doorstation-applied.txt"
CUSTOM_HARDWARE_NAME = "hardware.toml"
MAX_FILE_BYTES = 16 * 1024
SECRET_KEYS = frozenset({"admin_password", "wifi_psk"})
KEYS = frozenset({"hostname", "admin_password", "ssh_authorized_key", "hardware",
                  "wifi_ssid", "wifi_psk", "wifi_country"})
HARDWARE_CHOICES = ("pi4-gpio17-27-22", "custom", "simulated")
_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_SSH_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|"
                      r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/=]{16,8000}( [^\r\n]{0,200})?$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")

# The wiring of docs/hardware.md on a Pi 4 with Debian's kernel (its gpiochip is "pinctrl-bcm2711",
# lines named GPIO<n>): button on GPIO17 to GND, LED on GPIO27, relay on GPIO22.
PRESETS = {
    "pi4-gpio17-27-22": """\
# written by doorstation-firstboot from the preset pi4-gpio17-27-22 (docs/hardware.md)
[gpio]
chip = "pinctrl-bcm2711"

[gpio.call_button]
line = "GPIO17"
active_low = true
bias = "pull-up"
debounce_ms = 30

[gpio.call_led]
line = "GPIO27"

[gpio.door_relay]
line = "GPIO22"
active_low = false
pulse_ms = 3000
""",
}


class FirstBootError(ValueError):
    """doorstation.txt is not acceptable; nothing was applied."""


@dataclass(frozen=True)
class Settings:
    hostname: str | None = None
    admin_password: str | None = None
    ssh_authorized_key: str | None = None
    hardware: str | None = None
    wifi_ssid: str | None = None
    wifi_psk: str | None = None
    wifi_country: str | None = None


def parse(text: str) -> Settings:
    """Parse and check doorstation.txt; raise FirstBootError naming the line at the first problem."""
    if len(text.encode()) > MAX_FILE_BYTES:
        raise FirstBootError(f"{FILE_NAME} is larger than {MAX_FILE_BYTES} bytes")
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip().lstrip("\ufeff")
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep:
            raise FirstBootError(f"line {number}: expected key = value")
        if key not in KEYS:
            raise FirstBootError(f"line {number}: unknown key {key!r} (known: {', '.join(sorted(KEYS))})")
        if key in values:
            raise FirstBootError(f"line {number}: {key} given twice")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if value:
            values[key] = value
    settings = Settings(**values)
    _check(settings)
    return settings


def _check(s: Settings) -> None:
    if s.hostname is not None and not _HOSTNAME.match(s.hostname):
        raise FirstBootError("hostname: 1-63 lower-case letters, digits and '-', not starting or ending with '-'")
    if s.admin_password is not None and not (10 <= len(s.admin_password) <= 128):
        raise FirstBootError("admin_password: 10 to 128 characters")
    if s.ssh_authorized_key is not None and not _SSH_KEY.match(s.ssh_authorized_key):
        raise FirstBootError("ssh_authorized_key: one public key line, e.g. 'ssh-ed25519 AAAA... me@laptop'")
    if s.hardware is not None and s.hardware not in HARDWARE_CHOICES:
        raise FirstBootError(f"hardware: one of {', '.join(HARDWARE_CHOICES)}")
    wifi = (s.wifi_ssid, s.wifi_psk, s.wifi_country)
    if any(v is not None for v in wifi):
        if None in wifi:
            raise FirstBootError("Wi-Fi needs all three: wifi_ssid, wifi_psk, wifi_country")
        assert s.wifi_ssid is not None and s.wifi_psk is not None and s.wifi_country is not None
        if not 1 <= len(s.wifi_ssid.encode()) <= 32:
            raise FirstBootError("wifi_ssid: 1 to 32 bytes")
        if not 8 <= len(s.wifi_psk) <= 63 or not s.wifi_psk.isascii():
            raise FirstBootError("wifi_psk: a WPA2 passphrase of 8 to 63 ASCII characters")
        if not _COUNTRY.match(s.wifi_country):
            raise FirstBootError("wifi_country: two capital letters (ISO 3166), e.g. DE")


def scrubbed(text: str) -> str:
    """The file as it was, with the values of secret keys replaced."""
    out = []
    for raw in text.splitlines():
        key = raw.partition("=")[0].strip().lower()
        out.append(f"{key} = (applied and removed)" if key in SECRET_KEYS and "=" in raw else raw)
    return "\n".join(out) + "\n"


def default_hostname(serial: str | None) -> str:
    """doorstation-<last 8 hex digits of the board's serial number>, or plain doorstation."""
    digits = re.sub(r"[^0-9a-f]", "", (serial or "").lower())
    return f"doorstation-{digits[-8:]}" if digits.strip("0") else "doorstation"


def read_serial(candidates: tuple[Path, ...] = (Path("/sys/firmware/devicetree/base/serial-number"),
                                                 Path("/etc/machine-id"))) -> str | None:
    """The Pi's serial number from its device tree; the machine id where there is none (qemu)."""
    for path in candidates:
        try:
            text = path.read_bytes()[:128].rstrip(b"\0\n").decode("ascii", "replace")
        except OSError:
            continue
        if text.strip():
            return text.strip()
    return None


def wpa_supplicant_conf(ssid: str, psk: str, country: str) -> str:
    """wpa_supplicant's configuration with the derived key (PBKDF2, as wpa_passphrase computes it),
    so the passphrase itself is not stored on the card; the SSID in hex needs no quoting."""
    key = hashlib.pbkdf2_hmac("sha1", psk.encode(), ssid.encode(), 4096, 32).hex()
    return (f"# written by doorstation-firstboot\nctrl_interface=DIR=/run/wpa_supplicant\ncountry={country}\n"
            f"network={{\n\tssid={ssid.encode().hex()}\n\tpsk={key}\n\tkey_mgmt=WPA-PSK\n}}\n")


def hosts_file(hostname: str) -> str:
    return (f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n"
            "::1\t\tlocalhost ip6-localhost ip6-loopback\n")


@dataclass(frozen=True)
class System:
    """Where first boot writes, and how it runs commands (tests pass a temporary root)."""
    root: Path = Path("/")
    boot: Path = Path("/boot/firmware")
    state: Path = Path("/var/lib/doorstation")
    doorstation: str = "/opt/doorstation/.venv/bin/doorstation"
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run
    set_hostname: Callable[[str], None] = socket.sethostname

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _consume(path: Path) -> None:
    """Overwrite the file's bytes before deleting it (on FAT the clusters would otherwise keep the
    secrets until reused; flash wear levelling can still keep a copy: docs/image.md)."""
    try:
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.write(b"\0" * size)
            f.flush()
            os.fsync(f.fileno())
        path.unlink()
    except FileNotFoundError:
        pass


def apply(settings: Settings, system: System, log: Callable[[str], None]) -> None:
    """Apply checked settings. Order: what cannot fail first, the admin password last but one."""
    if settings.hostname:
        set_hostname(settings.hostname, system, log)
    if system.root == Path("/"):
        system.run(["install", "-d", "-o", "doorstation", "-g", "doorstation", "-m", "0700", str(system.state)],
                   check=True)
    if settings.hardware == "custom":
        src = system.boot / CUSTOM_HARDWARE_NAME
        try:
            text = src.read_text()[:65536]
        except OSError as e:
            raise FirstBootError(f"hardware = custom but {src} cannot be read ({e.strerror})") from e
        _install_state_file(system, "hardware.toml", text)
        _consume(src)
        log("hardware.toml: the custom one from the boot partition")
    elif settings.hardware in PRESETS:
        _install_state_file(system, "hardware.toml", PRESETS[settings.hardware])
        log(f"hardware.toml: preset {settings.hardware}")
    elif settings.hardware == "simulated":
        system.path(str(system.state / "hardware.toml")).unlink(missing_ok=True)
        log("hardware.toml: removed (simulated GPIO and audio)")
    if settings.wifi_ssid and settings.wifi_psk and settings.wifi_country:
        _write(system.path("/etc/wpa_supplicant/wpa_supplicant-wlan0.conf"),
               wpa_supplicant_conf(settings.wifi_ssid, settings.wifi_psk, settings.wifi_country), 0o600)
        system.run(["systemctl", "enable", "wpa_supplicant@wlan0.service"], check=True)
        system.run(["systemctl", "start", "--no-block", "wpa_supplicant@wlan0.service"], check=False)
        log(f"Wi-Fi: network {settings.wifi_ssid!r} ({settings.wifi_country})")
    if settings.ssh_authorized_key:
        _write(system.path("/root/.ssh/authorized_keys"), settings.ssh_authorized_key + "\n", 0o600)
        os.chmod(system.path("/root/.ssh"), 0o700)
        system.run(["ssh-keygen", "-A"], check=True, capture_output=True)
        system.run(["systemctl", "enable", "ssh.service"], check=True, capture_output=True)
        system.run(["systemctl", "start", "--no-block", "ssh.service"], check=False)
        log("SSH: enabled for root with the given key (passwords refused)")
    if settings.admin_password:
        system.run(["runuser", "-u", "doorstation", "--", system.doorstation, "user", "add", "admin",
                    "--role", "admin", "--password-stdin", "--replace", "--state-dir", str(system.state)],
                   input=settings.admin_password + "\n", text=True, check=True, capture_output=True)
        log("API user 'admin': password set")


def set_hostname(name: str, system: System, log: Callable[[str], None]) -> None:
    _write(system.path("/etc/hostname"), name + "\n", 0o644)
    _write(system.path("/etc/hosts"), hosts_file(name), 0o644)
    try:
        system.set_hostname(name)
    except OSError as e:
        log(f"hostname: written, but not set now ({e.strerror}); it takes effect at the next boot")
    log(f"hostname: {name}")


def _install_state_file(system: System, name: str, text: str) -> None:
    """A file in the station's state directory, owned by the doorstation user, private."""
    state = system.path(str(system.state))
    path = state / name
    _write(path, text, 0o600)
    if system.root == Path("/"):
        system.run(["chown", "doorstation:doorstation", str(path)], check=True)


def first_boot(system: System, log: Callable[[str], None]) -> int:
    marker = system.path("/var/lib/doorstation-image/named")
    if not marker.exists():
        set_hostname(default_hostname(read_serial()), system, log)
        _write(marker, "", 0o644)
    source = system.boot / FILE_NAME
    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        return 0
    text = raw[:MAX_FILE_BYTES + 1].decode("utf-8", "replace")
    report = [f"# {FILE_NAME} as read at boot, secrets removed; what happened is at the end", scrubbed(text)]
    rc = 0
    try:
        settings = parse(text)
        if settings.hostname is None and settings.admin_password is None and settings.ssh_authorized_key is None \
                and settings.hardware is None and settings.wifi_ssid is None:
            log(f"{FILE_NAME}: no settings")
        applied: list[str] = []

        def note(message: str) -> None:
            applied.append(message)
            log(message)
        apply(settings, system, note)
        report += ["# applied:"] + [f"#   {a}" for a in applied]
    except (FirstBootError, subprocess.CalledProcessError, OSError) as e:
        detail = e.stderr.strip() if isinstance(e, subprocess.CalledProcessError) and e.stderr else str(e)
        log(f"{FILE_NAME} not applied: {detail}")
        report.append(f"# NOT applied: {detail}")
        rc = 1
    _write(system.boot / APPLIED_NAME, "\n".join(report) + "\n", 0o600)
    _consume(source)
    return rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m daemon.firstboot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--boot", type=Path, default=Path("/boot/firmware"))
    parser.add_argument("--state", type=Path, default=Path("/var/lib/doorstation"))
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(f"doorstation-firstboot: {message}", flush=True)
    return first_boot(System(boot=args.boot, state=args.state), log)


if __name__ == "__main__":
    sys.exit(main())
