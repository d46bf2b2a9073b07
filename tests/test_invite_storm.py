"""INVITEs whose Via points nowhere (here: a loopback socket nobody reads) are answered but never
confirmed. They must not keep the station busy for a real caller (issue 9): each is dropped when
its ACK does not come (INCOMING_ACK_WAIT_S), and at the call limit a new caller takes the place of
the oldest unconfirmed one, so a real phone (baresip) calling during the storm is answered."""
from __future__ import annotations

import socket
import time
import uuid

import pytest

from daemon.sip.admission import INCOMING_ACK_WAIT_S
from tests.raw_sip import SDP
from tests.sip_peers import baresip_factory, wait_until  # noqa: F401  (fixture)
from tests.stack_sip import enable_sip, start_station

pytestmark = [pytest.mark.integration, pytest.mark.sip]


def spoofed_invites(station_port: int, n: int, hole: socket.socket | None = None) -> socket.socket:
    """n INVITEs sent from 127.0.0.2 (another host than the real phone on 127.0.0.1) whose Via and
    Contact name a port where a socket is bound but never read: no response and no BYE ever
    reaches the sender."""
    if hole is None:
        hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        hole.bind(("127.0.0.2", 0))
    hole_port = hole.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        out.bind(("127.0.0.2", 0))
        for _ in range(n):
            tag, call_id = uuid.uuid4().hex[:8], uuid.uuid4().hex
            msg = (f"INVITE sip:door@127.0.0.1:{station_port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.2:{hole_port};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                   f"Max-Forwards: 70\r\nFrom: <sip:storm@127.0.0.2:{hole_port}>;tag={tag}\r\n"
                   f"To: <sip:door@127.0.0.1:{station_port}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
                   f"Contact: <sip:storm@127.0.0.2:{hole_port}>\r\nContent-Type: application/sdp\r\n"
                   f"Content-Length: {len(SDP)}\r\n\r\n{SDP}")
            out.sendto(msg.encode(), ("127.0.0.1", station_port))
            time.sleep(0.02)
    return hole


def test_invites_that_never_ack_do_not_keep_a_real_caller_out(tmp_path, baresip_factory):  # noqa: F811
    st = start_station(tmp_path / "state")
    hole = None
    try:
        port = enable_sip(st, allow_incoming=True)
        hole = spoofed_invites(port, 10)
        time.sleep(1.5)             # their host has calls unconfirmed for over a second now
        spoofed_invites(port, 10, hole)
        storm = wait_until(lambda: len(s := [c for c in st.ok("GetCallStatuses")["CallStatus"]
                                             if c["Direction"] == "Incoming"]) >= 20 and s,
                           10.0, "the storm's calls")
        assert all(c["RemoteURI"].startswith("sip:storm@") for c in storm)
        assert sum(c["CallState"] == "Calling" for c in storm) <= 4, storm          # the call limit
        late = [c for c in storm if c["CallStateReason"] == "Denied"]
        assert len(late) >= 10, storm      # the second wave: refused, the host never ACKs
        bob = baresip_factory()
        t0 = time.monotonic()
        assert bob.command("dial", f"sip:door@127.0.0.1:{port}")["ok"]
        try:
            bob.wait_event("CALL_ESTABLISHED", timeout=10)
        except AssertionError:
            print("".join(line for line in st.output if "incoming" in line or "486" in line or "call" in line)[-4000:])
            raise
        answered_in = time.monotonic() - t0
        calls = st.ok("GetCallStatuses")["CallStatus"]
        real = [c for c in calls if "bob" in c["RemoteURI"]]
        assert real and real[-1]["CallState"] == "Active", calls
        print(f"real caller answered {answered_in * 1000:.0f} ms after dialling, during a storm of 20")
        # the storm's calls end on their own, and are recorded as failed
        ended = wait_until(lambda: all(c["CallState"] == "Terminated" for c in st.ok("GetCallStatuses")["CallStatus"]
                                       if c["RemoteURI"].startswith("sip:storm@")) and True,
                           INCOMING_ACK_WAIT_S + 10, "the storm's calls to end")
        assert ended
        storm = [c for c in st.ok("GetCallStatuses")["CallStatus"] if c["RemoteURI"].startswith("sip:storm@")]
        assert storm and {c["CallStateReason"] for c in storm} <= {"Failed", "Denied"}, storm
        assert any(c["CallStateReason"] == "Failed" for c in storm)
        assert bob.command("hangup")["ok"]
    finally:
        if hole is not None:
            hole.close()
        st.stop()
