"""What 50 event subscribers cost the door, and what each transport delivers, in one run:
WebSocket + RTSP + /api/events long-poll subscribers while DTMF from a SIP peer opens the door.

    sudo .venv/bin/python bench/events_fanout.py [--ws 20] [--rtsp 20] [--longpoll 10] [--dtmf 30]

A real `doorstation run --rtsp` (simulated GPIO, door pulse 150 ms) on loopback, SIP on, #1234#
bound to the door. A pjsua2 agent (tests/sip_peers.Agent) is in a call with the station and sends
#1234# as RFC 2833, `--dtmf` times with no subscriber, then as many times with the subscribers.

- DTMF -> relay: from the last digit's first end packet (E bit) on `lo` (packet socket, kernel
  timestamp: bench/sip.py's sniffer) to the `doorstation:Relay` Unlocked event's time (written by
  the supervisor when it drives the relay). Both CLOCK_REALTIME. p50/p99 with 0 and with N
  subscribers, and the ratio (same run). One /api/events reader (the bench's own, to find the
  events) runs in both phases.
- Delivery: from that Unlocked event's time to its arrival at each subscriber (the relay's
  `LogicalState active` notification over WebSocket and RTSP, the event itself on the long-poll).
- CPU (utime+stime over each phase, % of one core) and RSS (VmRSS at each phase's end) of the
  supervisor, the API (gunicorn master + worker) and the RTSP process.
- Audio underruns: read from `doorstation status` if it reports any.

Needs root (packet socket on lo) and pjsua2 in the venv.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import requests
from requests.auth import HTTPDigestAuth
from websockets.asyncio.client import connect as ws_connect

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.sip import LoopbackSniffer, cmdline, cpu_seconds, process_tree, rss_mib  # noqa: E402
from daemon.control.client import ControlClient  # noqa: E402
from daemon.supervisor import control_socket_path  # noqa: E402
from tests.harness import VIEWER, Station, axis_hardware_toml, free_port  # noqa: E402
from tests.sip_peers import Agent, wait_until  # noqa: E402
from tests.stack_sip import EventTail, enable_sip, open_door_dtmf, wait_call_state  # noqa: E402
from tests.test_rtsp_events import RawRtsp  # noqa: E402

PULSE_MS = 150
RELAY_FILTER = "tns1:Device/Trigger/Relay"


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")


def summary(name: str, ms: list[float]) -> str:
    return (f"  {name:<24} n={len(ms):<5} p50={pct(ms, 50):7.2f} ms  p99={pct(ms, 99):7.2f} ms  "
            f"max={max(ms) if ms else float('nan'):7.2f} ms")


# ---- subscribers: each records (event time, arrival time) of the relay's unlock ------------------------
class WsSubscribers(threading.Thread):
    """`count` WebSocket streams on one asyncio loop of their own (the `websockets` asyncio client):
    one thread for all of them, so the clients' own cost stays out of the figures as far as it can."""

    def __init__(self, port: int, count: int):
        super().__init__(daemon=True)
        self.port, self.count = port, count
        self.delays: list[float] = []
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Event | None = None

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        auth = "Basic " + base64.b64encode(f"{VIEWER[0]}:{VIEWER[1]}".encode()).decode()
        conns = []
        for _ in range(self.count):
            conn = await ws_connect(f"ws://127.0.0.1:{self.port}/vapix/ws-data-stream?sources=events",
                                    additional_headers={"Authorization": auth}, open_timeout=30)
            await conn.send(json.dumps({"apiVersion": "1.0", "method": "events:configure",
                                        "params": {"eventFilterList": [{"topicFilter": RELAY_FILTER}]}}))
            conns.append(conn)
        readers = [asyncio.create_task(self._read(c)) for c in conns]
        self.ready.set()
        await self._done.wait()
        for task in readers:
            task.cancel()
        for conn in conns:
            await conn.close()

    async def _read(self, conn) -> None:
        async for raw in conn:
            now = time.time()
            n = json.loads(raw).get("params", {}).get("notification")
            message = n["message"] if n else {}
            if message and message["source"].get("RelayToken") == "1" and message["data"]["LogicalState"] == "active":
                self.delays.append((now - n["timestamp"] / 1000) * 1000)

    def close(self) -> None:
        if self.loop is not None and self._done is not None:
            self.loop.call_soon_threadsafe(self._done.set)
            self.join(10)


class RtspSubscriber(threading.Thread):
    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.client = RawRtsp(port, VIEWER).play(
            "video=0&audio=0&event=on&eventtopic=onvif:Device/Trigger/Relay")
        self.delays: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        self.client.rtp.settimeout(1.0)
        while not self.stop.is_set():
            try:
                doc = self.client.rtp.recv(65536)[12:].decode()
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.time()
            if ('PropertyOperation="Changed"' in doc and 'Name="RelayToken" Value="1"' in doc
                    and 'Value="active"' in doc):
                utc = doc.split('UtcTime="', 1)[1].split('"', 1)[0]
                at = datetime.strptime(utc, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=None)
                self.delays.append((now - (at - datetime(1970, 1, 1)).total_seconds()) * 1000)

    def close(self) -> None:
        self.stop.set()
        self.client.close()


