"""The microphone over RTSP (`media.amp?audio=1&video=0`) on a real `doorstation run --rtsp` with
the simulated sound device (the microphone plays a 1000 Hz tone): ffmpeg (Debian's, written by
nobody here) records it over UDP and over TCP-interleaved, a raw client checks the RTP packets and
that the stream answers a VMS call like receive.cgi does, the backchannel is refused with 551."""
from __future__ import annotations

import json
import re
import struct
import subprocess
import time

import pytest

from tests.audio_analysis import mulaw_to_pcm, pcm_to_mulaw, read_wav, tone, tone_blocks
from tests.harness import OPERATOR, VIEWER, Station, doorstation, free_port
from tests.stack_sip import TOPIC_STATE_CHANGE, EventTail, call_status, wait_until
from tests.test_rtsp_events import RawRtsp
from tests.test_vms_audio import MIC_HZ, OTHER_HZ, TX_HZ, audio_toml, reasons, transmit, vms_config

pytestmark = pytest.mark.integration

AUDIO = "audio=1&video=0"
TALK = "simplex=receiver&audio=1&video=0"
BACKCHANNEL = "www.onvif.org/ver20/backchannel"
NOT_MIC = [h for h in OTHER_HZ if h != MIC_HZ]


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    base = tmp_path_factory.mktemp("rtsp-audio")
    state = base / "state"
    state.mkdir()
    (state / "hardware.toml").write_text(audio_toml(base / "speaker.wav"))
    port = free_port()
    st = Station(state, extra_args=["--rtsp", f"127.0.0.1:{port}"]).start()
    st.rtsp_port = port
    yield st
    st.stop()


def audio_counts(st: Station) -> dict:
    return json.loads(doorstation("status", state_dir=st.state_dir).stdout)["AudioStreams"]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_ffmpeg_records_the_microphone(station, tmp_path, transport):
    out = tmp_path / "mic.wav"
    url = f"rtsp://{VIEWER[0]}:{VIEWER[1]}@127.0.0.1:{station.rtsp_port}/axis-media/media.amp?{AUDIO}"
    done = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", transport, "-i", url,
                           "-t", "2", "-f", "wav", str(out)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    samples, rate = read_wav(out)
    assert rate == 8000
    blocks = tone_blocks(samples, rate, MIC_HZ, NOT_MIC)
    assert blocks >= 15, f"{blocks} blocks of {MIC_HZ} Hz in 2 s recorded over {transport}"
    wait_until(lambda: audio_counts(station)["Counts"]["receive"] == 0, 10, "ffmpeg's stream to end")


def rtp_packets(client: RawRtsp, n: int) -> list[bytes]:
    client.rtp.settimeout(3)
    return [client.rtp.recv(2048) for _ in range(n)]


def test_rtsp_audio_answers_a_vms_call_and_teardown_ends_it(station):
    st = station
    vms_config(st, 1, 0)
    try:
        tail = EventTail(st)
        call_id = st.ok("Call", {"To": "VMS_CALL"})["CallId"]
        assert call_status(st, call_id)["CallState"] == "Calling"
        client = RawRtsp(st.rtsp_port, VIEWER)
        try:
            status, _, sdp = client.authed("DESCRIBE", client.url(AUDIO))
            assert status == 200
            assert "m=audio 0 RTP/AVP 0" in sdp.decode() and "a=rtpmap:0 PCMU/8000" in sdp.decode()
            control = re.search(r"a=control:(\S+)", sdp.decode()).group(1)
            port = client.rtp.getsockname()[1]
            udp = {"Transport": f"RTP/AVP;unicast;client_port={port}-{port + 1}"}
            status, h, _ = client.authed("SETUP", control, udp, auth_uri=client.url(AUDIO))
            assert status == 200, status
            session = h["session"].split(";")[0]
            ssrc = int(re.search(r"ssrc=([0-9A-F]+)", h["transport"]).group(1), 16)
            status, h, _ = client.authed("PLAY", client.url(AUDIO), {"Session": session})
            assert status == 200
            seq0 = int(re.search(r"seq=(\d+)", h["rtp-info"]).group(1))
            ts0 = int(re.search(r"rtptime=(\d+)", h["rtp-info"]).group(1))
            packets = rtp_packets(client, 100)                   # 2 s
            heads = [struct.unpack("!BBHII", p[:12]) for p in packets]
            assert all(len(p) == 172 and v == 0x80 and pt & 0x7F == 0 and s == ssrc
                       for p, (v, pt, _, _, s) in zip(packets, heads, strict=True))
            assert heads[0][1] & 0x80                            # marker: the start of the stream
            assert [h_[2] for h_ in heads] == [(seq0 + i) & 0xFFFF for i in range(100)]
            assert [h_[3] for h_ in heads] == [(ts0 + 160 * i) & 0xFFFFFFFF for i in range(100)]
            heard = mulaw_to_pcm(b"".join(p[12:] for p in packets))
            assert tone_blocks(heard, 8000, MIC_HZ, NOT_MIC) >= 15
            status_ = call_status(st, call_id)
            assert (status_["CallState"], status_["CallStateReason"]) == ("Active", "AcceptedByRemote")
            streams = audio_counts(st)
            assert streams["Counts"]["receive"] == 1
            assert [(s["Peer"], s["User"]) for s in streams["Streams"]] == [("127.0.0.1", VIEWER[0])]

            assert client.authed("TEARDOWN", client.url(AUDIO), {"Session": session})[0] == 200
            wait_until(lambda: call_status(st, call_id)["CallState"] == "Terminated", 10, "Terminated")
            tail.wait_for(lambda e: e["topic"] == TOPIC_STATE_CHANGE and e["data"].get("CallId") == call_id
                          and e["data"]["Reason"] == "Terminated", what="the call to end")
            assert reasons(tail, call_id) == ["Initiated", "AcceptedByRemote", "Terminated"]
            assert audio_counts(st)["Counts"]["receive"] == 0
        finally:
            client.close()
    finally:
        vms_config(st, 0, 0)


