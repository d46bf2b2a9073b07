"""NAT traversal settings for real: ICE between the station and baresip, and a TURN relay
candidate from coturn, across a network namespace (tests/netns.py). On loopback ICE cannot be
shown (loopback addresses are never candidates); between the namespaces they are ordinary
addresses. What crosses the veth is read by a packet socket: the STUN connectivity checks of ICE
in both directions, the TURN allocation, the candidates in the SDP. (baresip also offers candidates
on this machine's other addresses; the station's checks to those are delivered locally too.) ICE
chooses the direct pair here, so the relay is shown offered, not carrying the media.
"""
from __future__ import annotations

import os
import socket
import struct
import subprocess

import pytest

from tests.harness import Station, free_sip_port
from tests.netns import STUN_MAGIC, netns, sniffer  # noqa: F401  (fixtures)
from tests.sip_peers import baresip_factory, rtp_base, wait_until  # noqa: F401  (fixture)
from tests.stack_sip import TOPIC_DTMF, EventTail, open_door_dtmf, wait_call_state

pytestmark = [pytest.mark.integration, pytest.mark.sip]

BINDING_REQUEST, BINDING_SUCCESS = 0x0001, 0x0101


def start(tmp_path, ns, **sip) -> tuple[Station, int]:
    st = Station(tmp_path / "state", netns=ns.name, http_host=ns.station4).start()
    port = free_sip_port()
    st.ok("SetSIPConfiguration", {"SIPConfiguration": {
        "SIPEnabled": True, "SIPPort": port, "SIPTLSPort": free_sip_port(), "RTPStartPort": rtp_base(),
        "CallingTimeout": 15, **sip}})
    open_door_dtmf(st)
    return st, port


def call_with_dtmf(st: Station, peer) -> str:
    tail = EventTail(st)
    call_id = st.ok("Call", {"To": peer.aor})["CallId"]
    wait_call_state(st, call_id, "Active")
    peer.wait_event("CALL_ESTABLISHED")
    assert peer.command("sndcode", "#1234#")["ok"]
    tail.wait_for(lambda e: e["topic"] == TOPIC_DTMF and e["data"].get("CallId") == call_id,
                  what="the DTMF event (RTP flowing on the pair ICE chose)")
    return call_id


def test_ice_connectivity_checks_both_ways(netns, sniffer, baresip_factory, tmp_path):  # noqa: F811
    bob = baresip_factory(host=netns.host4, extra_modules=("ice.so",),
                          account_params="answermode=auto;medianat=ice")
    st, _ = start(tmp_path, netns, ICEEnabled=True)
    try:
        call_id = call_with_dtmf(st, bob)
        sip = sniffer.sip_text()
        offer = sip[sip.index("INVITE sip:"):]
        assert "a=ice-ufrag:" in offer
        assert "a=candidate:" in offer and f" {netns.station4} " in offer and "typ host" in offer
        requests, successes = sniffer.stun(BINDING_REQUEST), sniffer.stun(BINDING_SUCCESS)
        station_to_bob = [p for p in requests if (p.src, p.dst) == (netns.station4, netns.host4)]
        bob_to_station = [p for p in requests if (p.src, p.dst) == (netns.host4, netns.station4)]
        assert station_to_bob and bob_to_station, "ICE connectivity checks in both directions"
        assert {(p.src, p.dst) for p in successes} >= {(netns.host4, netns.station4), (netns.station4, netns.host4)}
        st.ok("TerminateCall", {"CallId": call_id})
        wait_call_state(st, call_id, "Terminated")
    finally:
        st.stop()


ALLOCATE_REQUEST, ALLOCATE_SUCCESS, ALLOCATE_ERROR = 0x0003, 0x0103, 0x0113


def stun_answers(host: str, port: int) -> bool:
    """A STUN Binding request gets its success response within 0.2 s."""
    txid = os.urandom(12)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        s.sendto(struct.pack("!HHI", BINDING_REQUEST, 0, STUN_MAGIC) + txid, (host, port))
        try:
            data = s.recv(2048)
        except OSError:
            return False
    return data[:2] == struct.pack("!H", BINDING_SUCCESS) and data[8:20] == txid


@pytest.fixture
def coturn(netns, tmp_path):  # noqa: F811  (netns is the pytest fixture imported above)
    """coturn on this side of the veth, long-term credentials, relay ports on the same address."""
    from tests.sip_peers import PEER_MAX_SECONDS, terminate
    port = free_sip_port()
    log = tmp_path / "turn.log"
    proc = subprocess.Popen(
        ["timeout", str(PEER_MAX_SECONDS), "turnserver", "-n", "--listening-ip", netns.host4,
         "--listening-port", str(port), "--relay-ip", netns.host4, "--min-port", "49160", "--max-port", "49260",
         "--lt-cred-mech", "--user", "door:turn-secret", "--realm", "doorstation.test",
         "--userdb", str(tmp_path / "turndb"), "--pidfile", str(tmp_path / "turn.pid"), "--no-tls", "--no-dtls",
         "--no-cli", "--log-file", str(log), "--simple-log", "--no-stdout-log"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: stun_answers(netns.host4, port), 10.0, "coturn answering STUN")
        yield f"{netns.host4}:{port}"
    finally:
        terminate(proc)


def test_turn_relay_candidate_from_coturn(netns, sniffer, coturn, baresip_factory, tmp_path):  # noqa: F811
    server = coturn
    bob = baresip_factory(host=netns.host4, extra_modules=("ice.so",),
                          account_params="answermode=auto;medianat=ice")
    st, _ = start(tmp_path, netns, ICEEnabled=True, TURNEnabled=True,
                  TURNServers=[{"Server": f"turn:{server}", "Username": "door", "Password": "turn-secret"}])
    try:
        call_id = call_with_dtmf(st, bob)
        turn_host, turn_port = server.rsplit(":", 1)
        allocations = [p for p in sniffer.stun(ALLOCATE_REQUEST)
                       if (p.src, p.dst, p.dport) == (netns.station4, turn_host, int(turn_port))]
        assert allocations, "the station asked coturn for a relay"
        # long-term credentials: the first Allocate is challenged (401), the authenticated one succeeds
        assert [p for p in sniffer.stun(ALLOCATE_ERROR) if p.dst == netns.station4], "coturn's challenge"
        assert [p for p in sniffer.stun(ALLOCATE_SUCCESS) if p.dst == netns.station4], "coturn granted a relay"
        sip = sniffer.sip_text()
        offer = sip[sip.index("INVITE sip:"):]
        relay = [line for line in offer.splitlines() if line.startswith("a=candidate:") and "typ relay" in line]
        assert relay and f" {turn_host} " in relay[0], offer
        st.ok("TerminateCall", {"CallId": call_id})
        wait_call_state(st, call_id, "Terminated")
    finally:
        st.stop()
