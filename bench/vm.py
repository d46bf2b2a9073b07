"""The whole door station on real kernel devices, measured inside the VM lane (gpio-sim lines,
snd-aloop sound card, a real `doorstation run`, baresip with an echo audio device).

    .venv/bin/python bench/vm.py [--presses 20] [--dtmf 20] [--calls 3] [--call-seconds 10]

boots scripts/vmlane, runs this file inside (`--inside`, through tests/vm/guest.sh --run), prints
the guest's report and leaves it (text + JSON) in $DOORSTATION_VMLANE_OUT (default
var/vmlane/bench-out). ALL FIGURES ARE UNDER QEMU TCG EMULATION (no KVM here): expect them 10-50x
slower than on real hardware; compare them with each other, not with a Raspberry Pi.

How each figure is taken (times are CLOCK_REALTIME, comparable across processes):
1. Button edge -> INVITE: from just before the write to gpio-sim's sim_gpioN/pull (the press) to
   the INVITE on the wire (its first TCP segment: at ~1.4 kB it is over pjsip's UDP size limit),
   seen by bench/sip.py's packet socket on `lo` (kernel timestamp).
   It includes the button's 30 ms debounce (the kernel holds the edge until the line is stable).
   Each press is cancelled by a second press (while_calling = "hangup") before the next.
2. RFC 2833 -> relay: baresip sends #1234# in an answered call; the sniffer stamps the last
   digit's telephone-event packets; a thread polls DOOR_LOCK's sim_gpioN/value every 1 ms and
   stamps the change to unlocked. Figure = unlock - the first end packet (E bit) of the last
   digit, and unlock - that digit's first packet (negative: the station acted before the end).
3. Audio bridge callback cost: outside the station (pjsua2 allows one Endpoint per process), the
   same AudioBridge + pjsua2 port on snd-aloop (hw:Loopback,x,2) in this process, clocked by
   pjsua2's null device and connected to a second port playing a tone; each onFrameRequested /
   onFrameReceived is timed (wall time, µs per 20 ms frame).
4. CPU per call: utime+stime (/proc/<pid>/stat) of the supervisor, gunicorn, the launcher and
   baresip over an idle window, and over whole calls (press -> answered -> N s of echoed 1 kHz
   audio -> press to hang up -> Terminated); the echo quality of each call is shown beside it.
5. AEC on/off (`--aec-rounds N`, `--aec-only` to skip 1-4): the rig is restarted with its
   hardware.toml's `[audio.aec] enabled = true` (default tail) or `false`, alternating on/off,
   off/on per round; in each, one call (press -> baresip accepts -> its echo flows) and the
   supervisor's and baresip's utime+stime over `--call-seconds` of talking, with the hub's
   counters (`doorstation status`) read before and after the window as evidence that the
   canceller processed the frames (and that none ran with it off). The host-side figure without
   emulation is bench/call_cpu.py's.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


# ---- host side ------------------------------------------------------------------------------------
ECHO_KEYS = ('freq_hz', 'rms', 'glitches', 'harness_gaps')

def run_on_host(argv: list[str]) -> int:
    out = Path(os.environ.get("DOORSTATION_VMLANE_OUT", REPO / "var" / "vmlane" / "bench-out"))
    out.mkdir(parents=True, exist_ok=True)
    for name in ("bench-vm.txt", "bench-vm.json", "guest.log"):
        (out / name).unlink(missing_ok=True)
    inner = " ".join(["sh tests/vm/guest.sh --run .venv/bin/python bench/vm.py --inside", *argv])
    env = dict(os.environ, DOORSTATION_VMLANE_OUT=str(out))
    env.setdefault("VMLANE_TIMEOUT", "1200")
    t0 = time.monotonic()
    proc = subprocess.run([str(REPO / "scripts" / "vmlane"), "run", inner], cwd=REPO, env=env,
                          capture_output=True, text=True)
    report = out / "bench-vm.txt"
    if report.exists():
        print(report.read_text())
    if proc.returncode != 0:
        log = (out / "guest.log").read_text() if (out / "guest.log").exists() else proc.stdout
        print(f"bench/vm.py: the VM run failed (rc={proc.returncode})\n{log[-4000:]}\n{proc.stderr[-1500:]}",
              file=sys.stderr)
    print(f"(VM boot + bench + power-off: {time.monotonic() - t0:.0f} s; results in {out})")
    return proc.returncode


# ---- guest side -----------------------------------------------------------------------------------
class RelayWatcher:
    """Polls DOOR_LOCK every ~1 ms; keeps (realtime, unlocked) at every change."""

    def __init__(self, lines, max_s: float = 900) -> None:
        self.lines, self.max_s = lines, max_s
        self.changes: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "RelayWatcher":
        self._thread.start()
        return self

    def _run(self) -> None:
        last, end = None, time.monotonic() + self.max_s
        while not self._stop.is_set() and time.monotonic() < end:
            now = self.lines.door_unlocked()
            if now != last:
                self.changes.append((time.time(), now))
                last = now
            time.sleep(0.001)

    def first(self, unlocked: bool, after: float) -> float | None:
        return next((t for t, u in list(self.changes) if u == unlocked and t >= after), None)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def make_sniffer():
    """bench/sip.py's loopback sniffer (kernel timestamps; INVITEs over UDP and TCP)."""
    from bench.sip import LoopbackSniffer
    return LoopbackSniffer()