def test_terminate_call_ends_the_rtsp_stream(station):
    st = station
    vms_config(st, 1, 0)
    try:
        call_id = st.ok("Call", {"To": "VMS_CALL"})["CallId"]
        client = RawRtsp(st.rtsp_port, VIEWER).play(AUDIO)
        try:
            rtp_packets(client, 10)
            assert call_status(st, call_id)["CallState"] == "Active"
            st.ok("TerminateCall", {"CallId": call_id})
            client.sock.settimeout(10)
            assert client.sock.recv(100) == b""                 # the station hung up the RTSP session
        finally:
            client.close()
    finally:
        vms_config(st, 0, 0)


def test_auth_backchannel_and_bad_forms(station):
    client = RawRtsp(station.rtsp_port)                          # no credentials
    try:
        assert client.request("DESCRIBE", client.url(AUDIO))[0] == 401
    finally:
        client.close()
    client = RawRtsp(station.rtsp_port, VIEWER)
    try:
        # ONVIF's two-media form (the tag on the microphone's URL) is not served; the Axis form is
        status, h, _ = client.authed("DESCRIBE", client.url(AUDIO), {"Require": BACKCHANNEL})
        assert status == 551 and h["unsupported"] == BACKCHANNEL
        status, h, _ = client.authed("DESCRIBE", client.url(TALK), {"Require": "x.example/other"})
        assert status == 551 and h["unsupported"] == "x.example/other"
        assert client.authed("DESCRIBE", client.url("simplex=full&audio=1&video=0"))[0] == 551
        assert client.authed("DESCRIBE", client.url("audio=1&video=0&event=on"))[0] == 404
        assert client.authed("DESCRIBE", client.url("audio=1&video=1"))[0] == 404
        assert client.authed("SETUP", client.url(AUDIO), {"Transport": "RTP/AVP;multicast"})[0] == 461
    finally:
        client.close()


def test_caps_are_the_supervisors_and_a_refused_play_says_503(station):
    """Four audio streams per client address (the supervisor's cap, shared with receive.cgi): the
    fifth PLAY is refused with 503, and the others keep streaming."""
    clients = []
    try:
        for _ in range(4):
            clients.append(RawRtsp(station.rtsp_port, VIEWER).play(AUDIO))
        fifth = RawRtsp(station.rtsp_port, VIEWER)
        clients.append(fifth)
        url = fifth.url(AUDIO)
        status, _, sdp = fifth.authed("DESCRIBE", url)
        control = re.search(r"a=control:(\S+)", sdp.decode()).group(1)
        port = fifth.rtp.getsockname()[1]
        status, h, _ = fifth.authed("SETUP", control, {"Transport": f"RTP/AVP;unicast;client_port={port}-{port + 1}"},
                                    auth_uri=url)
        assert status == 200
        status, h, _ = fifth.authed("PLAY", url, {"Session": h["session"].split(";")[0]})
        assert status == 503 and h.get("retry-after") == "1"
        assert audio_counts(station)["Counts"]["receive"] == 4
        for c in clients[:4]:
            assert len(rtp_packets(c, 5)) == 5
    finally:
        for c in clients:
            c.close()
    wait_until(lambda: audio_counts(station)["Counts"]["receive"] == 0, 10, "the streams to end")
    # a closed connection ends its stream: the next one is served again
    client = RawRtsp(station.rtsp_port, VIEWER).play(AUDIO)
    try:
        assert len(rtp_packets(client, 5)) == 5
    finally:
        client.close()


