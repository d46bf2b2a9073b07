"""Loads that must not delay the door's re-lock, and the measurement of that re-lock, for
tests/test_door_guard.py and bench/door.py. Every load is bounded in time and stops by itself.

The measurement is the station's own: the relay's "Locked" event carries `UnlockedMs`, the time
between the two writes of the line taken on the door guard's thread (hw/gpio.py Relay). The door is
opened through the control socket (as `doorstation door open` does), so a busy HTTP front end does
not change what is measured here.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from daemon.control.client import ControlClient
from tests.harness import Station
from tests.raw_sip import RawCaller

TOPIC_RELAY = "doorstation:Relay"


def control(st: Station, timeout: float = 40.0) -> ControlClient:
    return ControlClient(str(st.state_dir / "run" / "control.sock"), timeout=timeout)


def _newest(client: ControlClient) -> int:
    # the log's end in one query: paging to it never ends while a flood of calls logs events
    return int(client.request("events.end", {})["next"])


def open_door_and_measure(st: Station, pulse_ms: int, timeout: float = 30.0,
                          during: Callable[[], object] | None = None) -> dict:
    """Open the door, run `during()` (if given), wait for the re-lock event; returns
    {"unlocked_ms", "late_ms", "event_delay_ms"}:
    how long the line was unlocked, by how much it exceeded the pulse, and how long after the re-lock
    the loop logged it."""
    client = control(st)
    try:
        after = _newest(client)
        client.request("door.open", {"user": "door-load"})
        if during is not None:
            during()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # pages of 1000: a flood of calls logs events faster than pages of 100 can follow
            page = client.request("events.wait", {"after": after, "wait": 2, "limit": 1000})
            after = page["next"]
            for e in page["events"]:
                d = e["data"]
                if e["topic"] == TOPIC_RELAY and d.get("Cause") == "PulseEnded":
                    return {"unlocked_ms": d["UnlockedMs"], "late_ms": d["UnlockedMs"] - pulse_ms,
                            "event_delay_ms": (e["time"] - d["At"]) * 1000}
        raise AssertionError(f"no PulseEnded event within {timeout} s")
    finally:
        client.close()


# -- loads ---------------------------------------------------------------------------------------

@contextmanager
def cpu_hog(processes: int = 2, seconds: float = 30.0) -> Iterator[None]:
    """Busy loops on every core (each ends by itself after `seconds`)."""
    code = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(processes)]
    try:
        time.sleep(0.3)
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait(5)


@contextmanager
def long_polls(st: Station, n: int = 50, seconds: float = 30.0) -> Iterator[list[int]]:
    """n clients of the control socket each in an `events.wait` long-poll, re-polling until the end;
    yields a one-item list counting the answers they got."""
    stop = threading.Event()
    answers = [0]

    def poller() -> None:
        client = control(st)
        end = time.monotonic() + seconds
        try:
            after = _newest(client)
            while not stop.is_set() and time.monotonic() < end:
                page = client.request("events.wait", {"after": after, "wait": 5, "limit": 100})
                after = page["next"]
                answers[0] += 1
        except Exception:
            pass                       # the station stopping ends the load
        finally:
            client.close()
    threads = [threading.Thread(target=poller, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        yield answers
    finally:
        stop.set()
        for t in threads:
            t.join(8)


@contextmanager
def invite_flood(sip_port: int, calls: int = 400, seconds: float = 30.0) -> Iterator[dict]:
    """A raw UDP peer making INVITE/200/ACK/BYE cycles four at a time; yields the final codes."""
    codes: dict[int, int] = {}
    stop = threading.Event()

    def flood() -> None:
        caller = RawCaller(sip_port)
        deadline = time.monotonic() + seconds
        try:
            for _ in range(calls // 4):
                if stop.is_set() or time.monotonic() > deadline:
                    break
                for code, k in caller.batch(4, deadline).items():
                    codes[code] = codes.get(code, 0) + k
        finally:
            caller.close()
    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    try:
        time.sleep(0.3)
        yield codes
    finally:
        stop.set()
        thread.join(seconds + 5)


def sample_latency(request: Callable[[], object], seconds: float, every: float = 0.05) -> list[float]:
    """Milliseconds each `request()` took, issued every `every` s for `seconds` (bounded count)."""
    out: list[float] = []
    end = time.monotonic() + seconds
    for _ in range(int(seconds / every) + 1):
        if time.monotonic() >= end:
            break
        t0 = time.perf_counter()
        request()
        out.append((time.perf_counter() - t0) * 1000)
        time.sleep(every)
    return out


def summary(values: list[float]) -> str:
    if not values:
        return "n=0"
    v = sorted(values)
    return (f"n={len(v)} p50={statistics.median(v):.1f} p90={v[int(0.9 * (len(v) - 1))]:.1f} "
            f"max={v[-1]:.1f}")
