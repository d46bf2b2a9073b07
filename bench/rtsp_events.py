"""Event delivery over the RTSP event stream next to the /api/events long-poll, same run, and what
subscribers cost the door: the control socket's door-side command latency with 0 and with N
RTSP subscribers.

    .venv/bin/python bench/rtsp_events.py [--subscribers 20] [--events 100]

A real `doorstation run --rtsp` (simulated GPIO) on loopback. Events are an extra output toggled
through the control socket (`device.output.set`), so no pulse timer paces them; each event's
latency is from just before the command to its arrival at a subscriber (RTP datagram parsed, or
the long-poll answer). Prints p50/p99/max per transport and the RTSP/long-poll ratio, and the door-side round trips
(`status` on the control socket, 3 after each event) under the same event load without any
subscriber and with them.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from requests.auth import HTTPDigestAuth

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daemon.control.client import ControlClient  # noqa: E402
from daemon.supervisor import control_socket_path  # noqa: E402
from tests.harness import VIEWER, Station, axis_hardware_toml, free_port  # noqa: E402
from tests.test_rtsp_events import RawRtsp  # noqa: E402

HARDWARE = axis_hardware_toml(3000, door_contact=False)
LIGHT_PORT = 2          # call button 0, door relay 1, then the extra output


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def summary(name: str, ms: list[float]) -> str:
    return (f"{name:<26} n={len(ms):<5} p50={pct(ms, 50):7.2f} ms  p99={pct(ms, 99):7.2f} ms  "
            f"max={max(ms):7.2f} ms")


class RtspListener(threading.Thread):
    def __init__(self, client: RawRtsp, expected: int):
        super().__init__(daemon=True)
        self.client, self.expected, self.arrivals = client, expected, []

    def run(self) -> None:
        self.client.rtp.settimeout(10)
        while len(self.arrivals) < self.expected:
            try:
                doc = self.client.rtp.recv(65536)[12:].decode()
            except OSError:
                return
            if 'PropertyOperation="Changed"' in doc and f'Name="RelayToken" Value="{LIGHT_PORT}"' in doc:
                self.arrivals.append(time.perf_counter())


class LongPollListener(threading.Thread):
    def __init__(self, url: str, after: int, expected: int):
        super().__init__(daemon=True)
        self.url, self.after, self.expected, self.arrivals = url, after, expected, []
        self.session = requests.Session()
        self.session.auth = HTTPDigestAuth(*VIEWER)

    def run(self) -> None:
        deadline = time.monotonic() + 120
        while len(self.arrivals) < self.expected and time.monotonic() < deadline:
            r = self.session.get(f"{self.url}/api/events", params={"after": self.after, "wait": 10}, timeout=20)
            now = time.perf_counter()
            body = r.json()
            self.after = body["next"]
            self.arrivals += [now for e in body["events"] if e["topic"] == "doorstation:Output"]


def door_latency(control: ControlClient, n: int) -> list[float]:
    """Round trips of a door-side command (`status`: the supervisor's loop, the intercom, SQLite)."""
    out = []
    for _ in range(n):
        t = time.perf_counter()
        control.request("status")
        out.append((time.perf_counter() - t) * 1000)
    return out


def drive(control: ControlClient, events: int) -> tuple[list[float], list[float]]:
    """Toggle the light `events` times; after each, 3 door-side round trips. (send times, door ms)"""
    sent, door = [], []
    for i in range(events):
        sent.append(time.perf_counter())
        control.request("device.output.set", {"Id": LIGHT_PORT, "User": "bench",
                                              "Sequence": [{"Active": i % 2 == 0, "Ms": 0}]})
        door += door_latency(control, 3)
        time.sleep(0.02)
    return sent, door


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=20)
    parser.add_argument("--events", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        state.mkdir()
        (state / "hardware.toml").write_text(HARDWARE)
        rtsp_port = free_port()
        station = Station(state, extra_args=["--rtsp", f"127.0.0.1:{rtsp_port}"]).start()
        try:
            control = ControlClient(str(control_socket_path(state)), timeout=10)
            _, quiet = drive(control, args.events)          # same load, no subscriber at all
            clients = [RawRtsp(rtsp_port, VIEWER).play() for _ in range(args.subscribers)]
            for c in clients:
                c.documents(quiet=0.2)        # drain the Initialized ones
            rtsp = [RtspListener(c, args.events) for c in clients]
            after = int(control.request("events.end", {})["next"])
            poll = LongPollListener(station.url, after, args.events)
            for t in rtsp + [poll]:
                t.start()
            time.sleep(0.5)
            sent, busy = drive(control, args.events)
            for t in rtsp + [poll]:
                t.join(30)
            rtsp_ms = [(a - s) * 1000 for t in rtsp for a, s in zip(t.arrivals, sent, strict=False)]
            poll_ms = [(a - s) * 1000 for a, s in zip(poll.arrivals, sent, strict=False)]
            lost = sum(args.events - len(t.arrivals) for t in rtsp)
            for c in clients:
                c.close()
        finally:
            station.stop()
    print(f"doorstation RTSP events: {args.subscribers} RTSP subscribers + 1 long-poll, {args.events} events")
    print(summary("RTSP (all subscribers)", rtsp_ms))
    print(summary("/api/events long-poll", poll_ms))
    print(f"RTSP / long-poll p50 ratio: {pct(rtsp_ms, 50) / pct(poll_ms, 50):.2f}   RTSP datagrams lost: {lost}")
    print(summary("door command, 0 subs", quiet))
    print(summary(f"door command, {args.subscribers} subs", busy))
    print(f"door command p99 ratio (subscribers / none): {pct(busy, 99) / pct(quiet, 99):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
