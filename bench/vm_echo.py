"""Echo cancellation on a real echo path, measured in the VM lane (issue 12, "measured, not assumed").

    .venv/bin/python bench/vm_echo.py [--delays 20,50,100,150] [--gain-db -6] [--rate 8000]
                                      [--live [--tail-ms 200]] [--far-alone 10] [--double-talk 4]
    .venv/bin/python bench/vm_echo.py --analyse var/vmlane/bench-echo/echo     (figures again)

boots scripts/vmlane and runs itself inside (`--inside`): the station's audio hub, built from a
hardware.toml [audio] table as the supervisor builds it (ALSA on snd-aloop), clocked every 20 ms,
and a "room" (tests/vm/echo_room.py, its own process) that plays the hub's speaker back into its
microphone after `delay` ms at `gain` dB with three reflections, plus a visitor's voice (near
end). The clock plays the far end's speech to the speaker and records, per tick, the speaker frame
and the microphone frame the hub gives the call. Per delay: the near end alone (2 s), the far end
alone (`--far-alone` s), double talk (`--double-talk` s). Speech: espeak-ng (no downloads).

Each delay is recorded with the canceller OFF; the host then runs the hub's canceller
(hw.echo.EchoCanceller, the shipped settings: -15 dB noise suppression) on exactly those frames,
paired as AudioBridge pairs them ("replay", tail 200 ms = the default and 500 ms = the maximum):
the echo path is the VM's real one (snd-aloop, ALSA buffers, the hub's FIFOs and their trims,
the room's own xruns), and the canceller's CPU cannot disturb the clock under emulation. Why:
with the canceller on live, the hub's callbacks took 44-93 % of a vCPU under qemu TCG on a host
shared with another VM, the clock fell behind and the FIFO levels (part of the echo path) jumped
under the canceller: ERLE 1-5 dB in those runs, 39.5 dB in the one run that kept its clock.
`--live` adds those live runs (canceller on, --tail-ms) for comparison. The tracks go to
$DOORSTATION_VMLANE_OUT/echo (default var/vmlane/bench-echo/echo); the host prints:

- ERLE after convergence (dB, far-end-only windows) and the convergence time from the far end's onset;
- near end kept: the output's projection on the clean near-end track, alone and in double talk (dB);
- the hub's CPU (live runs: its two callbacks, thread time per wall time, % of one vCPU UNDER
  QEMU TCG: compare on with off only);
- xruns: the room's own (capture overruns / playback underruns), the hub's FIFOs (mic
  underruns/overruns, speaker underruns/overruns), the clock's ticks more than a frame late, and
  "disrupted": the xruns and FIFO trims after the far end's start (each moves the echo path).

The method of the figures is tests/echo_figures.py's docstring. The delay is what the room adds;
the hub's own buffering (speaker FIFO and ALSA buffer, the room's queue and capture period, the
microphone FIFO) comes on top: `lag` is the output's lag behind the room's microphone track.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def analyse(echo_dir: Path, replay_tails: tuple[int, ...] = (200, 500)) -> list[dict]:
    """Figures per recorded run: as recorded (live, with the canceller on or off), and for runs
    recorded with it off, the hub's canceller replayed on the same frames with each tail length."""
    from hw.echo import AecConfig
    from tests.echo_figures import figures
    from tests.vm.echo_run import approx_lag, output_8k, replay
    rows = []
    for run_json in sorted(echo_dir.glob("*/run.json")):
        run = json.loads(run_json.read_text())
        d = run_json.parent
        hub = run.get("hub") or {}
        base = {"delay_ms": run["delay_ms"], "cpu_pct": run["hub_cpu_pct"], "late_ticks": run["late_ticks"],
                "ticks": run["ticks"], "disruptions": (run.get("disruptions") or {}).get("total"),
                "hub_xruns": {"mic_underruns": (hub.get("mic") or {}).get("underruns"),
                              "mic_overruns": (hub.get("mic") or {}).get("overruns"),
                              "speaker_underruns": (hub.get("speaker") or {}).get("underruns"),
                              "speaker_overruns": (hub.get("speaker") or {}).get("overruns"),
                              "device": hub.get("device")}}
        if not ((d / "room.json").exists() and run["ticks"]):
            rows.append({**base, "mode": "live " + ("on" if run["aec"] else "off"), "aec": run["aec"],
                         "error": f"no tracks (room rc {run['room_rc']}: {run['room_stderr'][-300:]})"})
            continue
        lag = approx_lag(run)
        rows.append({**base, "mode": f"live {'on' if run['aec'] else 'off'}", "aec": run["aec"],
                     "tail_ms": run["tail_ms"] if run["aec"] else None,
                     **figures(d, output_8k(d, run["rate"]), lag)})
        if not run["aec"] and (d / "reference.raw").exists():
            for tail in replay_tails:
                pcm = replay(d, run["rate"], AecConfig(tail_ms=tail))
                rows.append({**base, "mode": f"replay {tail}", "aec": True, "tail_ms": tail, "cpu_pct": None,
                             **figures(d, output_8k(d, run["rate"], pcm), lag)})
    order = {"replay": 0, "live on": 1, "live off": 2}
    rows.sort(key=lambda r: (order.get(r["mode"].rsplit(" ", 1)[0] if r["mode"].startswith("replay") else r["mode"], 3),
                             r.get("tail_ms") or 0, r["delay_ms"]))
    return rows