def state_change(reason):
    return lambda e: e["topic"] == "tnsaxis:Call/StateChange" and e["data"].get("Reason") == reason


def press_to_invite(rig, sniffer, n: int, wait_until) -> list[float]:
    lines, peer, events = rig.lines, rig.peer, rig.events
    out = []
    for _ in range(n):
        since, mark = len(events.seen), peer.mark()
        t0 = time.time()
        lines.press()
        at = wait_until(lambda t0=t0: sniffer.first_invite(peer.sip_port, t0), 60, "the INVITE on the wire",
                        step=0.005)
        lines.release()
        peer.wait_event("CALL_INCOMING", timeout=60, since=mark)
        # Give the station time to see baresip's 180 before cancelling: a hang-up right after the
        # INVITE left baresip ringing for ~6 s here (CANCEL late, and a press meanwhile is lost).
        time.sleep(1.0)
        lines.click()                                   # while_calling = "hangup": CANCEL
        peer.wait_event("CALL_CLOSED", timeout=60, since=mark)
        events.wait_for(state_change("Terminated"), 60, "the call to end", since=since)
        out.append((at - t0) * 1000)
        time.sleep(0.2)
    return out


def answered_call(rig, timeout: float = 60) -> int:
    """Press, let baresip answer, wait until the station reports it Active; returns the events index."""
    since, mark = len(rig.events.seen), rig.peer.mark()
    rig.lines.click()
    rig.peer.wait_event("CALL_INCOMING", timeout=timeout, since=mark)
    assert rig.peer.command("accept")["ok"]
    rig.peer.wait_event("CALL_ESTABLISHED", timeout=timeout, since=mark)
    rig.events.wait_for(state_change("AcceptedByRemote"), timeout, "Active", since=since)
    return mark


def hang_up(rig, mark: int, timeout: float = 60) -> None:
    since = len(rig.events.seen)
    rig.lines.click()                                   # while_active = "hangup"
    rig.peer.wait_event("CALL_CLOSED", timeout=timeout, since=mark)
    rig.events.wait_for(state_change("Terminated"), timeout, "the call to end", since=since)


def dtmf_to_relay(rig, sniffer, n: int, wait_until, last_digit) -> tuple[list[float], list[float]]:
    watcher = RelayWatcher(rig.lines).start()
    from_end, from_start = [], []
    try:
        mark = answered_call(rig)
        time.sleep(1.0)
        for _ in range(n):
            since = len(rig.events.seen)
            t0 = time.time()
            assert rig.peer.command("sndcode", "#1234#")["ok"]
            unlocked = wait_until(lambda t0=t0: watcher.first(True, t0), 60, "DOOR_LOCK unlocked", step=0.005)
            digit = last_digit(sniffer, t0)
            from_end.append((unlocked - digit["end"]) * 1000)
            from_start.append((unlocked - digit["start"]) * 1000)
            wait_until(lambda unlocked=unlocked: watcher.first(False, unlocked), 60, "DOOR_LOCK re-locked", step=0.005)
            rig.events.wait_for(lambda e: e["topic"] == "doorstation:Relay" and e["data"].get("Cause") == "PulseEnded",
                                60, "the relay's PulseEnded", since=since)
            time.sleep(0.3)
        hang_up(rig, mark)
    finally:
        watcher.stop()
    return from_end, from_start