class LongPollSubscriber(threading.Thread):
    def __init__(self, url: str, after: int, user):
        super().__init__(daemon=True)
        self.url, self.after = url, after
        self.session = requests.Session()
        self.session.auth = HTTPDigestAuth(*user)
        self.delays: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                r = self.session.get(f"{self.url}/api/events", params={"after": self.after, "wait": 2}, timeout=15)
            except requests.RequestException:
                return
            now = time.time()
            body = r.json()
            self.after = body["next"]
            self.delays += [(now - e["time"]) * 1000 for e in body["events"]
                            if e["topic"] == "doorstation:Relay" and e["data"].get("State") == "Unlocked"]

    def close(self) -> None:
        self.stop.set()


# ---- the station's processes -------------------------------------------------------------------------
def processes(st: Station) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {"supervisor": [], "API (gunicorn)": [], "RTSP process": []}
    for pid in process_tree(st.proc.pid)[1:]:
        cmd = cmdline(pid)
        key = ("supervisor" if "daemon.supervisor" in cmd else "API (gunicorn)" if "gunicorn" in cmd
               else "RTSP process" if "daemon.rtsp" in cmd else None)
        if key:
            groups[key].append(pid)
    return groups


class Usage:
    def __init__(self, groups: dict[str, list[int]]):
        self.groups = groups
        self.t0 = time.monotonic()
        self.wall = 0.0
        self.cpu0 = {k: sum(cpu_seconds(p) for p in pids) for k, pids in groups.items()}

    def done(self) -> dict[str, tuple[float, float]]:
        wall = self.wall = time.monotonic() - self.t0
        return {k: ((sum(cpu_seconds(p) for p in pids) - self.cpu0[k]) / wall * 100,
                    sum(rss_mib(p) for p in pids)) for k, pids in self.groups.items()}


def underruns(st: Station) -> dict:
    """Every counter named like an underrun in the supervisor's `status` (what `doorstation
    status` prints)."""
    client = ControlClient(str(control_socket_path(st.state_dir)), timeout=10)
    try:
        status = client.request("status")
    finally:
        client.close()
    found = {}

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                if "underrun" in k.lower():
                    found[path + k] = v
                walk(v, path + k + ".")
    walk(status, "")
    return found


# ---- DTMF rounds ----
SEQUENCE = [11, 1, 2, 3, 4, 11]       # #1234# as RFC 4733 event codes


def last_digit(sniffer: LoopbackSniffer, t0: float) -> dict:
    """The sender's last # after t0: the destination port whose digits read #1234# (the station
    also sends telephone events of its own the other way), one group per RTP timestamp;
    retransmitted end packets are not digits."""
    def complete():
        by_port: dict[int, dict[int, dict]] = {}
        for at, dport, rtp_ts, event, end in [p for p in list(sniffer.tel_events) if p[0] >= t0]:
            g = by_port.setdefault(dport, {}).setdefault(
                rtp_ts, {"event": event, "start": at, "end": None, "tail_only": end})
            if end and g["end"] is None:
                g["end"] = at
        for groups in by_port.values():
            digits = sorted((g for g in groups.values() if not g["tail_only"]), key=lambda g: g["start"])
            if [g["event"] for g in digits[:6]] == SEQUENCE and digits[5]["end"] is not None:
                return digits[5]
        return None
    return wait_until(complete, 10.0, "#1234# as RFC 2833 with end packets", step=0.01)