def test_interleaved_rtcp_from_the_client_is_skipped(station):
    """RTP/AVP/TCP: audio comes as `$` frames on the RTSP connection; the client's own frames
    (RTCP receiver reports) are read and dropped, and requests after them still work."""
    client = RawRtsp(station.rtsp_port, VIEWER)
    try:
        url = client.url(AUDIO)
        status, _, sdp = client.authed("DESCRIBE", url)
        control = re.search(r"a=control:(\S+)", sdp.decode()).group(1)
        tcp = {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"}
        status, h, _ = client.authed("SETUP", control, tcp, auth_uri=url)
        assert status == 200 and "interleaved=0-1" in h["transport"]
        session = h["session"].split(";")[0]
        assert client.authed("PLAY", url, {"Session": session})[0] == 200
        client.sock.sendall(b"$\x01\x00\x08" + b"\x81\xc9\x00\x01" + b"\x00" * 4)   # a tiny RR
        data = b""
        deadline = time.monotonic() + 5
        while len(data) < 20 * 176 and time.monotonic() < deadline:
            data += client.sock.recv(65536)
        assert data[:1] == b"$" and data[1] == 0 and struct.unpack("!H", data[2:4])[0] == 172
        client.sock.sendall(f"TEARDOWN {url} RTSP/1.0\r\nCSeq: 99\r\nSession: {session}\r\n\r\n".encode())
        # the answer comes after whatever audio was already queued (no Authorization: 401 is fine too,
        # what matters is that the request was parsed after the client's `$` frame)
        deadline = time.monotonic() + 5
        while b"RTSP/1.0 " not in data and time.monotonic() < deadline:
            data += client.sock.recv(65536)
        assert b"RTSP/1.0 " in data
    finally:
        client.close()
    wait_until(lambda: audio_counts(station)["Counts"]["receive"] == 0, 10, "the stream to end")


@pytest.fixture
def own_station(tmp_path):
    """A station of its own: the speaker's WAV is complete only once the station stops."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "hardware.toml").write_text(audio_toml(tmp_path / "speaker.wav"))
    port = free_port()
    st = Station(state, extra_args=["--rtsp", f"127.0.0.1:{port}"]).start()
    st.rtsp_port = port
    st.speaker = tmp_path / "speaker.wav"
    try:
        yield st
    finally:
        st.stop()


def test_backchannel_plays_on_the_speaker_and_answers_a_vms_call(own_station):
    """The Axis form `simplex=receiver&audio=1&video=0` with ONVIF's Require tag: SDP with one
    `a=sendonly` PCMU media, SETUP over TCP-interleaved (UDP: 461; a viewer: 403), PLAY, then the
    client's RTP (600 Hz) reaches the speaker; the stream counts as audio to the device (a VMS
    call with thresholds 0/1/0), holds the single transmitter slot (transmit.cgi: 503), and
    TEARDOWN ends the call."""
    st = own_station
    vms_config(st, 0, 1)
    tail = EventTail(st)
    viewer = RawRtsp(st.rtsp_port, VIEWER)
    try:
        url = viewer.url(TALK)
        viewer.authed("DESCRIBE", url, {"Require": BACKCHANNEL})
        tcp = {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1", "Require": BACKCHANNEL}
        assert viewer.authed("SETUP", url, tcp)[0] == 403
    finally:
        viewer.close()
    client = RawRtsp(st.rtsp_port, OPERATOR)
    try:
        url = client.url(TALK)
        status, _, sdp = client.authed("DESCRIBE", url, {"Require": BACKCHANNEL})
        assert status == 200
        assert "a=rtpmap:0 PCMU/8000" in sdp.decode() and "a=sendonly" in sdp.decode()
        control = re.search(r"a=control:(\S+)", sdp.decode()).group(1)
        udp = {"Transport": "RTP/AVP;unicast;client_port=5000-5001", "Require": BACKCHANNEL}
        assert client.authed("SETUP", control, udp, auth_uri=url)[0] == 461
        tcp = {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1", "Require": BACKCHANNEL}
        status, h, _ = client.authed("SETUP", control, tcp, auth_uri=url)
        assert status == 200, status
        session = h["session"].split(";")[0]
        assert client.authed("PLAY", url, {"Session": session, "Require": BACKCHANNEL})[0] == 200
        call = wait_until(lambda: [s for s in st.ok("GetCallStatuses")["CallStatus"] if s["CallState"] == "Active"],
                          10, "the backchannel's VMS call")[0]
        assert transmit(st, b"\xff" * 800).status_code == 503          # one transmitter at a time

        audio = pcm_to_mulaw(tone(TX_HZ, 8000, 2.0))
        start = time.monotonic()
        for i, at in enumerate(range(0, len(audio), 160)):
            packet = struct.pack("!BBHII", 0x80, 0, (1000 + i) & 0xFFFF, 160 * i, 0x1234) + audio[at:at + 160]
            client.sock.sendall(struct.pack("!cBH", b"$", 0, len(packet)) + packet)
            delay = start + (i + 1) * 0.02 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        time.sleep(0.5)                                               # the speaker's queue plays out
        assert client.authed("TEARDOWN", url, {"Session": session})[0] == 200
        wait_until(lambda: call_status(st, call["CallId"])["CallState"] == "Terminated", 10, "Terminated")
        tail.poll()
        assert reasons(tail, call["CallId"]) == ["AcceptedByDevice", "Terminated"]
    finally:
        client.close()
    st.stop()
    played, rate = read_wav(st.speaker)
    blocks = tone_blocks(played, rate, TX_HZ, [h for h in OTHER_HZ if h != TX_HZ])
    assert blocks >= 15, f"{blocks} blocks of {TX_HZ} Hz on the speaker (2 s sent)"
