"""DisableTCPSwitch against a peer that speaks SIP over UDP only.

pjsip sends a request larger than 1300 bytes over TCP instead of UDP (RFC 3261 18.1.1). The peer
here is the pjsua2 agent with a UDP transport only, and on the same port number a TCP socket that
accepts connections and reads but never answers (a host whose TCP port is not a SIP server). The
INVITE is made large by a long URI parameter, which pjsip copies into the Request-URI and To.
"""
from __future__ import annotations

import socket
import threading
import time

import pytest

from daemon.sip.config import account_from_vapix
from daemon.sip.types import CallFinished, EngineError

from .conftest import free_port, wait_until

pytestmark = pytest.mark.sip

PADDING = "a" * 450   # twice in the INVITE (Request-URI, To): above pjsip's 1300-byte threshold, below 4000


class SilentTcpListener:
    """Accepts TCP connections on 127.0.0.1:port and keeps what arrives; never answers."""

    def __init__(self, port: int, max_seconds: float = 60.0) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self.connections = 0
        self.data = b""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._deadline = time.monotonic() + max_seconds
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conns: list[socket.socket] = []
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                conn, _ = self.sock.accept()
                conn.setblocking(False)
                conns.append(conn)
                with self._lock:
                    self.connections += 1
            except (socket.timeout, BlockingIOError):
                pass
            for conn in conns:
                try:
                    chunk = conn.recv(65536)
                except BlockingIOError:
                    continue
                with self._lock:
                    self.data += chunk
        for conn in conns:
            conn.close()

    def snapshot(self) -> tuple[int, bytes]:
        with self._lock:
            return self.connections, self.data

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.sock.close()


@pytest.fixture
def udp_only_peer(agent_factory):
    port = free_port()
    tcp = SilentTcpListener(port)
    agent = agent_factory("--answer", "200", port=port)     # its only transport: UDP
    try:
        yield agent, tcp
    finally:
        tcp.close()


def account(disable_tcp_switch: bool):
    return account_from_vapix({"Id": "peer-to-peer", "UserId": "door", "IsDefault": True, "Attribute": [
        {"Name": "DisableTCPSwitch", "Value": "true" if disable_tcp_switch else "false"}]}, None)


def large_uri(agent) -> str:
    return f"{agent.uri()};x-padding={PADDING}"


def test_with_disable_tcp_switch_a_large_invite_stays_on_udp(station, udp_only_peer):
    agent, tcp = udp_only_peer
    station.engine.apply(station.config(accounts=(account(True),)))
    call_id = station.engine.make_call(None, large_uri(agent))
    station.wait_state(call_id, "Active")
    agent.wait_event("incoming")
    station.engine.hangup(call_id)
    station.wait_state(call_id, "Terminated")
    agent.wait_event("state", pred=lambda e: e["state"] == "DISCONNECTED")
    assert tcp.snapshot() == (0, b"")                  # nothing was tried over TCP


def test_without_it_the_large_invite_goes_over_tcp_then_switching_it_on_fixes_the_call(station, udp_only_peer):
    agent, tcp = udp_only_peer
    station.engine.apply(station.config(calling_timeout=2.0, accounts=(account(False),)))
    call_id = station.engine.make_call(None, large_uri(agent))
    data = wait_until(lambda: (d := tcp.snapshot()[1]) and b"\r\n\r\n" in d and d, 5.0, "the INVITE over TCP")
    assert data.startswith(b"INVITE ") and b"Via: SIP/2.0/TCP" in data and len(data) > 1300
    end = station.events.wait_for(lambda e: isinstance(e, CallFinished) and e.status["CallId"] == call_id,
                                  timeout=10.0, what="the unanswered call to end")
    assert end.status["CallStateReason"] == "NoAnswer"
    assert agent.of("incoming") == []                  # the UDP peer never saw it

    # the attribute changes only this account's config: the engine re-creates it, bound to UDP
    station.engine.apply(station.config(calling_timeout=2.0, accounts=(account(True),)))
    connections_before = tcp.snapshot()[0]
    call2 = station.engine.make_call(None, large_uri(agent))
    station.wait_state(call2, "Active")
    agent.wait_event("incoming")
    assert tcp.snapshot()[0] == connections_before
    station.engine.hangup(call2)
    station.wait_state(call2, "Terminated")


def test_an_account_bound_to_udp_refuses_tcp_destinations_but_takes_incoming_tcp_calls(station, agent_factory):
    agent = agent_factory("--answer", "200", "--transport", "tcp")
    station.engine.apply(station.config(allow_incoming_calls=True, accounts=(account(True),)))
    with pytest.raises(EngineError, match="Unsuitable transport"):
        station.engine.make_call(None, agent.uri("tcp"))
    agent.send(cmd="call", to=f"{station.uri};transport=tcp")
    call_id = wait_until(lambda: station.engine.live_call_ids(), 5.0, "the incoming call")[0]
    station.wait_state(call_id, "Active")
    agent.send(cmd="hangup")                          # the peer's BYE arrives over its TCP connection
    assert station.wait_state(call_id, "Terminated")["CallStateReason"] == "Terminated"
    # (the station's own BYE in such a dialog cannot be sent: see docs/sip.md, DisableTCPSwitch)
