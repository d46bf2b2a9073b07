"""A minimal STUN (RFC 5389) Binding responder on loopback, for tests: answers every Binding request
with XOR-MAPPED-ADDRESS and MAPPED-ADDRESS of the sender. Runs in a thread until stop()."""
from __future__ import annotations

import socket
import struct
import threading

MAGIC = 0x2112A442


class StunServer:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, (host, port) = self.sock.recvfrom(2048)
            except (socket.timeout, OSError):
                continue
            if len(data) < 20:
                continue
            msg_type, _length, cookie = struct.unpack("!HHI", data[:8])
            if msg_type != 0x0001 or cookie != MAGIC:
                continue
            self.requests += 1
            tid = data[8:20]
            addr = socket.inet_aton(host)
            xaddr = bytes(a ^ b for a, b in zip(addr, struct.pack("!I", MAGIC), strict=True))
            attrs = struct.pack("!HHBBH", 0x0020, 8, 0, 1, port ^ (MAGIC >> 16)) + xaddr
            attrs += struct.pack("!HHBBH", 0x0001, 8, 0, 1, port) + addr
            self.sock.sendto(struct.pack("!HHI", 0x0101, len(attrs), MAGIC) + tid + attrs, (host, port))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.sock.close()