def cpu_per_call(rig, calls: int, seconds: float, analyse) -> dict:
    from bench.sip import cpu_seconds, station_processes
    groups = station_processes(rig.station)
    groups["baresip"] = [rig.peer.proc.pid]

    def snapshot() -> dict[str, float]:
        return {name: sum(cpu_seconds(p) for p in pids) for name, pids in groups.items()}

    c0, w0 = snapshot(), time.monotonic()
    time.sleep(seconds)
    c1, w1 = snapshot(), time.monotonic()
    idle = {name: (c1[name] - c0[name]) / (w1 - w0) for name in groups}        # CPU-s per s
    per_call = []
    for _ in range(calls):
        c0, w0 = snapshot(), time.monotonic()
        mark = answered_call(rig)
        t_active = time.monotonic()
        gaps0 = rig.mic.xruns + rig.speaker.overruns
        time.sleep(seconds)
        echo = analyse(rig.speaker.between(t_active + 1.5, time.monotonic()))
        if echo is not None:     # gaps of our own feed/recorder threads (not the station's)
            echo["harness_gaps"] = rig.mic.xruns + rig.speaker.overruns - gaps0
        hang_up(rig, mark)
        c1, w1 = snapshot(), time.monotonic()
        per_call.append({"wall_s": w1 - w0, "cpu_s": {n: c1[n] - c0[n] for n in groups}, "echo": echo})
        time.sleep(0.5)
    return {"idle_cpu_per_s": idle, "calls": per_call, "active_s": seconds}


def hub_audio(rig) -> dict:
    return (rig.status().get("Hardware") or {}).get("Audio") or {}


def aec_on_off(workdir: Path, rounds: int, seconds: float, analyse) -> list[dict]:
    """(5): one call per station start, the canceller on or off (see the docstring)."""
    from bench.sip import cpu_seconds, station_processes
    from tests.vm.rig import start_rig
    out = []
    for rnd in range(rounds):
        for aec in ((True, False) if rnd % 2 == 0 else (False, True)):
            rig = start_rig(workdir / f"aec-{rnd}-{'on' if aec else 'off'}", pulse_ms=200, answer="manual",
                            sample_lines=False, aec=aec)
            try:
                pids = {"supervisor": station_processes(rig.station)["supervisor"][0], "baresip": rig.peer.proc.pid}
                time.sleep(2.0)
                mark = answered_call(rig)
                time.sleep(1.5)          # past the jitter buffer's start
                # `doorstation status` takes seconds to start under TCG: the counters are read just
                # before and after the CPU window, their rate over the time between those reads
                before = hub_audio(rig)
                c0, w0 = {n: cpu_seconds(p) for n, p in pids.items()}, time.monotonic()
                time.sleep(seconds)
                c1, w1 = {n: cpu_seconds(p) for n, p in pids.items()}, time.monotonic()
                after = hub_audio(rig)
                counted_s = time.monotonic() - w0
                echo = analyse(rig.speaker.between(w0, w1))
                hang_up(rig, mark)
            finally:
                rig.stop()
            e0, e1 = (before.get("echo") or {}).get("frames"), (after.get("echo") or {}).get("frames")
            out.append({"round": rnd, "aec": aec, "wall_s": w1 - w0, "counted_s": counted_s,
                        "pct": {n: 100 * (c1[n] - c0[n]) / (w1 - w0) for n in pids},
                        "frames_to_call": after.get("frames_out", 0) - before.get("frames_out", 0),
                        "echo_frames": None if e0 is None or e1 is None else e1 - e0,
                        "echo_state": after.get("echo"), "echo_quality": echo,
                        "mic_underruns": (after.get("mic") or {}).get("underruns", 0)
                        - (before.get("mic") or {}).get("underruns", 0)})
    return out


