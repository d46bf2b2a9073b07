"""The RTSP event stream of a real `doorstation run --rtsp`, as PyPI `axis` v60 (Home Assistant's
Axis library, written by nobody here) consumes it, plus a raw RTSP client for what axis cannot
send (topic filters, hostile requests).

axis v60 runs in its own venv (.venv-axis) as a subprocess; its RTSP port (hard-coded 554) is
pointed at the test's port by tests/axis_client.py."""
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.harness import ADMIN, OPERATOR, REPO, VIEWER, Station, axis_hardware_toml, doorstation, free_port

pytestmark = pytest.mark.integration

AXIS_PYTHON = REPO / ".venv-axis" / "bin" / "python"
PULSE_MS = 1500
HARDWARE = axis_hardware_toml(PULSE_MS)
INITIAL = [["tns1:Device/tnsaxis:IO/Port", "0", "0", "Initialized"],
           ["tns1:Device/Trigger/Relay", "1", "inactive", "Initialized"],
           ["tns1:Device/tnsaxis:IO/Port", "2", "0", "Initialized"],
           ["tns1:Device/Trigger/Relay", "3", "inactive", "Initialized"]]


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    assert AXIS_PYTHON.exists(), "no .venv-axis: run scripts/test once (it installs axis==60 there)"
    state = tmp_path_factory.mktemp("rtsp") / "state"
    state.mkdir()
    (state / "hardware.toml").write_text(HARDWARE)
    port = free_port()
    st = Station(state, extra_args=["--rtsp", f"127.0.0.1:{port}"]).start()
    st.rtsp_port = port
    yield st
    st.stop()


