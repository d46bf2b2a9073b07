"""Unit tests of the RTSP microphone's logic: RTP packetising of the hub's mu-law bytes, the
TCP-interleaved transport, and the session bounds (a UDP client that stops its keep-alives is
dropped and its supervisor stream closed). The supervisor's end is a scripted Unix socket here;
tests/test_rtsp_audio.py runs the real one."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import struct
import threading
import time

import pytest

from daemon.audiostream import protocol
from daemon.rtsp import server as rtsp_server
from daemon.rtsp.audio import MAX_PENDING, PcmuPacketizer, interleaved_frame, parse_interleaved, rtp_payload
from daemon.rtsp.auth import DigestVerifier
from daemon.rtsp.hub import EventHub
from daemon.users import REALM, UserRecord
from tests.test_rtsp_events import RawRtsp


def test_packets_are_160_samples_with_counted_timestamps_and_wrapping_sequence():
    p = PcmuPacketizer(ssrc=0x01020304, seq=0xFFFF, ts_base=0xFFFFFF00)
    assert p.feed(b"\x7f" * 100) == []                         # less than one packet: held
    packets = p.feed(b"\x7f" * 300)                             # 400 bytes: two packets, 80 held
    heads = [struct.unpack("!BBHII", x[:12]) for x in packets]
    assert heads == [(0x80, 0x80, 0xFFFF, 0xFFFFFF00, 0x01020304), (0x80, 0x00, 0x0000, 0xFFFFFFA0, 0x01020304)]
    assert all(len(x) == 172 for x in packets) and len(p.pending) == 80


def test_a_backlog_beyond_one_second_is_cut_and_the_timestamp_jumps_over_it():
    p = PcmuPacketizer(1, 0, 0)
    packets = p.feed(b"\x00" * (MAX_PENDING + 480))
    assert p.discarded == 480 and len(packets) == MAX_PENDING // 160
    assert struct.unpack("!I", packets[0][4:8])[0] == 480       # the samples skipped still count


@pytest.mark.parametrize("value, expected", [
    ("RTP/AVP/TCP;unicast;interleaved=0-1", (0, 1)),
    ("RTP/AVP/TCP;unicast;interleaved=4-5", (4, 5)),
    ("RTP/AVP/TCP;unicast", (0, 1)),
    ("RTP/AVP;unicast;client_port=5000-5001", None),
    ("RTP/AVP/TCP;multicast;interleaved=0-1", None),
])
def test_interleaved_transport(value, expected):
    got = parse_interleaved(value)
    assert (None if got is None else (got.rtp_channel, got.rtcp_channel)) == expected


def test_backchannel_rtp_parsing():
    plain = struct.pack("!BBHII", 0x80, 0x80, 7, 0, 1) + b"abc"
    assert rtp_payload(plain) == (7, b"abc")
    csrc_ext_pad = (struct.pack("!BBHII", 0xB1, 0, 8, 0, 1) + b"CSRC" + b"\x00\x01\x00\x01" + b"EXT!"
                    + b"payload" + b"\x00\x02")
    assert rtp_payload(csrc_ext_pad) == (8, b"payload")
    assert rtp_payload(struct.pack("!BBHII", 0x80, 8, 7, 0, 1) + b"abc") is None     # PCMA: not ours
    assert rtp_payload(b"\x80\x00\x00") is None                                      # truncated
    assert rtp_payload(struct.pack("!BBHII", 0xA0, 0, 7, 0, 1) + b"\xff") is None     # padding > packet
    assert rtp_payload(struct.pack("!BBHII", 0x40, 0, 7, 0, 1)) is None               # version 1


def test_interleaved_frame():
    assert interleaved_frame(2, b"abc") == b"$\x02\x00\x03abc"


class ScriptedSupervisor:
    """The supervisor's audio.sock as the protocol says: one JSON line each way, then mu-law
    bytes every 20 ms until the RTSP process closes its end (which is recorded)."""

    def __init__(self):
        self.opened = 0
        self.closed = 0

    async def serve(self, reader, writer):
        protocol.decode(await reader.readline())
        self.opened += 1
        writer.write(protocol.encode({"ok": True, "id": self.opened, "rate": 16000}))
        try:
            while True:
                writer.write(b"\xff" * 160)
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(1), 0.02) == b"":
                        break
                except asyncio.TimeoutError:
                    pass
        except ConnectionError:
            pass
        self.closed += 1
        writer.close()


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setattr(rtsp_server, "IDLE_TIMEOUT", 1.5)
    users = {"viewer": UserRecord("viewer", "viewer", REALM, hashlib.md5(f"viewer:{REALM}:pw-1".encode()).hexdigest(),
                                  "", "", 0.0)}
    loop = asyncio.new_event_loop()
    supervisor = ScriptedSupervisor()
    path = str(tmp_path / "audio.sock")
    srv = rtsp_server.RtspServer(EventHub(logging.getLogger("t")), DigestVerifier(users.get),
                                 logging.getLogger("t"), audio_socket=path)

    async def start():
        await asyncio.start_unix_server(supervisor.serve, path=path)
        await srv.start("127.0.0.1", 0)
    loop.run_until_complete(start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    srv.port = srv.sockets[0].getsockname()[1]
    srv.supervisor = supervisor
    yield srv
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_udp_audio_client_without_keep_alives_is_dropped(server):
    client = RawRtsp(server.port, ("viewer", "pw-1")).play("audio=1&video=0")
    try:
        assert len(client.rtp.recv(2048)) == 172
        assert server.supervisor.opened == 1
        # no keep-alive: after the idle bound the connection is closed and the stream with it
        client.sock.settimeout(5)
        assert client.sock.recv(100) == b""
        assert wait(lambda: server.supervisor.closed == 1)
    finally:
        client.close()


def test_udp_audio_client_with_keep_alives_stays(server):
    client = RawRtsp(server.port, ("viewer", "pw-1")).play("audio=1&video=0")
    try:
        for _ in range(4):                                     # 4 x 0.8 s > the 1.5 s idle bound
            time.sleep(0.8)
            status, _, _ = client.request("GET_PARAMETER", client.url("audio=1&video=0"), {"Session": client.session})
            assert status == 200
        assert server.supervisor.closed == 0
        assert len(client.rtp.recv(2048)) == 172
    finally:
        client.close()
    assert wait(lambda: server.supervisor.closed == 1)        # the connection's end ends the stream


def test_interleaved_client_that_does_not_read_is_closed(server, monkeypatch):
    monkeypatch.setattr(rtsp_server, "AUDIO_SLOW_CLOSE", 0.5)
    client = RawRtsp(server.port, ("viewer", "pw-1"))
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        url = client.url("audio=1&video=0")
        status, _, sdp = client.authed("DESCRIBE", url)
        control = sdp.decode().split("a=control:")[1].split("\r\n")[0]
        status, h, _ = client.authed("SETUP", control, {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"},
                                     auth_uri=url)
        assert status == 200
        assert client.authed("PLAY", url, {"Session": h["session"].split(";")[0]})[0] == 200
        # read nothing: ~2 s of audio fill the buffers, then 0.5 s of drops closes the connection
        assert wait(lambda: server.supervisor.closed == 1, timeout=30)
    finally:
        client.close()
