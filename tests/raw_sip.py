"""A raw SIP caller over UDP on loopback: INVITE, 200, ACK, BYE, several calls at a time, as fast
as it can. Shared by tests/test_call_flood.py, tests/test_door_guard.py and bench/door.py."""
from __future__ import annotations

import re
import socket
import time
import uuid

SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


class RawCaller:
    def __init__(self, station_port: int):
        self.target = ("127.0.0.1", station_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]

    def send(self, method: str, call_id: str, from_tag: str, cseq: int, to_tag: str = "", body: str = "") -> None:
        to = f"<sip:door@127.0.0.1:{self.target[1]}>" + (f";tag={to_tag}" if to_tag else "")
        head = (f"{method} sip:door@127.0.0.1:{self.target[1]} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:flood@127.0.0.1:{self.port}>;tag={from_tag}\r\nTo: {to}\r\n"
                f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:flood@127.0.0.1:{self.port}>\r\n")
        if body:
            head += "Content-Type: application/sdp\r\n"
        self.sock.sendto(f"{head}Content-Length: {len(body)}\r\n\r\n{body}".encode(), self.target)

    def batch(self, n: int, deadline: float) -> dict[int, int]:
        """n calls at once; each final response is ACKed, a 200 also ended with BYE. Returns
        {status code: count} of the final responses."""
        calls = {uuid.uuid4().hex: uuid.uuid4().hex[:8] for _ in range(n)}
        for call_id, tag in calls.items():
            self.send("INVITE", call_id, tag, 1, body=SDP)
        codes: dict[int, int] = {}
        while calls and time.monotonic() < deadline:
            try:
                data = self.sock.recv(65535).decode(errors="replace")
            except socket.timeout:
                continue
            status = re.match(r"SIP/2.0 (\d+)", data)
            call_id = re.search(r"Call-ID: *(\S+)", data)
            cseq = re.search(r"CSeq: *\d+ (\w+)", data)
            if not (status and call_id and cseq) or cseq.group(1) != "INVITE" or call_id.group(1) not in calls:
                continue
            code = int(status.group(1))
            if code < 200:
                continue
            to_tag = re.search(r"To:[^\r\n]*;tag=([^;\r\n]+)", data).group(1)
            tag = calls.pop(call_id.group(1))
            self.send("ACK", call_id.group(1), tag, 1, to_tag)
            if code == 200:
                self.send("BYE", call_id.group(1), tag, 2, to_tag)
            codes[code] = codes.get(code, 0) + 1
        return codes

    def close(self) -> None:
        self.sock.close()