def axis_stream(station: Station, user, seconds: float, *then: str) -> subprocess.Popen:
    return subprocess.Popen([str(AXIS_PYTHON), "-P", str(REPO / "tests" / "axis_client.py"), "127.0.0.1",
                             str(station.http_port), user[0], user[1], "events", str(station.rtsp_port),
                             str(seconds), *then], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def playing(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline().strip()
    assert line == "playing", (line, proc.stderr.read()[-3000:] if proc.poll() is not None else "")


def collected(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_relay_through_set_ports_comes_back_over_the_stream(station):
    proc = axis_stream(station, OPERATOR, PULSE_MS / 1000 + 2.5, "close", "1")
    playing(proc)
    events = collected(proc)["events"]
    assert events[:4] == INITIAL                # initial states first, as Initialized
    assert events[4:] == [["tns1:Device/Trigger/Relay", "1", "active", "Changed"],
                          ["tns1:Device/Trigger/Relay", "1", "inactive", "Changed"]]


def test_press_arrives_as_io_port_press_and_release(station):
    proc = axis_stream(station, VIEWER, 3)
    playing(proc)
    done = doorstation("press", state_dir=station.state_dir)
    assert done.returncode == 0, done.stderr
    events = collected(proc)["events"]
    assert events[:4] == INITIAL
    assert [e for e in events[4:] if e[0] == "tns1:Device/tnsaxis:IO/Port"] == [
        ["tns1:Device/tnsaxis:IO/Port", "0", "1", "Changed"],
        ["tns1:Device/tnsaxis:IO/Port", "0", "0", "Changed"]]


def test_extra_output_state_is_initialized_for_a_new_subscriber(station):
    r = station.session(OPERATOR).post(f"{station.url}/axis-cgi/io/portmanagement.cgi", json={
        "apiVersion": "1.0", "context": "t", "method": "setPorts",
        "params": {"ports": [{"port": "3", "state": "closed"}]}}, timeout=30)
    assert r.status_code == 200 and "error" not in r.json(), r.text
    try:
        proc = axis_stream(station, VIEWER, 0.5)
        playing(proc)
        assert ["tns1:Device/Trigger/Relay", "3", "active", "Initialized"] in collected(proc)["events"]
    finally:
        station.session(OPERATOR).post(f"{station.url}/axis-cgi/io/portmanagement.cgi", json={
            "apiVersion": "1.0", "context": "t", "method": "setPorts",
            "params": {"ports": [{"port": "3", "state": "open"}]}}, timeout=30)


# ------------------------------------------------------------------ a raw client, for the rest
class RawRtsp:
    """Minimal RTSP client: one request, one response; Digest (RFC 2069) when challenged."""

    def __init__(self, port: int, user=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.port = port
        self.user = user
        self.cseq = 0
        self.challenge: dict | None = None
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.rtp.settimeout(3)

    def url(self, query="video=0&audio=0&event=on", path="/axis-media/media.amp"):
        return f"rtsp://127.0.0.1:{self.port}{path}" + (f"?{query}" if query is not None else "")

    def request(self, method: str, url: str, headers: dict | None = None, auth_uri: str | None = None):
        self.cseq += 1
        lines = [f"{method} {url} RTSP/1.0", f"CSeq: {self.cseq}"]
        if self.challenge and self.user:
            uri = auth_uri or url
            ha1 = hashlib.md5(f"{self.user[0]}:{self.challenge['realm']}:{self.user[1]}".encode()).hexdigest()
            ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
            resp = hashlib.md5(f"{ha1}:{self.challenge['nonce']}:{ha2}".encode()).hexdigest()
            lines.append(f'Authorization: Digest username="{self.user[0]}", realm="{self.challenge["realm"]}", '
                         f'nonce="{self.challenge["nonce"]}", uri="{uri}", response="{resp}"')
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return self.read()

    def read(self):
        data = b""
        while b"\r\n\r\n" not in data:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None, {}, b""
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", 0))
        while len(body) < length:
            body += self.sock.recv(65536)
        status = int(lines[0].split(" ")[1])
        if status == 401:
            m = re.search(r'realm="([^"]*)", nonce="([^"]*)"', headers["www-authenticate"])
            self.challenge = {"realm": m.group(1), "nonce": m.group(2)}
        return status, headers, body

    def authed(self, method, url, headers=None, auth_uri=None):
        status, h, body = self.request(method, url, headers, auth_uri)
        if status == 401:
            status, h, body = self.request(method, url, headers, auth_uri)
        return status, h, body

    def play(self, query="video=0&audio=0&event=on"):
        url = self.url(query)
        status, _, sdp = self.authed("DESCRIBE", url)
        assert status == 200, status
        control = re.search(r"a=control:(\S+)", sdp.decode()).group(1)
        port = self.rtp.getsockname()[1]
        status, h, _ = self.authed("SETUP", control, {"Transport": f"RTP/AVP;unicast;client_port={port}-{port + 1}"},
                                   auth_uri=url)
        assert status == 200, status
        self.session = h["session"].split(";")[0]
        status, _, _ = self.authed("PLAY", url, {"Session": self.session})
        assert status == 200
        return self

    def documents(self, quiet: float = 1.0) -> list[str]:
        out = []
        self.rtp.settimeout(quiet)
        try:
            while True:
                packet = self.rtp.recv(65536)
                assert packet[0] == 0x80 and len(packet) > 12
                out.append(packet[12:].decode())
        except socket.timeout:
            return out

    def close(self):
        self.sock.close()
        self.rtp.close()


def topics_and_ops(docs):
    return [(re.search(r"<wsnt:Topic[^>]*>([^<]*)<", d).group(1),
             (re.search(r'PropertyOperation="(\w+)"', d) or [None, None])[1]) for d in docs]


def test_topic_filter_and_call_state_initialized(station):
    client = RawRtsp(station.rtsp_port, VIEWER).play("video=0&audio=0&event=on&eventtopic=onvif:Device/axis:IO//.")
    try:
        docs = client.documents()
        assert topics_and_ops(docs) == [("tns1:Device/tnsaxis:IO/Port", "Initialized")] * 2
    finally:
        client.close()
    client = RawRtsp(station.rtsp_port, VIEWER).play(
        "video=0&audio=0&event=on&eventtopic=tnsaxis:Call/State")
    try:
        docs = client.documents()
        assert topics_and_ops(docs) == [("tnsaxis:Call/State", "Initialized")]
        state = json.loads(doorstation("status", state_dir=station.state_dir).stdout)["CallState"]
        assert f'Name="CallState" Value="{state}"' in docs[0]
    finally:
        client.close()


def test_keep_alive_options_without_credentials_only_in_the_session(station):
    client = RawRtsp(station.rtsp_port, VIEWER).play()
    try:
        client.challenge = None             # as axis v60's keep-alive: no Authorization
        status, h, _ = client.request("OPTIONS", client.url(), {"Session": client.session})
        assert status == 200 and "timeout=60" in h["session"]
        status, _, _ = client.request("OPTIONS", client.url(), {"Session": "NOT-THE-SESSION"})
        assert status == 401
        status, _, _ = client.request("GET_PARAMETER", client.url(), {"Session": client.session})   # ffmpeg's
        assert status == 200
    finally:
        client.close()


def test_wrong_password_is_refused_and_the_connection_closed(station):
    client = RawRtsp(station.rtsp_port, (VIEWER[0], "wrong-password"))
    try:
        statuses = [client.request("DESCRIBE", client.url())[0] for _ in range(5)]
        # the challenge, then three wrong guesses: the connection is closed after the third
        assert statuses == [401, 401, 401, 401, None]
    finally:
        client.close()


def test_hostile_requests(station):
    client = RawRtsp(station.rtsp_port, VIEWER)
    try:
        assert client.authed("DESCRIBE", client.url("video=1&audio=0&event=on"))[0] == 404
        assert client.authed("DESCRIBE", client.url(path="/etc/passwd"))[0] == 404
        assert client.authed("DESCRIBE", client.url("event=on&video=0&audio=0&eventtopic=//."))[0] == 400
        assert client.authed("SETUP", client.url(), {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"})[0] == 461
        assert client.authed("PLAY", client.url(), {"Session": "nope"})[0] == 454
        assert client.authed("RECORD", client.url())[0] == 501
        assert client.authed("DESCRIBE", client.url("&".join(f"k{i}=v" for i in range(40))))[0] == 400
    finally:
        client.close()
    big = socket.create_connection(("127.0.0.1", station.rtsp_port), timeout=5)
    try:
        big.sendall(b"OPTIONS * RTSP/1.0\r\nX: " + b"a" * 9000)
        assert big.recv(1000).startswith(b"RTSP/1.0 431")
        assert big.recv(1000) == b""
    finally:
        big.close()


def pids_of(module: bytes, state_dir: Path) -> list[int]:
    """Processes running `python -m <module>` for this station's state directory."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if module in cmd and str(state_dir).encode() in cmd:
            pids.append(int(entry.name))
    return pids


def rtsp_pids(state_dir: Path) -> list[int]:
    return pids_of(b"daemon.rtsp", state_dir)


def test_rtsp_crash_leaves_the_door_alone_and_is_restarted(station):
    pids = rtsp_pids(station.state_dir)
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGKILL)
    r = station.session(ADMIN).post(f"{station.url}/api/door/open", timeout=30)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and rtsp_pids(station.state_dir) in ([], pids):
        time.sleep(0.2)
    assert rtsp_pids(station.state_dir) not in ([], pids)
    deadline = time.monotonic() + 20       # listening again, and streaming the door's state
    while time.monotonic() < deadline:
        try:
            client = RawRtsp(station.rtsp_port, VIEWER).play(
                "video=0&audio=0&event=on&eventtopic=tns1:Device/Trigger//.")
            break
        except (OSError, AssertionError):
            time.sleep(0.3)
    try:
        docs = client.documents()      # the relay may still be pulsing: Changed ones may follow
        assert topics_and_ops(docs)[:2] == [("tns1:Device/Trigger/Relay", "Initialized")] * 2
    finally:
        client.close()


def test_a_client_that_does_not_read_is_cut_off(station):
    sock = socket.create_connection(("127.0.0.1", station.rtsp_port), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        request = b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n"
        deadline = time.monotonic() + 20
        with pytest.raises(OSError):          # reset or broken pipe once the server gives up
            while time.monotonic() < deadline:
                sock.sendall(request * 100)
                time.sleep(0.001)
            raise AssertionError("the server kept taking requests from a client that reads nothing")
    finally:
        sock.close()
    # and it still serves everyone else
    client = RawRtsp(station.rtsp_port, VIEWER).play("video=0&audio=0&event=on&eventtopic=tnsaxis:Call/State")
    try:
        assert len(client.documents()) == 1
    finally:
        client.close()


def supervisor_pids(state_dir: Path) -> list[int]:
    return pids_of(b"daemon.supervisor", state_dir)


def test_a_stream_outlives_a_supervisor_restart(station):
    client = RawRtsp(station.rtsp_port, VIEWER).play("video=0&audio=0&event=on&eventtopic=tns1:Device/tnsaxis:IO//.")
    try:
        assert len(client.documents()) == 2                     # Initialized: ports 0 and 2
        old = supervisor_pids(station.state_dir)
        assert len(old) == 1
        os.kill(old[0], signal.SIGKILL)
        deadline = time.monotonic() + 30                        # `doorstation run` starts a new one
        while time.monotonic() < deadline:
            if doorstation("press", state_dir=station.state_dir).returncode == 0:
                break
            time.sleep(0.5)
        docs = client.documents(quiet=3.0)
        assert [re.search(r'Name="state" Value="(\d)"', d).group(1) for d in docs] == ["1", "0"]
        assert topics_and_ops(docs) == [("tns1:Device/tnsaxis:IO/Port", "Changed")] * 2
    finally:
        client.close()
