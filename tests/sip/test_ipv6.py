"""IPv6: calls both ways with IPv6 signalling and IPv6 media, against IPv6-only baresip on [::1].

RTP over IPv6 is proven by RFC 2833 DTMF (carried in RTP) reaching the station as a DTMF event:
baresip listening on ::1 only has no IPv4 socket, and it answers an IPv4 SDP offer with 488.
Dual-stack on all interfaces (the production case) is tested in a network namespace in
tests/test_ipv6_netns.py. The rules are in daemon/sip/families.py and docs/sip.md "IPv6".
"""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from daemon.sip import families
from daemon.sip.config import AccountConfig, DtmfSettings, DtmfTrigger
from daemon.sip.types import CallTransition, DtmfMatched, EngineError

from .conftest import free_port, wait_until

pytestmark = pytest.mark.sip

OPEN_DOOR = DtmfTrigger("#1234#", "dtmf_event_0", "OpenDoor")
DTMF = DtmfSettings(rfc2833=True, sip_info=False, triggers=(OPEN_DOOR,))

# A separate process: creating an IPv6 account in a pjsua2 without PJ_HAS_IPV6 aborts the process.
_PROBE = r"""
import pjsua2 as pj
ep = pj.Endpoint(); ep.libCreate()
cfg = pj.EpConfig(); cfg.uaConfig.threadCnt = 0; cfg.uaConfig.mainThreadOnly = False
cfg.logConfig.level = 0; cfg.logConfig.consoleLevel = 0
ep.libInit(cfg)
tc = pj.TransportConfig(); tc.port = 0; tc.boundAddress = "::1"
ep.transportCreate(pj.PJSIP_TRANSPORT_UDP6, tc)
ep.libStart(); ep.audDevManager().setNullDev()
ac = pj.AccountConfig(); ac.idUri = "sip:probe@[::1]"
ac.sipConfig.ipv6Use = ac.mediaConfig.ipv6Use = pj.PJSUA_IPV6_ENABLED_USE_IPV6_ONLY
acc = pj.Account(); acc.create(ac, True)
print("ACCOUNT CREATED", flush=True)
acc.shutdown(); ep.libDestroy()
"""


def test_the_pjsua2_build_has_ipv6():
    """scripts/build-pjsua2 compiles pjproject with PJ_HAS_IPV6; PyPI's wheel would fail this."""
    assert families.pjsua2_has_ipv6()
    r = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=30)
    assert "ACCOUNT CREATED" in r.stdout, r.stderr[-2000:]


def p2p(**kw) -> AccountConfig:
    return AccountConfig(id="peer-to-peer", user_id="door", is_default=True, dtmf=DTMF, **kw)


def v6_only(station, **kw):
    """The station bound to ::1 only: IPv6 listeners, IPv6-only accounts."""
    return station.config(bind_address="::1", accounts=kw.pop("accounts", (p2p(),)), **kw)


def dtmf_arrives(station, peer, call_id: str) -> None:
    peer.wait_event("CALL_ESTABLISHED")
    assert peer.command("sndcode", "#1234#")["ok"]
    ev = station.events.wait_for(lambda e: isinstance(e, DtmfMatched) and e.call_id == call_id, timeout=10.0,
                                 what="RFC 2833 DTMF over IPv6 RTP")
    assert ev.event_name == "OpenDoor"


def test_ipv6_only_station_calls_ipv6_only_baresip(station, baresip_factory):
    peer = baresip_factory(host="::1")
    station.engine.apply(v6_only(station))
    status = station.engine.account_status("peer-to-peer")
    assert status["SIPURI"] == f"sip:[::1]:{station.sip_port}"
    call_id = station.engine.make_call(None, peer.aor)
    active = station.wait_state(call_id, "Active")
    assert active["CallStateReason"] == "AcceptedByRemote"
    assert active["RemoteURI"] == peer.aor == f"sip:bob@[::1]:{peer.sip_port}"
    assert active["DeviceURI"] == f"sip:door@[::1]:{station.sip_port}"
    dtmf_arrives(station, peer, call_id)
    station.engine.hangup(call_id)
    assert station.wait_state(call_id, "Terminated")["CallStateReason"] == "Terminated"
    peer.wait_event("CALL_CLOSED")
    log = (peer.dir / "baresip.log").read_text()
    assert "488" not in log


