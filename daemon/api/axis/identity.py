"""Who this station is, read from the board: what basicdeviceinfo.cgi and param.cgi report.

Every source is a path passed in (`IdentitySources`), so tests point them at files they make:

- SerialNumber: the MAC address of the first wired/wireless interface, 12 upper-case hex digits,
  as Axis serial numbers are (Home Assistant derives its unique id from it). No usable interface:
  12 hex digits derived from the board serial, with the locally-administered bit set so it can
  never collide with a real vendor MAC.
- SocSerialNumber: the Pi's serial from the device tree (/proc/device-tree/serial-number) or the
  `Serial` line of /proc/cpuinfo.
- ProdVariant (the board): /proc/device-tree/model, or cpuinfo's `Model`, else "generic <arch>".
- Soc: the last entry of /proc/device-tree/compatible (e.g. brcm,bcm2711 -> BCM2711), or cpuinfo's
  `Hardware`, else the architecture.
- HardwareID: cpuinfo's `Revision` (the Pi's board revision code), else "0".
- Version / BuildDate / BuildNumber: the installed doorstation package.
"""
from __future__ import annotations

import hashlib
import os
import platform
import re
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

BRAND = "doorstation"
PRODUCT = "doorstation"
PROD_TYPE = "Network Door Station"
WEB_URL = ""                       # no project home page to point at yet; the key must exist
MAX_SOURCE_BYTES = 65536           # /proc/cpuinfo on a 4-core Pi is ~1.5 KiB

_MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
_PREFERRED_IFACES = ("eth0", "end0", "wlan0")


@dataclass(frozen=True)
class IdentitySources:
    device_tree: Path = Path("/proc/device-tree")
    cpuinfo: Path = Path("/proc/cpuinfo")
    net: Path = Path("/sys/class/net")
    machine: str = field(default_factory=platform.machine)


@dataclass(frozen=True)
class DeviceIdentity:
    serial_number: str        # 12 hex digits
    soc_serial_number: str
    board: str                # ProdVariant
    soc: str
    hardware_id: str
    architecture: str
    version: str
    build_date: str           # Axis style: "Nov 30 2026 23:10"
    build_number: str

    def basic_device_info(self) -> dict[str, str]:
        """Every key of basicdeviceinfo.cgi's getAllProperties."""
        return {
            "Architecture": self.architecture,
            "Brand": BRAND,
            "BuildDate": self.build_date,
            "HardwareID": self.hardware_id,
            "ProdFullName": f"{PRODUCT} {PROD_TYPE} on {self.board}",
            "ProdNbr": PRODUCT,
            "ProdShortName": PRODUCT,
            "ProdType": PROD_TYPE,
            "ProdVariant": self.board,
            "SerialNumber": self.serial_number,
            "Soc": self.soc,
            "SocSerialNumber": self.soc_serial_number,
            "Version": self.version,
            "WebURL": WEB_URL,
        }


def _read_text(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SOURCE_BYTES)
    except OSError:
        return None
    text = data.replace(b"\x00", b"\n").decode("utf-8", "replace").strip()
    return text or None


def _cpuinfo(path: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in (_read_text(path) or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and value.strip():
            fields.setdefault(key.strip(), value.strip())
    return fields


def _printable(value: str, limit: int = 128) -> str:
    """Board strings end up in text/plain param lines: one line, printable, bounded."""
    return "".join(c for c in value if c.isprintable() and c not in "\r\n=")[:limit].strip()


def interface_mac(net: Path) -> str | None:
    """MAC of the preferred interface (eth0, end0, wlan0), else of the first other one that has a
    real address; loopback, virtual and all-zero addresses are skipped."""
    try:
        names = sorted(os.listdir(net))
    except OSError:
        return None
    ordered = [n for n in _PREFERRED_IFACES if n in names] + [n for n in names if n not in _PREFERRED_IFACES]
    for name in ordered:
        if name == "lo" or name.startswith(("veth", "docker", "br-", "virbr", "tun", "tap")):
            continue
        mac = (_read_text(net / name / "address") or "").lower()
        if _MAC_RE.match(mac) and mac != "00:00:00:00:00:00":
            return mac.replace(":", "").upper()
    return None


def _serial_from(board_serial: str) -> str:
    """12 hex digits from the board serial, locally administered (bit 1 of the first byte set)."""
    digest = bytearray(hashlib.sha256(board_serial.encode()).digest()[:6])
    digest[0] = (digest[0] | 0x02) & 0xFE
    return digest.hex().upper()


def _package_build() -> tuple[str, str, str]:
    """(version, build date, build number) of the installed doorstation."""
    try:
        version = metadata.version("doorstation")
    except metadata.PackageNotFoundError:
        version = "0"
    try:
        mtime = os.stat(Path(__file__).resolve().parent.parent.parent / "__init__.py").st_mtime
    except OSError:
        mtime = 0.0
    stamp = time.gmtime(mtime)
    return version, time.strftime("%b %d %Y %H:%M", stamp), time.strftime("%Y%m%d%H%M", stamp)


def read_identity(sources: IdentitySources = IdentitySources()) -> DeviceIdentity:
    tree, cpu = sources.device_tree, _cpuinfo(sources.cpuinfo)
    arch = _printable(sources.machine or "unknown", 32) or "unknown"
    soc_serial = _printable(_read_text(tree / "serial-number") or cpu.get("Serial", ""), 64)
    board = _printable(_read_text(tree / "model") or cpu.get("Model", "")) or f"generic {arch}"
    compatible = (_read_text(tree / "compatible") or "").splitlines()
    soc = compatible[-1].split(",")[-1].upper() if compatible else cpu.get("Hardware", arch)
    mac = interface_mac(sources.net)
    serial = mac or _serial_from(soc_serial or board)
    version, build_date, build_number = _package_build()
    return DeviceIdentity(
        serial_number=serial, soc_serial_number=soc_serial or "unknown", board=board,
        soc=_printable(soc, 64) or arch, hardware_id=_printable(cpu.get("Revision", "0"), 32) or "0",
        architecture=arch, version=version, build_date=build_date, build_number=build_number)
