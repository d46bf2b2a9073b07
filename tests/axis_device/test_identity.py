"""Board identity from files the test makes (device tree, cpuinfo, /sys/class/net)."""
import re
from pathlib import Path

from daemon.api.axis.identity import IdentitySources, interface_mac, read_identity

CPUINFO_PI4 = """processor	: 0
model name	: ARMv7 Processor rev 3 (v7l)
Hardware	: BCM2835
Revision	: c03114
Serial		: 10000000a1b2c3d4
Model		: Raspberry Pi 4 Model B Rev 1.4
"""


def board(tmp_path: Path, *, tree: bool = True, cpuinfo: str = CPUINFO_PI4,
          ifaces: dict[str, str] | None = None) -> IdentitySources:
    dt, net = tmp_path / "device-tree", tmp_path / "net"
    dt.mkdir(parents=True)
    net.mkdir(parents=True)
    if tree:
        (dt / "model").write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\x00")
        (dt / "serial-number").write_bytes(b"10000000a1b2c3d4\x00")
        (dt / "compatible").write_bytes(b"raspberrypi,4-model-b\x00brcm,bcm2711\x00")
    (tmp_path / "cpuinfo").write_text(cpuinfo)
    for name, mac in (ifaces or {}).items():
        (net / name).mkdir()
        (net / name / "address").write_text(mac + "\n")
    return IdentitySources(device_tree=dt, cpuinfo=tmp_path / "cpuinfo", net=net, machine="aarch64")


def test_pi_from_device_tree_and_mac(tmp_path):
    ident = read_identity(board(tmp_path, ifaces={"lo": "00:00:00:00:00:00", "wlan0": "dc:a6:32:00:00:02",
                                                  "eth0": "dc:a6:32:12:34:56"}))
    assert ident.serial_number == "DCA632123456"          # eth0 preferred over wlan0
    assert ident.soc_serial_number == "10000000a1b2c3d4"
    assert ident.board == "Raspberry Pi 4 Model B Rev 1.4"
    assert ident.soc == "BCM2711"
    assert ident.hardware_id == "c03114"
    assert ident.architecture == "aarch64"
    info = ident.basic_device_info()
    assert set(info) == {"Architecture", "Brand", "BuildDate", "HardwareID", "ProdFullName", "ProdNbr",
                         "ProdShortName", "ProdType", "ProdVariant", "SerialNumber", "Soc",
                         "SocSerialNumber", "Version", "WebURL"}
    assert info["ProdVariant"] == "Raspberry Pi 4 Model B Rev 1.4"


def test_cpuinfo_when_no_device_tree(tmp_path):
    ident = read_identity(board(tmp_path, tree=False, ifaces={"end0": "d8:3a:dd:01:02:03"}))
    assert ident.serial_number == "D83ADD010203"
    assert ident.soc_serial_number == "10000000a1b2c3d4"
    assert ident.board == "Raspberry Pi 4 Model B Rev 1.4"
    assert ident.soc == "BCM2835"


def test_no_interface_gives_a_locally_administered_serial(tmp_path):
    ident = read_identity(board(tmp_path, ifaces={"lo": "00:00:00:00:00:00", "veth1": "aa:bb:cc:dd:ee:ff"}))
    assert re.fullmatch(r"[0-9A-F]{12}", ident.serial_number)
    first = int(ident.serial_number[:2], 16)
    assert first & 0x02 and not first & 0x01           # locally administered, unicast
    assert read_identity(board(tmp_path / "again", ifaces={})).serial_number == ident.serial_number


def test_generic_machine_without_any_source(tmp_path):
    sources = IdentitySources(device_tree=tmp_path / "none", cpuinfo=tmp_path / "none",
                              net=tmp_path / "none", machine="x86_64")
    ident = read_identity(sources)
    assert ident.board == "generic x86_64" and ident.soc == "x86_64" and ident.hardware_id == "0"
    assert re.fullmatch(r"[0-9A-F]{12}", ident.serial_number)


def test_hostile_board_strings_stay_on_one_line(tmp_path):
    sources = board(tmp_path, tree=False, cpuinfo="Model : evil\rroot.Brand.ProdNbr=x\nSerial : 1=2\n")
    ident = read_identity(sources)
    for value in ident.basic_device_info().values():
        assert "\n" not in value and "\r" not in value and "=" not in value


def test_interface_mac_skips_virtual_and_zero(tmp_path):
    net = tmp_path / "net"
    for name, mac in {"docker0": "02:42:ac:11:00:02", "enp3s0": "00:00:00:00:00:00",
                      "wlp2s0": "3c:22:fb:aa:bb:cc"}.items():
        (net / name).mkdir(parents=True)
        (net / name / "address").write_text(mac)
    assert interface_mac(net) == "3C22FBAABBCC"