def report_aec(say, runs: list[dict], seconds: float) -> None:
    say(f"\n(5) CPU in a call, echo canceller on vs off (station restarted for each), {seconds:.0f} s of "
        "talking per call, % of one vCPU (utime+stime)")
    for r in runs:
        ev = (f"canceller {r['echo_frames']} frames ({r['echo_frames'] / r['counted_s']:.1f}/s)"
              if r["echo_frames"] is not None else f"no canceller ({(r['echo_state'] or {}).get('off')})")
        q = r["echo_quality"]
        say(f"    round {r['round']} AEC {'on ' if r['aec'] else 'off'}: supervisor {r['pct']['supervisor']:5.1f} %, "
            f"baresip {r['pct']['baresip']:5.1f} %; hub {r['frames_to_call']} frames to the call in "
            f"{r['counted_s']:.1f} s, {ev}, "
            f"mic underruns {r['mic_underruns']}; "
            f"echo back (Hz, RMS, glitch periods) {q and (q['freq_hz'], q['rms'], q['glitches'])}")
    by = {aec: [r for r in runs if r["aec"] == aec] for aec in (True, False)}
    if by[True] and by[False]:
        sup = {aec: statistics.mean(r["pct"]["supervisor"] for r in rs) for aec, rs in by.items()}
        bob = {aec: statistics.mean(r["pct"]["baresip"] for r in rs) for aec, rs in by.items()}
        say(f"    mean supervisor on {sup[True]:.1f} % / off {sup[False]:.1f} % "
            f"(on - off {sup[True] - sup[False]:+.1f}, on/off {sup[True] / sup[False]:.2f}x); "
            f"baresip {bob[True]:.1f} / {bob[False]:.1f} %; "
            f"supervisor/baresip {sup[True] / bob[True]:.1f}x on, {sup[False] / bob[False]:.1f}x off")
    bad = [r for r in runs if (r["aec"] and (r["echo_frames"] or 0) < 0.95 * r["frames_to_call"])
           or (not r["aec"] and r["echo_frames"] is not None)]
    say("    evidence: " + ("the canceller ran on every frame to the call in every AEC-on call, in no AEC-off call"
                           if not bad
                           else f"CHECK FAILED for rounds {[(r['round'], r['aec']) for r in bad]}"))


def callback_cost(seconds: float = 5.0) -> dict:
    """The station's audio bridge + pjsua2 port on snd-aloop, in this process (see the docstring)."""
    import gc

    import pjsua2 as pj

    import hw.audio as audio
    from hw.audio import AlsaPcm, AudioBridge
    from hw.audio_sim import SimPcm
    from tests.vm.rig import RATE
    cls = audio._port_class()
    samples: list[tuple[object, str, int]] = []       # (bridge, callback, ns)

    def timed(name):
        original = getattr(cls, name)

        def wrapper(self, frame):
            t = time.perf_counter_ns()
            original(self, frame)
            samples.append((self.bridge, name, time.perf_counter_ns() - t))
        return wrapper
    for name in ("onFrameRequested", "onFrameReceived"):
        setattr(cls, name, timed(name))
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = False
    cfg.logConfig.level = cfg.logConfig.consoleLevel = 0
    ep.libInit(cfg)
    ep.libStart()
    ep.audDevManager().setNullDev()
    door = AudioBridge(AlsaPcm("hw:Loopback,1,2", "hw:Loopback,0,2", RATE), RATE)
    far = AudioBridge(SimPcm(RATE, "tone:1000"), RATE)
    try:
        door.open_port(ep, "door")
        door.attach(far.open_port(ep, "far"))
        end = time.monotonic() + seconds
        for _ in range(int(seconds * 200)):
            if time.monotonic() >= end:
                break
            ep.libHandleEvents(10)
        door.detach()
        stats = door.stats()
    finally:
        far.close()
        door.close()
        gc.collect()
        ep.libDestroy(pj.PJSUA_DESTROY_NO_RX_MSG)
    # only the door's port (on ALSA) counts; the far port (simulated device) runs the same class
    us = {name: [ns / 1000 for b, n, ns in samples if b is door and n == name]
          for name in ("onFrameRequested", "onFrameReceived")}
    return {"us": us, "fast_path": audio.fast_path_ok(), "stats": stats, "seconds": seconds}


def spread_us(xs: list[float]) -> str:
    xs = sorted(xs)
    def p(q: float) -> float:           # nearest rank
        return xs[min(len(xs) - 1, max(0, round(q * len(xs)) - 1))]
    return (f"min {xs[0]:8.1f}  p50 {p(0.5):8.1f}  p90 {p(0.9):8.1f}  p99 {p(0.99):8.1f}  max {xs[-1]:8.1f}  "
            f"µs (n={len(xs)})")