def test_peer_to_peer_ipv6_uri_without_user(station, agent_factory):
    """The spec's form `sip:[fd12:3456:789a:1::90]:5060`, to an IPv6-only pjsua2 agent (baresip
    answers a request URI without user with 404)."""
    agent = agent_factory("--bind", "::1", "--answer", "200")
    station.engine.apply(v6_only(station))
    call_id = station.engine.make_call(None, f"sip:[::1]:{agent.port}")
    assert station.wait_state(call_id, "Active")["RemoteURI"] == f"sip:[::1]:{agent.port}"
    assert agent.wait_event("state", pred=lambda e: e.get("state") == "CONFIRMED")
    assert agent.wait_event("media")["codec"]       # media set up on both sides
    station.engine.hangup(call_id)
    station.wait_state(call_id, "Terminated")


def test_ipv6_only_baresip_calls_ipv6_only_station(station, baresip_factory):
    peer = baresip_factory(host="::1")
    station.engine.apply(v6_only(station, allow_incoming_calls=True))
    assert peer.command("dial", f"sip:door@[::1]:{station.sip_port}")["ok"]
    ev = station.events.wait_for(lambda e: isinstance(e, CallTransition) and e.reason == "AcceptedByDevice")
    status = station.engine.call_status(ev.call_id)
    assert status["Direction"] == "Incoming" and status["RemoteURI"].startswith("sip:bob@[::1]")
    dtmf_arrives(station, peer, ev.call_id)
    peer.command("hangup")
    assert station.wait_state(ev.call_id, "Terminated")["CallStateReason"] == "Terminated"


def test_ipv6_over_tcp(station, baresip_factory):
    peer = baresip_factory(host="::1")
    station.engine.apply(v6_only(station, accounts=(p2p(transport="tcp"),)))
    call_id = station.engine.make_call(None, peer.aor)
    assert station.wait_state(call_id, "Active")["CallStateReason"] == "AcceptedByRemote"
    connections = subprocess.run(["ss", "-Htn", "state", "established"], capture_output=True, text=True,
                                 timeout=10).stdout
    assert f"[::1]:{peer.sip_port}" in connections, connections
    dtmf_arrives(station, peer, call_id)
    station.engine.hangup(call_id)
    station.wait_state(call_id, "Terminated")


def test_ipv6_only_station_refuses_ipv4_destinations(station):
    station.engine.apply(v6_only(station))
    with pytest.raises(EngineError, match="no IPv4 SIP listener"):
        station.engine.make_call(None, f"sip:bob@127.0.0.1:{free_port()}")
    assert station.engine.live_call_ids() == []


def test_dual_stack_listeners_and_per_account_media_family(station, baresip_factory):
    """Bound to 127.0.0.1 and ::1: an account uses IPv4 media, or IPv6 with PrioritizeIPv6."""
    v4_peer, v6_peer = baresip_factory("bob4"), baresip_factory("bob6", host="::1")
    accounts = (p2p(), AccountConfig(id="v6", user_id="door6", prioritize_ipv6=True, dtmf=DTMF))
    station.engine.apply(station.config(accounts=accounts, bind_address6="::1"))
    for family, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            with socket.socket(family, kind) as s, pytest.raises(OSError):
                s.bind((addr, station.sip_port))          # held by the station
    assert station.engine.account_status("peer-to-peer")["SIPURI"] == f"sip:127.0.0.1:{station.sip_port}"
    assert station.engine.account_status("v6")["SIPURI"] == f"sip:[::1]:{station.sip_port}"

    v4_call = station.engine.make_call("peer-to-peer", v4_peer.aor)
    v6_call = station.engine.make_call("v6", v6_peer.aor)
    assert station.wait_state(v4_call, "Active")["DeviceURI"] == f"sip:door@127.0.0.1:{station.sip_port}"
    assert station.wait_state(v6_call, "Active")["DeviceURI"] == f"sip:door6@[::1]:{station.sip_port}"
    dtmf_arrives(station, v6_peer, v6_call)
    dtmf_arrives(station, v4_peer, v4_call)
    for call_id in (v4_call, v6_call):
        station.engine.hangup(call_id)
        station.wait_state(call_id, "Terminated")

    with pytest.raises(EngineError, match=r"uses IPv4 media \(PrioritizeIPv6=false\)"):
        station.engine.make_call("peer-to-peer", v6_peer.aor)
    with pytest.raises(EngineError, match=r"uses IPv6 media \(PrioritizeIPv6=true\)"):
        station.engine.make_call("v6", v4_peer.aor)


