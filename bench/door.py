"""Door re-lock timing under load, against the same station idle in the same run.

    .venv/bin/python bench/door.py [--repeat 10] [--pulse-ms 500]

For each load — none (the baseline), SIP rebinds of a just-used port, an INVITE flood, 50 control
socket long-polls, a CPU hog on every core — the door is opened `--repeat` times through the control
socket and the station's own figure is read from the relay's Locked event: how long the line was
unlocked (UnlockedMs, taken on the door guard's thread), i.e. how late the re-lock was; and how long
after the re-lock the supervisor's loop logged the event. A real `doorstation run` on loopback with
simulated GPIO; baresip (Debian) answers the call whose BYE keeps the SIP port busy.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import door_load  # noqa: E402
from tests.harness import free_sip_port  # noqa: E402
from tests.sip_peers import Baresip  # noqa: E402
from tests.stack_sip import enable_sip, hardware_toml, start_station, wait_call_state  # noqa: E402


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]


@contextmanager
def rebinding(st, bob: Baresip):
    """Each opening: a call that the station hangs up (its BYE transaction holds the port), then
    SIPPort moved away and back."""
    other = free_sip_port()

    def during() -> None:
        call_id = st.ok("Call", {"To": bob.aor})["CallId"]
        wait_call_state(st, call_id, "Active")
        st.ok("TerminateCall", {"CallId": call_id})
        for port in (other, st.sip_port):
            st.ok("SetSIPConfiguration", {"SIPConfiguration": {"SIPPort": port}})
    yield during


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--pulse-ms", type=int, default=500)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="door-bench-"))
    st = start_station(work / "state", hardware_toml(pulse_ms=args.pulse_ms))
    bob = Baresip(work / "bob").start()
    try:
        st.sip_port = enable_sip(st, allow_incoming=True)
        loads = {
            "none (baseline)": lambda: nullcontext(None),
            "SIP rebinds": lambda: rebinding(st, bob),
            "INVITE flood": lambda: door_load.invite_flood(st.sip_port, calls=100_000, seconds=60),
            "50 long-polls": lambda: door_load.long_polls(st, 50, seconds=120),
            "CPU hog (4 procs)": lambda: door_load.cpu_hog(4, seconds=120),
        }
        rows = {}
        for name, make in loads.items():
            late, logged = [], []
            with make() as load:
                during = load if callable(load) else None
                for _ in range(args.repeat):
                    r = door_load.open_door_and_measure(st, args.pulse_ms, during=during)
                    late.append(r["late_ms"])
                    logged.append(r["event_delay_ms"])
                    time.sleep(0.2)
            rows[name] = (late, logged)
        print(f"\nDoor re-lock lateness (UnlockedMs - {args.pulse_ms} ms pulse), n={args.repeat} per load, "
              f"and the delay until the loop logged the Locked event")
        print(f"{'load':<20} {'late p50':>9} {'p90':>7} {'max':>7}   {'logged p50':>10} {'max':>8}")
        base = statistics.median(rows["none (baseline)"][0])
        for name, (late, logged) in rows.items():
            print(f"{name:<20} {statistics.median(late):9.1f} {pct(late, 0.9):7.1f} {max(late):7.1f}   "
                  f"{statistics.median(logged):10.1f} {max(logged):8.1f}")
        worst = max(max(late) for late, _ in rows.values())
        print(f"worst re-lock {worst:.1f} ms late (goal <= 50); baseline p50 {base:.1f} ms")
        return 0
    finally:
        bob.stop()
        st.stop()


if __name__ == "__main__":
    sys.exit(main())
