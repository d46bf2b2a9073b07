"""A second pjsua2 SIP party for tests, run as its own process (pjsua2 allows one Endpoint per process).

    python tests/sip_agent.py --port 5080 [--answer 200|486|603|180|none] [--transport udp|tcp|tls]
                              [--srtp none|optional|mandatory] [--tls-cert F --tls-key F]
                              [--codecs PCMA,PCMU] [--max-seconds 60]

Answers every incoming call with `--answer` (180 = ring forever, none = ignore the INVITE entirely,
like a dead host that still has the port open). Prints one JSON object per line on stdout for each
event: {"event": "ready", "port": N}, {"event": "incoming", "from": uri}, {"event": "state",
"state": "CONFIRMED"|"DISCONNECTED", "code": N}, {"event": "media", "codec": "PCMU", "srtp": bool},
{"event": "dtmf", "digit": "1", "method": "RFC2833"|"SIP_INFO"}; every object also carries "t", the
wall-clock time (time.time()) at which the agent saw the event. Reads commands as JSON lines on stdin:
{"cmd": "dtmf", "digits": "#1234#", "method": "SIP_INFO"|"RFC2833"}, {"cmd": "hangup"},
{"cmd": "call", "to": "sip:..."}, {"cmd": "quit"}. Exits after --max-seconds whatever happens.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import select
import sys
import time

import pjsua2 as pj


def emit(**kw) -> None:
    # "t": wall-clock time of the event in this process (bench/sip.py compares it with packet times)
    sys.stdout.write(json.dumps({**kw, "t": time.time()}) + "\n")
    sys.stdout.flush()


class AgentCall(pj.Call):
    def __init__(self, agent: "Agent", acc: pj.Account, call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(acc, call_id)
        self.agent = agent

    def onCallState(self, prm) -> None:
        try:
            ci = self.getInfo()
            name = {pj.PJSIP_INV_STATE_CONFIRMED: "CONFIRMED", pj.PJSIP_INV_STATE_DISCONNECTED: "DISCONNECTED",
                    pj.PJSIP_INV_STATE_EARLY: "EARLY", pj.PJSIP_INV_STATE_CALLING: "CALLING",
                    pj.PJSIP_INV_STATE_CONNECTING: "CONNECTING"}.get(ci.state, str(ci.state))
            emit(event="state", state=name, code=int(ci.lastStatusCode))
            if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self.agent.calls = [c for c in self.agent.calls if c is not self]
        except Exception as e:
            emit(event="error", where="onCallState", error=str(e))

    def onCallMediaState(self, prm) -> None:
        try:
            ci = self.getInfo()
            for idx, mi in enumerate(ci.media):
                if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    si = self.getStreamInfo(idx)
                    # Connect the call to the (null) sound device both ways, like a real phone: the
                    # conference bridge then clocks the stream, and RFC 2833 digits go out whole.
                    am = self.getAudioMedia(idx)
                    adm = self.agent.ep.audDevManager()
                    am.startTransmit(adm.getPlaybackDevMedia())
                    adm.getCaptureDevMedia().startTransmit(am)
                    # pjsua2 exposes no SRTP flag; the call dump says "SRTP status: Active" when in use.
                    dump = self.dump(True, "")
                    emit(event="media", codec=str(si.codecName), srtp="SRTP status: Active" in dump)
        except Exception as e:
            emit(event="error", where="onCallMediaState", error=str(e))

    def onDtmfDigit(self, prm) -> None:
        method = "SIP_INFO" if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "RFC2833"
        emit(event="dtmf", digit=str(prm.digit), method=method)


class AgentAccount(pj.Account):
    def __init__(self, agent: "Agent"):
        super().__init__()
        self.agent = agent

    def onIncomingCall(self, prm) -> None:
        try:
            call = AgentCall(self.agent, self, prm.callId)
            self.agent.calls.append(call)
            emit(event="incoming", **{"from": call.getInfo().remoteUri})
            answer = self.agent.args.answer
            if answer == "none":
                return
            op = pj.CallOpParam()
            op.statusCode = int(answer)
            call.answer(op) if int(answer) < 300 else call.hangup(op)
        except Exception as e:
            emit(event="error", where="onIncomingCall", error=str(e))


class Agent:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.calls: list[AgentCall] = []
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = False
        cfg.logConfig.level = 1
        cfg.logConfig.consoleLevel = 1
        self.ep.libInit(cfg)
        tc = pj.TransportConfig()
        tc.port = args.port
        tc.boundAddress = args.bind
        v6 = ":" in args.bind
        kind = {"udp": pj.PJSIP_TRANSPORT_UDP6 if v6 else pj.PJSIP_TRANSPORT_UDP,
                "tcp": pj.PJSIP_TRANSPORT_TCP6 if v6 else pj.PJSIP_TRANSPORT_TCP,
                "tls": pj.PJSIP_TRANSPORT_TLS6 if v6 else pj.PJSIP_TRANSPORT_TLS}[args.transport]
        if args.transport == "tls":
            tc.tlsConfig.certFile = args.tls_cert
            tc.tlsConfig.privKeyFile = args.tls_key
        self.ep.transportCreate(kind, tc)
        if args.transport != "udp":   # replies and in-dialog requests may still go over UDP
            uc = pj.TransportConfig()
            uc.port = args.port
            uc.boundAddress = args.bind
            self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP6 if v6 else pj.PJSIP_TRANSPORT_UDP, uc)
        self.ep.libStart()
        self.ep.audDevManager().setNullDev()
        if args.codecs:
            for ci in self.ep.codecEnum2():
                self.ep.codecSetPriority(ci.codecId, 0)
            prio = 250
            for name in args.codecs.split(","):
                for ci in self.ep.codecEnum2():
                    if ci.codecId.split("/")[0].lower() == name.lower():
                        self.ep.codecSetPriority(ci.codecId, prio)
                prio -= 1
        ac = pj.AccountConfig()
        host = f"[{args.bind}]" if v6 else args.bind
        ac.idUri = f"sip:agent@{host}:{args.port}"
        ac.mediaConfig.transportConfig.port = args.rtp_port
        ac.mediaConfig.transportConfig.boundAddress = args.bind
        if v6:   # an IPv6-only agent (needs a pjsua2 built with IPv6)
            ac.sipConfig.ipv6Use = ac.mediaConfig.ipv6Use = pj.PJSUA_IPV6_ENABLED_USE_IPV6_ONLY
        ac.mediaConfig.srtpUse = {"none": pj.PJMEDIA_SRTP_DISABLED, "optional": pj.PJMEDIA_SRTP_OPTIONAL,
                                  "mandatory": pj.PJMEDIA_SRTP_MANDATORY}[args.srtp]
        ac.mediaConfig.srtpSecureSignaling = 0
        self.acc = AgentAccount(self)
        self.acc.create(ac, True)

    def _call(self, to: str) -> None:
        call = AgentCall(self, self.acc)
        self.calls.append(call)
        call.makeCall(to, pj.CallOpParam(True))

    def _send_dtmf(self, digits: str, method: str) -> None:
        prm = pj.CallSendDtmfParam()
        prm.digits = digits
        prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO if method == "SIP_INFO" else pj.PJSUA_DTMF_METHOD_RFC2833
        for call in list(self.calls):
            call.sendDtmf(prm)

    def command(self, cmd: dict) -> bool:
        name = cmd.get("cmd")
        if name == "quit":
            return False
        if name == "dtmf":
            self._send_dtmf(cmd["digits"], cmd.get("method", "RFC2833"))
            emit(event="sent", digits=cmd["digits"])
        elif name == "hangup":
            self._hangup_all()
        elif name == "call":
            self._call(cmd["to"])
        return True

    def run(self) -> None:
        emit(event="ready", port=self.args.port)
        deadline = time.monotonic() + self.args.max_seconds
        buf = b""
        fd = sys.stdin.fileno()
        os.set_blocking(fd, False)
        running = True
        while running and time.monotonic() < deadline:
            self.ep.libHandleEvents(10)
            if select.select([fd], [], [], 0)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break          # test process went away
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        try:
                            running = self.command(json.loads(line)) and running
                        except Exception as e:
                            emit(event="error", where="command", error=str(e))

    def _hangup_all(self) -> None:
        # A helper, so no local variable keeps a Call alive past libDestroy (that aborts the process).
        for call in list(self.calls):
            try:
                call.hangup(pj.CallOpParam())
            except Exception:
                pass

    def close(self) -> None:
        self._hangup_all()
        end = time.monotonic() + 1.0
        while self.calls and time.monotonic() < end:
            self.ep.libHandleEvents(10)
        self.calls.clear()
        self.acc.shutdown()
        self.acc = None
        gc.collect()
        self.ep.libDestroy(pj.PJSUA_DESTROY_NO_RX_MSG)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--rtp-port", type=int, default=0)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--transport", choices=("udp", "tcp", "tls"), default="udp")
    ap.add_argument("--answer", default="200")
    ap.add_argument("--srtp", choices=("none", "optional", "mandatory"), default="none")
    ap.add_argument("--tls-cert", default="")
    ap.add_argument("--tls-key", default="")
    ap.add_argument("--codecs", default="")
    ap.add_argument("--max-seconds", type=float, default=60.0)
    args = ap.parse_args()
    agent = Agent(args)
    try:
        agent.run()
    finally:
        agent.close()
        emit(event="exit")


if __name__ == "__main__":
    main()
