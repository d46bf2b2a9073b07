"""Memory of the SIP engine alone over many calls: is there a leak in pjsua2 or the engine?

    .venv/bin/python bench/engine_memory.py [--calls 800]

The SIP engine (daemon/sip/engine.py, pjsua2) runs in this process with no store, no HTTP and no
event log; it calls baresip on loopback and hangs up, `--calls` times, 8 calls a second at most
(the engine's limit). VmRSS of this process is printed every 100 calls, and baresip's as the
baseline over the same calls. bench/sip.py measures the whole supervisor (SQLite included).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daemon.sip.config import AccountConfig, EngineConfig  # noqa: E402
from daemon.sip.engine import SipEngine  # noqa: E402
from tests.sip_peers import Baresip, free_port, rtp_base, wait_until  # noqa: E402


def rss_mib(pid: int) -> float:
    """VmRSS; defined here, not imported from bench/sip.py, whose imports would add to this
    process's own footprint."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=800)
    args = parser.parse_args()
    events: list = []
    engine = SipEngine(events.append, logging.getLogger("bench"), pj_log_level=1)
    engine.start()
    engine.apply(EngineConfig(sip_enabled=True, sip_port=free_port(), sip_tls_port=free_port(),
                              bind_address="127.0.0.1", rtp_start_port=rtp_base(),
                              accounts=(AccountConfig(id="p", user_id="door", is_default=True),)))
    with tempfile.TemporaryDirectory() as tmp:
        bob = Baresip(Path(tmp) / "bob").start()
        try:
            before, bob_before = rss_mib(os.getpid()), rss_mib(bob.proc.pid)
            series, started = [], time.monotonic()
            for i in range(1, args.calls + 1):
                call_id = engine.make_call(None, bob.aor)
                wait_until(lambda call_id=call_id: (s := engine.call_status(call_id)) and s["CallState"] == "Active",
                           10, "Active")
                engine.hangup(call_id)
                wait_until(lambda call_id=call_id: (s := engine.call_status(call_id))
                           and s["CallState"] == "Terminated", 10, "Terminated")
                time.sleep(0.13)
                events.clear()                      # the supervisor writes these to SQLite; here: dropped
                with bob._cond:                     # the peer client's own record of events
                    bob.events.clear()
                    bob.responses.clear()
                if i % 100 == 0:
                    series.append(rss_mib(os.getpid()))
            took = time.monotonic() - started
            bob_after = rss_mib(bob.proc.pid)
        finally:
            bob.stop()
            engine.stop()
    print(f"SIP engine memory, {args.calls} calls to baresip in {took:.0f} s, VmRSS MiB")
    print(f"  engine process before the calls   {before:.1f}")
    print(f"  every 100 calls                   {', '.join(f'{v:.1f}' for v in series)}")
    if len(series) >= 2:
        print(f"  growth from call 100 to {args.calls}: {series[-1] - series[0]:+.2f} MiB "
              f"({(series[-1] - series[0]) * 1024 / (args.calls - 100):+.2f} KiB/call)")
    print(f"  baseline baresip over the same calls: {bob_before:.1f} -> {bob_after:.1f} "
          f"({bob_after - bob_before:+.2f} MiB)")


if __name__ == "__main__":
    main()
