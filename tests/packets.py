"""Packet capture for tests and benchmarks: IPv4 UDP and TCP on one interface, read from a packet
socket (AF_PACKET, needs root) by a thread, each packet with the kernel's receive timestamp.

Users: tests/netns.py (what crosses a veth: STUN, SIP) and bench/sip.py + bench/vm.py (INVITE and
RFC 2833 timings on `lo`).
"""
from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass
from typing import Callable

ETH_P_ALL = 0x0003      # a packet socket bound to one protocol sees only packets received, not sent
ETH_P_IP = 0x0800
SO_TIMESTAMPNS = 35


@dataclass(frozen=True)
class Packet:
    at: float           # kernel timestamp (CLOCK_REALTIME seconds)
    outgoing: bool      # sent by this host (on `lo` every packet is seen twice: out, then in)
    proto: int          # 17 UDP, 6 TCP
    src: str
    dst: str
    sport: int
    dport: int
    payload: bytes


def parse_ipv4(data: bytes) -> tuple[int, str, str, int, int, bytes] | None:
    """(proto, src, dst, sport, dport, payload) of an IPv4 UDP or TCP packet, else None."""
    if len(data) < 28 or data[0] >> 4 != 4 or data[9] not in (6, 17):
        return None
    ihl = (data[0] & 0x0F) * 4
    sport, dport = struct.unpack("!HH", data[ihl:ihl + 4])
    header = 8 if data[9] == 17 else (data[ihl + 12] >> 4) * 4
    return data[9], socket.inet_ntoa(data[12:16]), socket.inet_ntoa(data[16:20]), sport, dport, data[ihl + header:]


class PacketCapture:
    """Hands every IPv4 UDP/TCP packet on `interface` to `on_packet`, until close()."""

    def __init__(self, interface: str, on_packet: Callable[[Packet], None]) -> None:
        self._on_packet = on_packet
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._sock.bind((interface, 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"capture-{interface}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, anc, _flags, addr = self._sock.recvmsg(65535, socket.CMSG_SPACE(16))
            except socket.timeout:
                continue
            except OSError:
                return
            parsed = parse_ipv4(data) if addr[1] == ETH_P_IP else None
            stamp = next((struct.unpack("qq", d[:16]) for lvl, typ, d in anc
                          if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS), None)
            if parsed is None or stamp is None:
                continue
            self._on_packet(Packet(stamp[0] + stamp[1] / 1e9, addr[2] == socket.PACKET_OUTGOING, *parsed))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()