def test_registration_and_calls_through_an_ipv6_registrar(station, kamailio_factory, baresip_factory):
    """kamailio on [::1] as registrar and proxy; the station's account registers with PublicDomain
    `[::1]:port` (the spec's example writes `[fd12:3456:789a:1::90]`), bob registers there too."""
    k = kamailio_factory(host="::1")
    bob = baresip_factory(host="::1", accounts_line=lambda b: (
        f'<sip:bob@[::1]>;auth_pass=bob-secret;outbound="sip:[::1]:{k.port}";regint=60;'
        "answermode=auto;audio_codecs=PCMU/8000/1,PCMA/8000/1"))
    wait_until(lambda: "OK" in bob.command("reginfo")["data"], 10.0, "baresip to register", step=0.2)
    account = AccountConfig(id="sip_account_0", user_id="door", password="door-secret",
                            public_domain=f"[::1]:{k.port}", registration_interval=60, is_default=True, dtmf=DTMF)
    station.engine.apply(v6_only(station, accounts=(account,), allow_incoming_calls=True))
    status = wait_until(lambda: (st := station.engine.account_status("sip_account_0"))["Status"] == 200 and st,
                        10.0, "registration over IPv6")
    assert status["RegURI"] == f"[::1]:{k.port}" and status["SIPURI"] == f"sip:door@[::1]:{k.port}"
    call_id = station.engine.make_call(None, f"sip:bob@[::1]:{k.port}")
    assert station.wait_state(call_id, "Active")["CallStateReason"] == "AcceptedByRemote"
    dtmf_arrives(station, bob, call_id)
    station.engine.hangup(call_id)
    station.wait_state(call_id, "Terminated")
    bob.wait_event("CALL_CLOSED")
    station.answers_call_from(bob, f"sip:door@[::1]:{k.port}", "sip_account_0")


def test_tls_and_srtp_over_ipv6(station, agent_factory, tmp_path):
    """TLS (server certificate verified: its subjectAltName is IP ::1) and mandatory SRTP, over IPv6."""
    key, crt = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "1", "-subj", "/CN=::1", "-addext", "subjectAltName=IP:::1"],
                   check=True, capture_output=True, timeout=60)
    agent = agent_factory("--bind", "::1", "--transport", "tls", "--tls-cert", str(crt), "--tls-key", str(key),
                          "--srtp", "mandatory")
    station.engine.apply(v6_only(station, accounts=(p2p(transport="tls", verify_server_certificate=True,
                                                        media_encryption="SRTPMandatory"),),
                                 tls_cert_file=str(crt), tls_key_file=str(key), tls_ca_file=str(crt)))
    call_id = station.engine.make_call(None, agent.uri("tls", host="[::1]"))
    assert station.wait_state(call_id, "Active")["CallStateReason"] == "AcceptedByRemote"
    media = agent.wait_event("media")
    assert media["srtp"] is True
    connections = subprocess.run(["ss", "-Htn", "state", "established"], capture_output=True, text=True,
                                 timeout=10).stdout
    assert f"[::1]:{agent.port}" in connections, connections
    station.engine.hangup(call_id)
    assert station.wait_state(call_id, "Terminated")["CallStateReason"] == "Terminated"
