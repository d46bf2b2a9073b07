"""IPv6: why calls to `sip:...@[::1]` are refused, and that IPv6 listeners do not disturb IPv4 calls.

The pjsua2-python 2.15.1 wheel is built without PJ_HAS_IPV6 (docs/sip.md "IPv6"). If the canary
below starts failing, the wheel changed: IPv6 calls may then be implemented (engine.IPV6_CALLS).
"""
from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest

from daemon.sip import engine as engine_module
from daemon.sip.types import CallTransition, EngineError

from .conftest import free_port
from tests.sip_peers import PEERS, Baresip

pytestmark = pytest.mark.sip

# A pjsua2 process with a UDP6 transport adding an account with IPv6 enabled (SIP or media).
_PROBE = r"""
import sys, pjsua2 as pj
ep = pj.Endpoint(); ep.libCreate()
cfg = pj.EpConfig(); cfg.uaConfig.threadCnt = 0; cfg.uaConfig.mainThreadOnly = False
cfg.logConfig.level = 0; cfg.logConfig.consoleLevel = 0
ep.libInit(cfg)
tc = pj.TransportConfig(); tc.port = 0; tc.boundAddress = "::1"
tid = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP6, tc)
ep.libStart(); ep.audDevManager().setNullDev()
ac = pj.AccountConfig(); ac.idUri = "sip:probe@[::1]"
ac.sipConfig.transportId = tid
setattr(getattr(ac, sys.argv[1]), "ipv6Use", pj.PJSUA_IPV6_ENABLED)
acc = pj.Account(); acc.create(ac, True)
print("ACCOUNT CREATED", flush=True)
acc.shutdown(); ep.libDestroy()
"""


@pytest.mark.parametrize("part,field", [("sipConfig", "ipv6_sip_use"), ("mediaConfig", "ipv6_media_use")])
def test_wheel_is_built_without_ipv6(part, field):
    """pjsua_acc_add() asserts `cfg->ipv6_*_use == PJSUA_IPV6_DISABLED` under `#if !PJ_HAS_IPV6`."""
    r = subprocess.run([sys.executable, "-c", _PROBE, part], capture_output=True, text=True, timeout=30)
    assert "ACCOUNT CREATED" not in r.stdout, (
        "this pjsua2 build accepts IPv6 accounts: implement IPv6 calls (engine.IPV6_CALLS, docs/sip.md)")
    assert r.returncode == -signal.SIGABRT
    assert f"pjsua_acc_add: Assertion `cfg->{field} == PJSUA_IPV6_DISABLED' failed" in r.stderr
    assert engine_module.IPV6_CALLS is False


def test_ipv6_listeners_open_ipv6_call_refused_ipv4_call_works(station, agent_factory):
    station.engine.apply(station.config(ipv6=True, bind_address6="::1"))
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):     # udp6 and tcp6 hold [::1]:SIPPort
        with socket.socket(socket.AF_INET6, kind) as s, pytest.raises(OSError):
            s.bind(("::1", station.sip_port))
    with pytest.raises(EngineError, match="IPv6 destinations are not supported"):
        station.engine.make_call(None, f"sip:bob@[::1]:{free_port()}")
    with pytest.raises(EngineError, match="IPv6 destinations are not supported"):
        station.engine.make_call(None, f"sip:[::1]:{free_port()}")
    assert station.engine.live_call_ids() == []
    agent = agent_factory("--answer", "200")
    call_id = station.engine.make_call(None, agent.uri())
    st = station.wait_state(call_id, "Active")
    assert st["RemoteURI"] == agent.uri()
    station.engine.hangup(call_id)
    assert station.wait_state(call_id, "Terminated")["CallStateReason"] == "Terminated"


def test_incoming_call_over_ipv6_is_answered_500_by_pjsua(station, tmp_path):
    """pjsua_acc_create_uas_contact() returns PJSIP_EUNSUPTRANSPORT for an IPv6 transport when
    !PJ_HAS_IPV6: pjsua answers 500 before the engine sees the call (no record, no event)."""
    station.engine.apply(station.config(ipv6=True, bind_address6="::1", allow_incoming_calls=True))
    peer = Baresip(tmp_path / "baresip6", user="bob")
    config = (PEERS / "baresip.config.tmpl").read_text()
    (peer.dir / "config").write_text(
        config.replace("@SIP_LISTEN@", f"[::1]:{peer.sip_port}").replace("@CTRL_LISTEN@", f"127.0.0.1:{peer.ctrl_port}")
        .replace("@EXTRA_MODULES@", "").replace("net_interface\t\t127.0.0.1", "net_interface\t\t::1"))
    peer.set_accounts(f"<sip:bob@[::1]:{peer.sip_port}>;regint=0;answermode=auto")
    try:
        peer.start()
        assert peer.command("dial", f"sip:door@[::1]:{station.sip_port}")["ok"]
        peer.wait_event("CALL_CLOSED", timeout=5.0)
        assert "500 Server Internal Error" in (peer.dir / "baresip.log").read_text()
    finally:
        peer.stop()
    assert station.engine.call_statuses() == [] and station.events.of_type(CallTransition) == []