def dtmf_rounds(st: Station, tail: EventTail, sniffer: LoopbackSniffer, sender: Agent,
                n: int) -> tuple[list[float], list[float]]:
    """(last digit's first packet -> relay, its end packet -> relay) in ms, n rounds."""
    from_start, from_end = [], []
    for _ in range(n):
        seen = len([e for e in tail.events if e["topic"] == "doorstation:Relay"])
        t0 = time.time()
        sender.send(cmd="dtmf", digits="#1234#", method="RFC2833")

        def relay_events(seen=seen):
            tail.poll(wait=0.5)
            relay = [e for e in tail.events if e["topic"] == "doorstation:Relay"][seen:]
            return len(relay) >= 2 and relay      # Unlocked, then Locked when the pulse ends
        relay = wait_until(relay_events, 15.0, "the relay's pulse", step=0)
        assert relay[0]["data"]["State"] == "Unlocked" and relay[0]["data"]["Cause"] == "DTMF", relay
        d = last_digit(sniffer, t0)
        from_start.append((relay[0]["time"] - d["start"]) * 1000)
        from_end.append((relay[0]["time"] - d["end"]) * 1000)
        time.sleep(0.2)
    return from_start, from_end


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ws", type=int, default=20)
    parser.add_argument("--rtsp", type=int, default=20)
    parser.add_argument("--longpoll", type=int, default=10)
    parser.add_argument("--dtmf", type=int, default=30)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/events_fanout.py needs root: it reads packets on lo with a packet socket", file=sys.stderr)
        return 2
    total = args.ws + args.rtsp + args.longpoll
    work = Path(tempfile.mkdtemp(prefix="ds-bench-fanout-"))
    (work / "state").mkdir()
    (work / "state" / "hardware.toml").write_text(axis_hardware_toml(PULSE_MS, door_contact=False))
    rtsp_port = free_port()
    env = {"DOORSTATION_MAX_EVENT_STREAMS_PER_ADDRESS": str(args.ws + 8),
           "DOORSTATION_MAX_LONGPOLLS_PER_USER": str(args.longpoll + 8)}
    sniffer = LoopbackSniffer()
    st = Station(work / "state", extra_args=["--rtsp", f"127.0.0.1:{rtsp_port}"], extra_env=env)
    sender = None
    subs: list = []
    try:
        st.start()
        enable_sip(st)
        event_id, _ = open_door_dtmf(st)
        r = st.session().put(f"{st.url}/api/door/bindings", json={"DTMFEventIds": [event_id]}, timeout=10)
        assert r.status_code == 200, r.text
        sender = Agent(work / "sender")
        tail = EventTail(st)
        call_id = st.ok("Call", {"To": sender.uri()})["CallId"]
        wait_call_state(st, call_id, "Active")
        sender.wait_event("media")
        time.sleep(1.0)
        groups = processes(st)

        audio0 = underruns(st)
        usage = quiet_clock = Usage(groups)
        quiet, quiet_end = dtmf_rounds(st, tail, sniffer, sender, args.dtmf)
        quiet_usage = usage.done()
        audio1 = underruns(st)

        tail.poll()
        ws_group = WsSubscribers(st.http_port, args.ws)
        subs.append(ws_group)
        subs += [RtspSubscriber(rtsp_port) for _ in range(args.rtsp)]
        subs += [LongPollSubscriber(st.url, tail.after, VIEWER) for _ in range(args.longpoll)]
        for s in subs:
            s.start()
        assert ws_group.ready.wait(60), "the WebSocket streams did not open"
        time.sleep(2.0)                      # Initialized states delivered, long-polls parked
        usage = busy_clock = Usage(groups)
        busy, busy_end = dtmf_rounds(st, tail, sniffer, sender, args.dtmf)
        time.sleep(1.0)
        busy_usage = usage.done()
        audio2 = underruns(st)
        st.ok("TerminateCall", {"CallId": call_id})
    finally:
        for s in subs:
            s.close()
        if sender is not None:
            sender.stop()
        st.stop()
        sniffer.close()
        shutil.rmtree(work, ignore_errors=True)

    by_kind = {"WebSocket": [d for s in subs if isinstance(s, WsSubscribers) for d in s.delays],
               "RTSP": [d for s in subs if isinstance(s, RtspSubscriber) for d in s.delays],
               "/api/events long-poll": [d for s in subs if isinstance(s, LongPollSubscriber) for d in s.delays]}
    expected = {"WebSocket": args.ws, "RTSP": args.rtsp, "/api/events long-poll": args.longpoll}
    now = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())
    print(f"doorstation event fan-out: {args.ws} WebSocket + {args.rtsp} RTSP + {args.longpoll} long-poll "
          f"subscribers, {args.dtmf} x #1234# per phase, {os.cpu_count()} CPUs, {now}")
    print("DTMF (the last digit's first packet on lo) -> relay Unlocked")
    print(summary("0 subscribers", quiet))
    print(summary(f"{total} subscribers", busy))
    print(f"  ratio ({total} / 0): p50 {pct(busy, 50) / pct(quiet, 50):.2f}  p99 {pct(busy, 99) / pct(quiet, 99):.2f}")
    print("  (from its end packet: 0 subs p50 %.2f p99 %.2f ms, %d subs p50 %.2f p99 %.2f ms; negative: the "
          "door opens before the digit ends)" % (pct(quiet_end, 50), pct(quiet_end, 99), total,
                                                pct(busy_end, 50), pct(busy_end, 99)))
    print("relay Unlocked logged -> received by each subscriber")
    for kind, delays in by_kind.items():
        print(summary(kind, delays) + f"  (missing {expected[kind] * args.dtmf - len(delays)})")
    print("CPU (% of one core over the phase) and RSS (MiB, end of phase)")
    for k in groups:
        (c0, r0), (c1, r1) = quiet_usage[k], busy_usage[k]
        print(f"  {k:<16} 0 subs: {c0:5.1f} % {r0:6.1f} MiB   {total} subs: {c1:5.1f} % {r1:6.1f} MiB")
    if audio0:
        print("audio underruns per second of each phase (doorstation status' counters; simulated sound device)")
        for k in audio0:
            print(f"  {k:<36} 0 subs: {(audio1[k] - audio0[k]) / quiet_clock.wall:7.1f}/s   "
                  f"{total} subs: {(audio2[k] - audio1[k]) / busy_clock.wall:7.1f}/s")
    else:
        print("audio underruns: doorstation status reports no underrun counter")
    return 0


if __name__ == "__main__":
    sys.exit(main())
