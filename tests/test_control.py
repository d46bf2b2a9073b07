"""The control socket: real Unix sockets, a real asyncio server in a thread, the blocking client."""
import asyncio
import logging
import socket
import threading
import time

import pytest

from daemon.control import protocol
from daemon.control.client import ControlClient, ControlError
from daemon.control.server import ControlServer
from daemon.faults import VapixFault, not_found


class ServerThread:
    def __init__(self, path, handlers):
        self.loop = asyncio.new_event_loop()
        self.server = ControlServer(str(path), handlers, logging.getLogger("test"))
        started = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.server.start())
            started.set()
            self.loop.run_forever()
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert started.wait(5)

    def close(self):
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def sock_path(tmp_path):
    return tmp_path / "run" / "control.sock"


def test_request_reply_and_fault_round_trip(sock_path):
    def fail(args):
        raise not_found("no such call")

    async def slow(args):
        await asyncio.sleep(0.05)
        return {"waited": True}

    srv = ServerThread(sock_path, {"echo": lambda a: {"got": a}, "fail": fail, "slow": slow,
                                   "bug": lambda a: 1 / 0})
    try:
        client = ControlClient(str(sock_path))
        assert client.request("echo", {"x": [1, "ü"]}) == {"got": {"x": [1, "ü"]}}
        assert client.request("slow") == {"waited": True}
        with pytest.raises(VapixFault) as e:
            client.request("fail")
        assert (e.value.fault, e.value.subcode, e.value.reason) == ("env:Sender", "ter:NotFound", "no such call")
        with pytest.raises(ControlError, match="ZeroDivisionError"):
            client.request("bug")
        with pytest.raises(ControlError, match="unknown control command"):
            client.request("nope")
        # the connection survived all of that
        assert client.request("echo", {}) == {"got": {}}
    finally:
        srv.close()


def test_missing_supervisor_is_unavailable_at_once(sock_path):
    client = ControlClient(str(sock_path))
    t0 = time.monotonic()
    with pytest.raises(VapixFault) as e:
        client.request("echo")
    assert e.value.http_status == 503
    assert time.monotonic() - t0 < 1.0


def test_client_reconnects_after_supervisor_restart(sock_path):
    handlers = {"echo": lambda a: a}
    srv = ServerThread(sock_path, handlers)
    client = ControlClient(str(sock_path))
    assert client.request("echo", {"n": 1}) == {"n": 1}
    srv.close()
    with pytest.raises(VapixFault):
        client.request("echo", {"n": 2})
    srv = ServerThread(sock_path, handlers)
    try:
        assert client.request("echo", {"n": 3}) == {"n": 3}
    finally:
        srv.close()


def test_hung_supervisor_times_out_as_unavailable(sock_path):
    sock_path.parent.mkdir(parents=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock_path))
    listener.listen(1)  # accepts, never answers
    try:
        client = ControlClient(str(sock_path), timeout=0.3)
        with pytest.raises(VapixFault) as e:
            client.request("echo")
        assert e.value.http_status == 503
    finally:
        listener.close()


def test_oversized_and_garbage_frames_are_refused(sock_path):
    srv = ServerThread(sock_path, {"echo": lambda a: a})
    try:
        with pytest.raises(protocol.ProtocolError):
            protocol.encode({"x": "a" * (protocol.MAX_MESSAGE + 1)})
        for garbage in (protocol.HEADER.pack(protocol.MAX_MESSAGE + 1), protocol.HEADER.pack(3) + b"{x]",
                        protocol.HEADER.pack(2) + b"[]"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(2)
            s.connect(str(sock_path))
            s.sendall(garbage)
            assert s.recv(10) == b""  # server hung up on the confused client
            s.close()
        assert ControlClient(str(sock_path)).request("echo", {"ok": 1}) == {"ok": 1}
    finally:
        srv.close()


# ------------------------------------------------------------------------------ the connection pool
def test_pool_reuses_connections_and_caps_them(sock_path):
    release = threading.Event()

    async def park(args):
        while not release.is_set():
            await asyncio.sleep(0.01)
        return {"parked": True}

    srv = ServerThread(sock_path, {"echo": lambda a: a, "park": park})
    try:
        client = ControlClient(str(sock_path), timeout=0.5, max_connections=2)
        for n in range(5):
            assert client.request("echo", {"n": n}) == {"n": n}
        assert client.open_connections == 1  # sequential requests share one connection
        results = []
        parked = [threading.Thread(target=lambda: results.append(client.request("park", timeout=5)))
                  for _ in range(2)]
        for t in parked:
            t.start()
        time.sleep(0.2)
        assert client.open_connections == 2
        t0 = time.monotonic()
        with pytest.raises(VapixFault) as e:  # both connections busy for longer than `timeout`
            client.request("echo", {})
        assert e.value.http_status == 503 and "busy" in e.value.reason
        assert 0.4 < time.monotonic() - t0 < 2.0
        release.set()
        for t in parked:
            t.join(5)
        assert results == [{"parked": True}] * 2
        assert client.request("echo", {"after": 1}) == {"after": 1}
        client.close()
        assert client.open_connections == 0
    finally:
        release.set()
        srv.close()


GEVENT_CLIENT = r"""
from gevent import monkey; monkey.patch_all()
import sys, time, gevent
from daemon.control.client import ControlClient
client = ControlClient(sys.argv[1], timeout=5)
t0 = time.monotonic()
jobs = [gevent.spawn(client.request, "slow", {"i": i}) for i in range(20)]
gevent.joinall(jobs, timeout=20)
assert all(j.successful() for j in jobs), [j.exception for j in jobs]
print(f"{time.monotonic() - t0:.3f} {client.open_connections}")
"""


def test_client_is_cooperative_under_gevent(sock_path):
    """Under the API worker's monkey-patching, 20 requests that each wait 0.5 s in the supervisor
    overlap (one greenlet each) instead of queueing: ~0.5 s in all, not 10 s."""
    import subprocess
    import sys

    async def slow(args):
        await asyncio.sleep(0.5)
        return args

    srv = ServerThread(sock_path, {"slow": slow})
    try:
        done = subprocess.run([sys.executable, "-c", GEVENT_CLIENT, str(sock_path)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        took, connections = done.stdout.split()
        assert float(took) < 3.0, took
        assert int(connections) == 20
    finally:
        srv.close()
