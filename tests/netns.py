"""A network namespace made by a test, joined to this one by a veth pair: the station runs inside
it on all interfaces (as on a Pi, with real non-loopback addresses), peers run on this side, and
every packet crosses between the two namespaces without leaving the machine. Needs root
(`ip netns`), as CI runs; elsewhere the fixture skips the test with the reason.

Also a sniffer on this side of the veth (tests/packets.py) for what a test must see on the wire.
"""
from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
import threading
from dataclasses import dataclass

import pytest

from tests.packets import Packet, PacketCapture


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@dataclass
class Netns:
    name: str
    host4: str      # this side of the veth
    host6: str
    station4: str   # the namespace's side
    station6: str
    outer: str = ""  # this side's interface name


@pytest.fixture
def netns():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to make a network namespace")
    n = random.randint(1, 250)
    ns = Netns(f"ds-{os.getpid()}-{n}", f"10.77.{n}.1", f"fd77:0:0:{n}::1", f"10.77.{n}.2", f"fd77:0:0:{n}::2")
    outer, inner = f"dsh{n}x{os.getpid() % 10000}", f"dsn{n}x{os.getpid() % 10000}"
    ip("netns", "add", ns.name)
    try:
        ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        ip("link", "set", inner, "netns", ns.name)
        ip("addr", "add", f"{ns.host4}/24", "dev", outer)
        ip("-6", "addr", "add", f"{ns.host6}/64", "dev", outer, "nodad")
        ip("link", "set", outer, "up")
        for args in (("addr", "add", f"{ns.station4}/24", "dev", inner),
                     ("-6", "addr", "add", f"{ns.station6}/64", "dev", inner, "nodad"),
                     ("link", "set", inner, "up"), ("link", "set", "lo", "up"),
                     ("route", "add", "default", "via", ns.host4),
                     ("-6", "route", "add", "default", "via", ns.host6)):
            ip("-n", ns.name, *args)
        ns.outer = outer
        yield ns
    finally:
        subprocess.run(["ip", "link", "del", outer], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", ns.name], capture_output=True, timeout=10)



STUN_MAGIC = 0x2112A442


class Sniffer:
    """Every IPv4 UDP/TCP packet on one interface, kept in memory until stop()."""

    def __init__(self, interface: str) -> None:
        self.packets: list[Packet] = []
        self._lock = threading.Lock()
        self._capture = PacketCapture(interface, self._keep)

    def _keep(self, packet: Packet) -> None:
        with self._lock:
            self.packets.append(packet)

    def stop(self) -> None:
        self._capture.close()

    def snapshot(self) -> list[Packet]:
        with self._lock:
            return list(self.packets)

    def stun(self, message_type: int) -> list[Packet]:
        """STUN messages over UDP of a type (0x0001 Binding request, 0x0101 its success, 0x0003
        Allocate, 0x0103 its success)."""
        return [p for p in self.snapshot() if p.proto == 17 and len(p.payload) >= 20
                and struct.unpack("!HHI", p.payload[:8])[::2] == (message_type, STUN_MAGIC)]

    def sip_text(self) -> str:
        """Every SIP message seen: UDP datagrams, and each TCP direction's bytes joined (an INVITE
        with ICE candidates is over 1300 bytes, so pjsip sends it over TCP, in segments)."""
        packets = self.snapshot()
        udp = [p.payload for p in packets if p.proto == 17 and b"SIP/2.0" in p.payload[:300]]
        streams: dict[tuple, bytes] = {}
        for p in packets:
            if p.proto == 6 and p.payload:
                key = (p.src, p.sport, p.dst, p.dport)
                streams[key] = streams.get(key, b"") + p.payload
        return "\n".join(b.decode(errors="replace") for b in [*udp, *streams.values()])


@pytest.fixture
def sniffer(netns):
    s = Sniffer(netns.outer)
    yield s
    s.stop()