def fmt(v, spec: str = "5.1f") -> str:
    return "  -  " if v is None else format(v, spec)


def table(rows: list[dict]) -> str:
    lines = [f"{'canceller':<12} {'delay':>5} {'ERLE dB':>8} {'conv s':>7} {'near alone':>10} {'near DT':>8} "
             f"{'lag ms':>7} {'hub %CPU':>8}  room xruns (cap/play)  hub mic u/o  spk u/o  late ticks  disrupted"]
    for r in rows:
        room = r.get("room") or {}
        hx = r["hub_xruns"]
        lines.append(
            f"{r['mode']:<12} {r['delay_ms']:>5} {fmt(r.get('erle_db')):>8} "
            f"{fmt(r.get('convergence_s')):>7} {fmt(r.get('near_solo_db')):>10} {fmt(r.get('near_double_talk_db')):>8} "
            f"{fmt((r.get('lag_ms') or {}).get('double_talk'), '7.0f'):>7} {fmt(r.get('cpu_pct')):>8}  "
            f"{room.get('capture_overruns', '-')}/{room.get('playback_underruns', '-'):<19} "
            f"{hx['mic_underruns']}/{hx['mic_overruns']:<8} {hx['speaker_underruns']}/{hx['speaker_overruns']:<6} "
            f"{r['late_ticks']}/{r['ticks']:<6} {fmt(r.get('disruptions'), 'd')}"
            + (f"  ERROR {r['error']}" if r.get("error") else ""))
    off = {r["delay_ms"]: r for r in rows if r["mode"] == "live off"}
    for mode in sorted({r["mode"] for r in rows if r["aec"]}):
        on = {r["delay_ms"]: r for r in rows if r["mode"] == mode}
        both = [d for d in on if d in off and on[d].get("erle_db") is not None and off[d].get("erle_db") is not None]
        if both:
            lines.append(f"ERLE {mode} - off (dB, same run): " + ", ".join(
                f"{d} ms: {on[d]['erle_db'] - off[d]['erle_db']:+.1f}" for d in sorted(both)))
    live_on = [r["cpu_pct"] for r in rows if r["mode"] == "live on"]
    live_off = [r["cpu_pct"] for r in rows if r["mode"] == "live off"]
    if live_on and live_off and sum(live_off):
        m_on, m_off = sum(live_on) / len(live_on), sum(live_off) / len(live_off)
        lines.append(f"hub CPU (its callbacks, live), mean: AEC on {m_on:.1f} %, off {m_off:.1f} % "
                     f"(x{m_on / m_off:.1f})")
    return "\n".join(lines)


