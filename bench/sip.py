"""SIP figures through the whole stack (HTTP Digest -> gunicorn -> control socket -> supervisor ->
pjsua2) against real peers on loopback, each next to a baseline measured in the same run.

    sudo .venv/bin/python bench/sip.py [--calls 50] [--dtmf 30] [--cycles 100] [--idle 30]

How each figure is taken (all times are CLOCK_REALTIME, so they compare across processes):
1. Call setup: from just before the HTTP request `axcall:Call` is sent to the INVITE on the wire.
   The INVITE is seen by a packet socket on `lo` (AF_PACKET, kernel receive timestamp via
   SO_TIMESTAMPNS), so no peer's own processing is counted. The callee is a pjsua2 agent answering
   486 (the call ends at once; the figure stops at the INVITE anyway). Baselines, same callee, same
   sniffer: another pjsua2 agent told to call over its stdin (same SIP stack, no HTTP/supervisor;
   its loop polls stdin between 10 ms libHandleEvents slices) and baresip told over ctrl_tcp.
2. DTMF: a pjsua2 agent in a call with the station sends #1234# as RFC 2833; the sniffer records the
   telephone-event packets; figure = the Call/DTMF event's `time` (set by the supervisor when it
   writes the event) minus the first end packet (E bit) of the last digit, and minus that digit's
   first packet. Baseline: the same sender to a second pjsua2 agent, whose onDtmfDigit time is used.
3. RSS (VmRSS) of the supervisor idle, with one call active (to baresip), and after N call/hang-up
   cycles; baresip's and an idle pjsua2 agent's RSS as baselines.
4. CPU (utime+stime from /proc/<pid>/stat) over an idle window: supervisor, gunicorn (master and
   worker), the `doorstation run` launcher; baresip and the pjsua2 agent over the same window.

Needs root (packet socket) and the Debian package baresip.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.harness import Station  # noqa: E402
from tests.packets import Packet, PacketCapture  # noqa: E402
from tests.sip_peers import Agent, Baresip, wait_until  # noqa: E402
from tests.stack_sip import TOPIC_DTMF, EventTail, call_status, enable_sip, wait_call_state  # noqa: E402

TE_POUND = 11          # RFC 4733 event code of '#'


# ---- loopback sniffer ---------------------------------------------------------------------------------
class LoopbackSniffer:
    """Records, with kernel timestamps, INVITEs and RTP telephone-event packets seen on `lo`."""

    def __init__(self) -> None:
        self.invites: list[tuple[float, int]] = []                     # (time, destination port)
        self.tel_events: list[tuple[float, int, int, int, bool]] = []  # (time, dport, rtp ts, event, end)
        self._lock = threading.Lock()
        self._capture = PacketCapture("lo", self._classify)

    def _classify(self, p: Packet) -> None:
        if not p.outgoing:                   # each loopback packet also shows up as incoming
            return
        if p.payload.startswith(b"INVITE "):  # over UDP, or TCP when over 1300 bytes
            with self._lock:
                self.invites.append((p.at, p.dport))
        elif p.proto == 17 and len(p.payload) == 16 and p.payload[0] >> 6 == 2:
            # RTP with a 4-byte payload: a telephone-event (audio frames are 80+ bytes)
            rtp_ts = struct.unpack("!I", p.payload[4:8])[0]
            with self._lock:
                self.tel_events.append((p.at, p.dport, rtp_ts, p.payload[12], bool(p.payload[13] & 0x80)))

    def first_invite(self, dport: int, after: float) -> float | None:
        with self._lock:
            return next((t for t, p in self.invites if p == dport and t >= after), None)

    def digits(self, after: float) -> list[dict]:
        """Telephone events sent after `after`, one entry per digit (grouped by RTP timestamp)."""
        groups: dict[tuple[int, int], dict] = {}
        with self._lock:
            packets = [p for p in self.tel_events if p[0] >= after]
        for at, dport, rtp_ts, event, end in packets:
            g = groups.setdefault((dport, rtp_ts), {"event": event, "start": at, "end": None, "tail_only": end})
            if end and g["end"] is None:
                g["end"] = at
        # a group seen only from an end packet is the retransmitted end of an earlier digit
        return sorted((g for g in groups.values() if not g.pop("tail_only")), key=lambda g: g["start"])

    def close(self) -> None:
        self._capture.close()


# ---- /proc --------------------------------------------------------------------------------------------
def process_tree(root: int) -> list[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += [p for p, pp in parents.items() if pp == pid]
    return tree


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime + stime


def station_processes(st: Station) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {"launcher": [st.proc.pid], "supervisor": [], "gunicorn": []}
    for pid in process_tree(st.proc.pid)[1:]:
        cmd = cmdline(pid)
        group = "supervisor" if "daemon.supervisor" in cmd else "gunicorn" if "gunicorn" in cmd else "launcher"
        groups[group].append(pid)
    return groups


# ---- figures --------------------------------------------------------------------------------------------
def spread(xs: list[float]) -> str:
    if not xs:
        return "not measured (n=0)"
    xs = sorted(xs)
    def p(q: float) -> float:           # nearest rank
        return xs[min(len(xs) - 1, max(0, round(q * len(xs)) - 1))]
    return f"min {xs[0]:7.2f}  p50 {p(0.5):7.2f}  p90 {p(0.9):7.2f}  max {xs[-1]:7.2f}  ms (n={len(xs)})"


def call_setup(st: Station, sniffer: LoopbackSniffer, callee: Agent, caller: Agent, bob: Baresip, n: int) -> None:
    session = st.session()
    session.post(f"{st.url}/vapix/call", json={"axcall:GetCallStatuses": {}}, timeout=10)  # Digest nonce
    to = callee.uri()
    station_ms, answer_ms, agent_ms, baresip_ms = [], [], [], []
    for _ in range(n):
        t0 = time.time()
        r = session.post(f"{st.url}/vapix/call", json={"axcall:Call": {"To": to}}, timeout=10)
        t_answer = time.time()
        assert r.status_code == 200, r.text
        call_id = r.json()["CallId"]
        invite = wait_until(lambda t0=t0: sniffer.first_invite(callee.port, t0), 5.0, "INVITE from the station")
        station_ms.append((invite - t0) * 1000)
        answer_ms.append((t_answer - t0) * 1000)
        wait_call_state(st, call_id, "Terminated")
        time.sleep(0.15)            # the engine takes at most 8 new calls per second
    for _ in range(n):
        mark = caller.mark()
        t0 = time.time()
        caller.send(cmd="call", to=to)
        invite = wait_until(lambda t0=t0: sniffer.first_invite(callee.port, t0), 5.0, "INVITE from the agent")
        agent_ms.append((invite - t0) * 1000)
        caller.wait_event("state", pred=lambda e: e["state"] == "DISCONNECTED", since=mark)
    for _ in range(n):
        mark = bob.mark()
        t0 = time.time()
        bob.command("dial", to)
        invite = wait_until(lambda t0=t0: sniffer.first_invite(callee.port, t0), 5.0, "INVITE from baresip")
        baresip_ms.append((invite - t0) * 1000)
        bob.wait_event("CALL_CLOSED", since=mark)
    print("\n(1) request to call -> INVITE on the wire (callee: pjsua2 agent answering 486)")
    print(f"  doorstation  HTTP axcall:Call -> INVITE   {spread(station_ms)}")
    print(f"  doorstation  HTTP axcall:Call -> answer   {spread(answer_ms)}")
    print(f"  baseline     pjsua2 agent stdin -> INVITE {spread(agent_ms)}")
    print(f"  baseline     baresip ctrl_tcp -> INVITE   {spread(baresip_ms)}")
    print(f"  ratio p50 doorstation/pjsua2 agent {statistics.median(station_ms) / statistics.median(agent_ms):.1f}x, "
          f"doorstation/baresip {statistics.median(station_ms) / statistics.median(baresip_ms):.1f}x")


def configure_dtmf(st: Station) -> str:
    event_id = st.ok("SetDTMFEvent", {"DTMFEvent": {"Name": "OpenDoorEvent"}})["DTMFEventId"]
    trigger = st.ok("SetDTMFTrigger", {"DTMFTrigger": {"DTMFSequence": "#1234#", "DTMFEventId": event_id}})
    config = st.ok("SetDTMFConfiguration",
                   {"DTMFConfiguration": {"Name": "Door", "DTMFTriggerId": [trigger["DTMFTriggerId"]]}})
    st.ok("SetSIPAccount", {"SIPAccount": {"Id": "peer-to-peer", "DTMFConfigurationId": config["DTMFConfigurationId"]}})
    return event_id


def dtmf_events(tail: EventTail) -> list[dict]:
    return [e for e in tail.events if e["topic"] == TOPIC_DTMF]


def last_digit(sniffer: LoopbackSniffer, t0: float) -> dict:
    def complete():
        digits = sniffer.digits(t0)
        return len(digits) >= 6 and digits[5]["end"] is not None and digits[5]
    d = wait_until(complete, 10.0, "six RFC 2833 digits with end packets", step=0.01)
    assert d["event"] == TE_POUND, sniffer.digits(t0)
    return d


def dtmf_latency(st: Station, sniffer: LoopbackSniffer, sender: Agent, receiver: Agent, n: int) -> None:
    configure_dtmf(st)
    tail = EventTail(st)
    call_id = st.ok("Call", {"To": sender.uri()})["CallId"]
    wait_call_state(st, call_id, "Active")
    sender.wait_event("media")
    station_end, station_start = [], []
    for _ in range(n):
        seen = len(dtmf_events(tail))
        t0 = time.time()
        sender.send(cmd="dtmf", digits="#1234#", method="RFC2833")
        wait_until(lambda seen=seen: (tail.poll(wait=0.2), len(dtmf_events(tail)) > seen)[1], 10.0, "Call/DTMF",
                   step=0)
        ev = dtmf_events(tail)[seen]
        d = last_digit(sniffer, t0)
        station_end.append((ev["time"] - d["end"]) * 1000)
        station_start.append((ev["time"] - d["start"]) * 1000)
        assert ev["data"]["CallId"] == call_id
    st.ok("TerminateCall", {"CallId": call_id})
    wait_call_state(st, call_id, "Terminated")
    sender.wait_event("state", pred=lambda e: e["state"] == "DISCONNECTED")
    time.sleep(0.5)   # the sender drops the Call object on DISCONNECTED; let it settle
    mark = sender.mark()
    sender.send(cmd="call", to=receiver.uri())
    sender.wait_event("media", since=mark)
    base_end, base_start = [], []
    for _ in range(n):
        rmark = receiver.mark()
        t0 = time.time()
        sender.send(cmd="dtmf", digits="#1234#", method="RFC2833")
        got = wait_until(lambda rmark=rmark: len(ds := [e for e in receiver.events[rmark:]
                                                        if e.get("event") == "dtmf"]) >= 6
                         and ds, 10.0, "six digits at the receiving agent")
        d = last_digit(sniffer, t0)
        base_end.append((got[5]["t"] - d["end"]) * 1000)
        base_start.append((got[5]["t"] - d["start"]) * 1000)
    sender.send(cmd="hangup")
    print("\n(2) RFC 2833 #1234#: last digit's packets on the wire -> reported (negative: before the end packet)")
    print(f"  doorstation  end packet   -> Call/DTMF event   {spread(station_end)}")
    print(f"  doorstation  first packet -> Call/DTMF event   {spread(station_start)}")
    print(f"  baseline     end packet   -> agent onDtmfDigit {spread(base_end)}")
    print(f"  baseline     first packet -> agent onDtmfDigit {spread(base_start)}")
    print(f"  difference p50 doorstation - pjsua2 agent (from first packet): "
          f"{statistics.median(station_start) - statistics.median(base_start):.2f} ms")


def idle_cpu(st: Station, others: dict[str, int], seconds: float) -> None:
    groups = station_processes(st)
    pids = {name: pids for name, pids in groups.items()} | {name: [pid] for name, pid in others.items()}
    before = {name: sum(cpu_seconds(p) for p in ps) for name, ps in pids.items()}
    time.sleep(seconds)
    after = {name: sum(cpu_seconds(p) for p in ps) for name, ps in pids.items()}
    print(f"\n(4) idle CPU over {seconds:.0f} s (% of one core, utime+stime)")
    pct = {name: 100 * (after[name] - before[name]) / seconds for name in pids}
    for name, ps in pids.items():
        print(f"  {name:<22} {pct[name]:6.2f} %   pids {ps}")
    station = pct["supervisor"] + pct["gunicorn"]
    print(f"  supervisor + gunicorn  {station:6.2f} %   (+ launcher {pct['launcher']:.2f} %)")
    for name in others:
        if pct[name] > 0:
            print(f"  ratio (supervisor + gunicorn) / {name}: {station / pct[name]:.1f}x")


def memory(st: Station, bob: Baresip, idle_agent: Agent, cycles: int, idle_rss: float) -> None:
    sup = station_processes(st)["supervisor"][0]
    gun = station_processes(st)["gunicorn"]
    bob_idle = rss_mib(bob.proc.pid)
    call_id = st.ok("Call", {"To": bob.aor})["CallId"]
    wait_call_state(st, call_id, "Active")
    time.sleep(1.0)
    with_call, bob_call = rss_mib(sup), rss_mib(bob.proc.pid)
    st.ok("TerminateCall", {"CallId": call_id})
    wait_call_state(st, call_id, "Terminated")
    after_first = rss_mib(sup)
    samples, series = [], []
    session = st.session()
    for i in range(cycles):
        r = session.post(f"{st.url}/vapix/call", json={"axcall:Call": {"To": bob.aor}}, timeout=10)
        cid = r.json()["CallId"]
        wait_until(lambda cid=cid: call_status(st, cid)["CallState"] == "Active", 10.0, "Active", step=0.02)
        session.post(f"{st.url}/vapix/call", json={"axcall:TerminateCall": {"CallId": cid}}, timeout=10)
        wait_until(lambda cid=cid: call_status(st, cid)["CallState"] == "Terminated", 10.0, "Terminated", step=0.02)
        time.sleep(0.13)            # at most 8 new calls per second
        if i == min(9, cycles - 1):         # with fewer than 10 cycles both samples are the last
            samples.append(rss_mib(sup))
        if i == cycles - 1:
            samples.append(rss_mib(sup))
        if (i + 1) % 100 == 0:
            series.append(rss_mib(sup))
    time.sleep(1.0)
    end = rss_mib(sup)
    agent_rss = rss_mib(idle_agent.proc.pid)
    print("\n(3) memory, VmRSS MiB")
    print(f"  supervisor idle (SIP on, no call yet)      {idle_rss:7.1f}")
    print(f"  supervisor with one call active            {with_call:7.1f}   (+{with_call - idle_rss:.1f})")
    print(f"  supervisor after that call                 {after_first:7.1f}")
    print(f"  supervisor after {min(10, cycles)} / {cycles} call+hang-up cycles {samples[0]:7.1f} / {samples[1]:.1f}; "
          f"1 s later {end:.1f}")
    print(f"  growth over cycles 10..{cycles}: {samples[1] - samples[0]:+.1f} MiB "
          f"({(samples[1] - samples[0]) * 1024 / max(1, cycles - 10):+.1f} KiB/call); "
          f"over all {cycles}: {samples[1] - after_first:+.1f} MiB")
    if series:
        print(f"  every 100 cycles: {', '.join(f'{v:.1f}' for v in series)}")
    print(f"  gunicorn (master + worker)                 {sum(rss_mib(p) for p in gun):7.1f}")
    print(f"  baseline baresip idle / with the call      {bob_idle:7.1f} / {bob_call:.1f}")
    print(f"  baseline pjsua2 agent (python + pjsua2) idle {agent_rss:5.1f}")
    print(f"  ratio supervisor/baresip idle {idle_rss / bob_idle:.1f}x, supervisor/pjsua2 agent "
          f"{idle_rss / agent_rss:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--dtmf", type=int, default=30)
    parser.add_argument("--cycles", type=lambda v: max(1, int(v)), default=100,
                        help="call/hang-up cycles for the memory figures (at least 1)")
    parser.add_argument("--idle", type=float, default=30.0)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/sip.py needs root: it reads packets on lo with a packet socket", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="ds-bench-sip-"))
    started: list = []
    sniffer = LoopbackSniffer()
    try:
        st = Station(work / "state").start()
        started.append(st)
        enable_sip(st)
        callee = Agent(work / "callee", "--answer", "486")
        sender = Agent(work / "sender")
        receiver = Agent(work / "receiver")
        bob = Baresip(work / "bob").start()
        started += [callee, sender, receiver, bob]
        time.sleep(2.0)
        idle_rss = rss_mib(station_processes(st)["supervisor"][0])
        now = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())
        print(f"doorstation SIP bench, {os.cpu_count()} CPUs, loopback, {now}")
        idle_cpu(st, {"baresip": bob.proc.pid, "pjsua2 agent (idle)": receiver.proc.pid}, args.idle)
        call_setup(st, sniffer, callee, sender, bob, args.calls)
        dtmf_latency(st, sniffer, sender, receiver, args.dtmf)
        memory(st, bob, receiver, args.cycles, idle_rss)
        return 0
    finally:
        for thing in reversed(started):
            try:            # one failing stop must not leave the station running
                thing.stop()
            except Exception as e:  # noqa: BLE001
                print(f"stopping {type(thing).__name__}: {e}", file=sys.stderr)
        sniffer.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