def run_inside(args) -> int:
    from bench.sip import last_digit, spread
    from tests.sip_peers import wait_until
    from tests.vm.rig import analyse, start_rig
    out = Path(os.environ.get("VMLANE_OUT", "/tmp"))
    lines_out: list[str] = []

    def say(text: str = "") -> None:
        lines_out.append(text)
        print(text, flush=True)
        (out / "bench-vm.txt").write_text("\n".join(lines_out) + "\n")

    say(f"bench/vm.py inside the VM lane (qemu TCG, {os.cpu_count()} vCPUs, kernel {os.uname().release}) — "
        "all figures are under emulation")
    results: dict = {}
    if args.aec_only:
        runs = aec_on_off(Path("/tmp/bench-vm-aec"), args.aec_rounds, args.call_seconds, analyse)
        results["aec_on_off"] = runs
        (out / "bench-vm.json").write_text(json.dumps(results, indent=1))
        report_aec(say, runs, args.call_seconds)
        return 0
    sniffer = make_sniffer()
    rig = start_rig(Path("/tmp/bench-vm"), pulse_ms=200, answer="manual", sample_lines=False)
    try:
        inv = press_to_invite(rig, sniffer, args.presses, wait_until)
        results["press_to_invite_ms"] = inv
        say(f"\n(1) button edge (gpio-sim pull) -> INVITE on the wire, incl. 30 ms debounce\n    {spread(inv)}")
        end, start = dtmf_to_relay(rig, sniffer, args.dtmf, wait_until, last_digit)
        results["dtmf_to_relay_ms"] = {"from_end_packet": end, "from_first_packet": start}
        say("\n(2) RFC 2833 #1234# from baresip -> DOOR_LOCK unlocked (gpio-sim value, 1 ms polling)")
        say(f"    from the last digit's end packet    {spread(end)}")
        say(f"    from the last digit's first packet  {spread(start)}")
        cpu = cpu_per_call(rig, args.calls, args.call_seconds, analyse)
        results["cpu"] = cpu
        say(f"\n(4) CPU (utime+stime), {args.calls} calls of {args.call_seconds:.0f} s echoed audio each "
            "(press -> answer -> audio -> press -> Terminated)")
        say(f"    {'process':<11} {'idle %CPU':>9} {'CPU s/call':>11} {'%CPU in call':>13}")
        for name in cpu["idle_cpu_per_s"]:
            per = [c["cpu_s"][name] for c in cpu["calls"]]
            wall = statistics.mean(c["wall_s"] for c in cpu["calls"])
            say(f"    {name:<11} {100 * cpu['idle_cpu_per_s'][name]:9.1f} {statistics.mean(per):11.2f} "
                f"{100 * statistics.mean(per) / wall:13.1f}")
        say(f"    (mean call wall time {statistics.mean(c['wall_s'] for c in cpu['calls']):.1f} s; "
            "echo per call: "
            f"{[c['echo'] and tuple(c['echo'][k] for k in ECHO_KEYS) for c in cpu['calls']]}"
            " = (Hz, RMS, glitch periods, xruns of the bench's own feed/recorder))")
    finally:
        rig.stop()
        sniffer.close()
    cost = callback_cost(args.callback_seconds)
    results["callback_cost"] = cost
    say(f"\n(3) audio bridge port callbacks on snd-aloop, pjsua2 null-device clock "
        f"(fast frame path: {cost['fast_path']}), wall time per 20 ms frame")
    for name, xs in cost["us"].items():
        if xs:
            say(f"    {name:<17} {spread_us(xs)}")
    say(f"    bridge counters: mic underruns {cost['stats']['mic']['underruns']}, overruns "
        f"{cost['stats']['mic']['overruns']}; speaker overruns {cost['stats']['speaker']['overruns']}")
    if args.aec_rounds:
        runs = aec_on_off(Path("/tmp/bench-vm-aec"), args.aec_rounds, args.call_seconds, analyse)
        results["aec_on_off"] = runs
        report_aec(say, runs, args.call_seconds)
    (out / "bench-vm.json").write_text(json.dumps(results, indent=1))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inside", action="store_true", help="(used by the host side) run in the guest")
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument("--dtmf", type=int, default=20)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--call-seconds", type=float, default=10.0)
    parser.add_argument("--callback-seconds", type=float, default=5.0)
    parser.add_argument("--aec-rounds", type=int, default=0,
                        help="(5) AEC on/off rounds, one call each way per round (0: skip)")
    parser.add_argument("--aec-only", action="store_true", help="only (5), with --aec-rounds (default 2)")
    args = parser.parse_args()
    if args.aec_only and not args.aec_rounds:
        args.aec_rounds = 2
    if args.inside:
        return run_inside(args)
    passed = [a for a in sys.argv[1:] if a != "--inside"]
    return run_on_host(passed)


if __name__ == "__main__":
    sys.exit(main())