def run_on_host(argv: list[str]) -> int:
    out = Path(os.environ.get("DOORSTATION_VMLANE_OUT", REPO / "var" / "vmlane" / "bench-echo"))
    out.mkdir(parents=True, exist_ok=True)
    for name in ("guest.log", "bench-vm-echo.txt", "bench-vm-echo.json"):
        (out / name).unlink(missing_ok=True)
    subprocess.run(["rm", "-rf", str(out / "echo")], check=False)
    inner = " ".join(["sh tests/vm/guest.sh --run .venv/bin/python bench/vm_echo.py --inside", *argv])
    env = dict(os.environ, DOORSTATION_VMLANE_OUT=str(out))
    env.setdefault("VMLANE_TIMEOUT", "1500")
    t0 = time.monotonic()
    proc = subprocess.run([str(REPO / "scripts" / "vmlane"), "run", inner], cwd=REPO, env=env,
                          capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        log = (out / "guest.log").read_text() if (out / "guest.log").exists() else proc.stdout
        print(f"bench/vm_echo.py: the VM run failed (rc={proc.returncode})\n{log[-4000:]}\n{proc.stderr[-1500:]}",
              file=sys.stderr)
    rows = analyse(out / "echo")
    text = (f"bench/vm_echo.py {' '.join(argv)}: echo path in the VM lane (qemu TCG; snd-aloop room)\n"
            + table(rows) + f"\n(VM boot + runs + power-off: {wall:.0f} s; tracks in {out / 'echo'})")
    print(text)
    (out / "bench-vm-echo.txt").write_text(text + "\n")
    (out / "bench-vm-echo.json").write_text(json.dumps(rows, indent=1))
    return proc.returncode or (0 if rows else 1)


def run_inside(args) -> int:
    from tests.vm.echo_run import run_once, speech
    out = Path(os.environ.get("VMLANE_OUT", "/tmp")) / "echo"
    work = Path("/tmp/bench-vm-echo")
    work.mkdir(parents=True, exist_ok=True)
    far, near = speech(work, args.rate)
    near_raw = work / "near.raw"
    near_raw.write_bytes(near)
    delays = [int(d) for d in args.delays.split(",")]
    for aec in ((True, False) if args.live else (False,)):
        for d in delays:
            name = f"{'on' if aec else 'off'}-{d:03d}"
            run = run_once(out / name, far, near_raw, d, aec, args.tail_ms, args.gain_db,
                           far_alone_s=args.far_alone, double_talk_s=args.double_talk, rate=args.rate)
            print(f"{name}: {json.dumps({k: run[k] for k in ('room_rc', 'ticks', 'late_ticks', 'hub_cpu_pct')})}",
                  flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inside", action="store_true", help="(used by the host side) run in the guest")
    parser.add_argument("--analyse", type=Path, help="only analyse the tracks of an earlier run (its echo/ folder)")
    parser.add_argument("--delays", default="20,50,100,150")
    parser.add_argument("--gain-db", type=float, default=-6.0)
    parser.add_argument("--tail-ms", type=int, default=200)
    parser.add_argument("--rate", type=int, default=8000,
                        help="the hub's sample_rate (8000: see tests/vm/echo_run.py's LANE_RATE)")
    parser.add_argument("--live", action="store_true",
                        help="also run each delay with the canceller on, live (CPU-bound under TCG)")
    parser.add_argument("--far-alone", type=float, default=10.0)
    parser.add_argument("--double-talk", type=float, default=4.0)
    args = parser.parse_args()
    if args.inside:
        return run_inside(args)
    if args.analyse:
        print(table(analyse(args.analyse)))
        return 0
    return run_on_host([a for a in sys.argv[1:] if a != "--inside"])


if __name__ == "__main__":
    sys.exit(main())
