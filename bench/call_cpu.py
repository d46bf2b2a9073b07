"""CPU per call with the echo canceller on and off, next to baresip, in the same run: a real
`doorstation run` calls baresip over loopback, audio flows both ways for the whole call.

    .venv/bin/python bench/call_cpu.py [--rounds 3] [--call-seconds 20] [--idle-seconds 10]
                                       [--codecs PCMU/8000,G722/16000] [--sample-rate 16000]

How each figure is taken:
1. Two `doorstation run`s (tests/harness.Station) run side by side for the whole bench, identical
   but for hardware.toml's `[audio.aec] enabled = true` (every other AEC setting at its default:
   tail 500 ms, noise suppression -15 dB, no AGC) or `false`. Both have simulated GPIO and the
   simulated sound device (`[audio] simulated = true`, hw/audio_sim.py: a 440 Hz microphone and a
   discarding speaker, both paced by the clock like a device, at `--sample-rate`). SIP is switched
   on through the API (tests/stack_sip.enable_sip) and one codec offered through SetAudioCodecs;
   the call's AudioCodec (GetCallStatus) is printed. A station with no call has its hub clock
   stopped, so the idle one does not load the other's figures (the idle window shows it).
2. One baresip (tests/sip_peers.Baresip: auto answer, aubridge "echo" device) answers every call
   and sends back the audio it receives. So the station's microphone path (hub -> canceller ->
   pjmedia -> encoder -> RTP) and its speaker path (RTP -> decoder -> pjmedia -> hub -> the
   canceller's reference) both run for the whole call, and so does baresip's.
3. A round is one call from each station; the order alternates per round (on, off / off, on /
   ...) so a drift of the machine's load falls on both. A call: axcall:Call to baresip, Active,
   then wait until the hub's counters (the control socket's `status`, as `doorstation status`
   shows them: Hardware.Audio frames_out / frames_in / echo.frames) move and the speaker carries
   baresip's echo; then utime+stime of the supervisor and of baresip from /proc/<pid>/stat over
   the talking window (`--call-seconds`), with the hub's counters read before and after it (the
   evidence that the canceller processed a frame per 20 ms tick: echo frames per second, and
   none on the AEC-off station); then TerminateCall and Terminated. Figure: CPU seconds / wall
   seconds of the window, in % of one core. The whole call (request -> Terminated, setup and
   teardown included) is given in CPU seconds per call too.
4. Idle: the same processes over `--idle-seconds` with no call, before the first call.
5. The machine is shared: the busy share of all cores (/proc/stat) during each window and the
   load average are printed next to the figures.

Loopback only; every wait is bounded. Needs the Debian package baresip and libspeexdsp1.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.harness import Station  # noqa: E402
from tests.sip_peers import Baresip, wait_until  # noqa: E402
from tests.stack_sip import call_status, enable_sip, hardware_toml, wait_call_state  # noqa: E402

CONDITIONS = ("on", "off")


def station_hardware(aec: bool, sample_rate: int = 16000) -> str:
    """hardware.toml of one bench station: simulated GPIO and sound device, AEC on or off."""
    return hardware_toml() + (
        f'[audio]\nsimulated = true\nsample_rate = {sample_rate}\nsim_input = "tone:440"\n'
        f'[audio.aec]\nenabled = {"true" if aec else "false"}\n')


# ---- /proc --------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid`, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores, from /proc/stat's first line."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)       # idle + iowait
    total = sum(values[:8])                                        # guest time is inside user
    return total - idle, total


def supervisor_pid(st: Station) -> int:
    """The `daemon.supervisor` process under the station's launcher (searched down the tree)."""
    todo, seen = [st.proc.pid], 0
    while todo and seen < 1000:
        pid = todo.pop()
        seen += 1
        try:
            if b"daemon.supervisor" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
            todo += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            continue
    raise AssertionError("no supervisor process under the station")


class Window:
    """CPU of named processes and the machine's busy share between start() and stop()."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def start(self) -> "Window":
        self._t0 = time.monotonic()
        self._cpu0 = {k: cpu_seconds(p) for k, p in self.pids.items()}
        self._m0 = machine_ticks()
        return self

    def stop(self) -> "Window":
        self.seconds = time.monotonic() - self._t0
        self.cpu = {k: cpu_seconds(p) - self._cpu0[k] for k, p in self.pids.items()}
        busy, total = machine_ticks()
        self.machine_busy_pct = 100 * (busy - self._m0[0]) / max(1, total - self._m0[1])
        return self

    def pct(self, name: str) -> float:
        return 100 * self.cpu[name] / self.seconds


# ---- the hub's counters ---------------------------------------------------------------------------
def hub_stats(st: Station) -> dict:
    """Hardware.Audio of the supervisor's status (what `doorstation status` prints)."""
    from daemon.control.client import ControlClient
    client = ControlClient(str(st.state_dir / "run" / "control.sock"), timeout=10)
    try:
        return client.request("status")["Hardware"]["Audio"]
    finally:
        client.close()


def echo_frames(stats: dict) -> int | None:
    """Frames the canceller processed so far; None when the hub has none (disabled or missing)."""
    echo = stats.get("echo") or {}
    return echo.get("frames") if "frames" in echo else None


@dataclass
class CallSample:
    condition: str            # "on" | "off"
    codec: str
    round: int
    seconds: float            # the talking window
    supervisor_pct: float
    baresip_pct: float
    machine_busy_pct: float
    whole_call_supervisor_s: float
    whole_call_baresip_s: float
    whole_call_seconds: float
    frames_to_call: int       # hub frames_out over the window
    frames_from_call: int     # hub frames_in over the window
    echo_frames: int | None   # canceller frames over the window (None: no canceller)
    echo_state: Any = None    # the status's echo entry at the end of the window
    levels: dict = field(default_factory=dict)
    mic_underruns: int = 0
    negotiated: str | None = None   # the call's AudioCodec (GetCallStatus)


def one_call(st: Station, condition: str, bob: Baresip, sup: int, codec: str, rnd: int,
             call_seconds: float) -> CallSample:
    pids = {"supervisor": sup, "baresip": bob.proc.pid}
    whole = Window(pids).start()
    mark = bob.mark()
    call_id = st.ok("Call", {"To": bob.aor})["CallId"]
    wait_call_state(st, call_id, "Active", timeout=15)
    base = hub_stats(st)

    def flowing() -> dict | None:
        s = hub_stats(st)
        moved = s["frames_out"] > base["frames_out"] + 25 and s["frames_in"] > base["frames_in"] + 25
        return s if moved and s["levels"]["speaker_dbfs"] is not None else None
    wait_until(flowing, 10.0, "audio both ways through the hub (baresip's echo on the speaker)", step=0.2)
    time.sleep(1.0)                    # past the first second's jitter buffer and canceller start-up
    before = hub_stats(st)
    win = Window(pids).start()
    time.sleep(call_seconds)
    win.stop()
    after = hub_stats(st)
    negotiated = call_status(st, call_id).get("AudioCodec")
    st.ok("TerminateCall", {"CallId": call_id})
    wait_call_state(st, call_id, "Terminated", timeout=15)
    bob.wait_event("CALL_CLOSED", timeout=10, since=mark)
    whole.stop()
    e0, e1 = echo_frames(before), echo_frames(after)
    return CallSample(
        condition, f"{codec} (negotiated {negotiated})", rnd, win.seconds, win.pct("supervisor"),
        win.pct("baresip"), win.machine_busy_pct, whole.cpu["supervisor"], whole.cpu["baresip"],
        whole.seconds, after["frames_out"] - before["frames_out"], after["frames_in"] - before["frames_in"],
        None if e0 is None or e1 is None else e1 - e0, after.get("echo"), after.get("levels", {}),
        after["mic"]["underruns"] - before["mic"]["underruns"], negotiated)


# ---- figures ----------------------------------------------------------------------------------------
def check_canceller(samples: list[CallSample], frame_ms: int = 20) -> list[str]:
    """Problems with the evidence: each call used the codec asked for and carried audio, the AEC-on
    calls ran the canceller on (nearly) every frame given to the call, the AEC-off calls had none.
    Empty when all is well."""
    problems = []
    for s in samples:
        if s.negotiated is not None and not s.codec.lower().startswith(s.negotiated.lower() + "/"):
            problems.append(f"{s.condition} round {s.round}: asked for {s.codec.split()[0]}, "
                            f"the call used {s.negotiated}")
        expected = s.seconds * 1000 / frame_ms
        if s.frames_to_call < 0.8 * expected:
            problems.append(f"{s.condition} round {s.round}: only {s.frames_to_call} frames to the call "
                            f"in {s.seconds:.1f} s (expected ~{expected:.0f})")
        if s.condition == "on" and (s.echo_frames is None or s.echo_frames < 0.95 * s.frames_to_call):
            problems.append(f"on round {s.round}: the canceller processed {s.echo_frames} frames of "
                            f"{s.frames_to_call} ({s.echo_state})")
        if s.condition == "off" and s.echo_frames is not None:
            problems.append(f"off round {s.round}: a canceller ran ({s.echo_state})")
    return problems


def summarize(samples: list[CallSample]) -> dict[str, float]:
    """Means per condition, the on - off difference (mean of the paired per-round differences,
    with their min and max) and the ratios the README quotes."""
    by = {c: [s for s in samples if s.condition == c] for c in CONDITIONS}
    mean = lambda c, attr: statistics.fmean(getattr(s, attr) for s in by[c])  # noqa: E731
    pairs: dict[int, dict[str, float]] = {s.round: {} for s in samples}
    for s in samples:
        pairs[s.round][s.condition] = s.supervisor_pct
    diffs = [p["on"] - p["off"] for p in pairs.values() if len(p) == 2]
    out = {f"{attr}_{c}": mean(c, attr) for c in CONDITIONS
           for attr in ("supervisor_pct", "baresip_pct", "whole_call_supervisor_s", "whole_call_baresip_s",
                        "machine_busy_pct")}
    out |= {"diff_mean": statistics.fmean(diffs), "diff_min": min(diffs), "diff_max": max(diffs),
            "ratio_on_off": out["supervisor_pct_on"] / out["supervisor_pct_off"],
            "ratio_on_baresip": out["supervisor_pct_on"] / out["baresip_pct_on"],
            "ratio_off_baresip": out["supervisor_pct_off"] / out["baresip_pct_off"]}
    return out


def span(xs: list[float]) -> str:
    return f"{statistics.fmean(xs):6.2f} ({min(xs):.2f}-{max(xs):.2f})"


def print_codec(codec: str, samples: list[CallSample], call_seconds: float) -> None:
    by = {c: [s for s in samples if s.condition == c] for c in CONDITIONS}
    f = summarize(samples)
    print(f"\n{codec}: {len(by['on'])} calls per condition, talking window {call_seconds:.0f} s, "
          f"% of one core (mean, min-max)")
    print(f"  {'':<36}{'AEC on':>20}{'AEC off':>20}   on - off (paired, min..max)")
    for name, attr in (("supervisor", "supervisor_pct"), ("baresip, same calls", "baresip_pct"),
                       ("machine busy, all cores", "machine_busy_pct")):
        on, off = [getattr(s, attr) for s in by["on"]], [getattr(s, attr) for s in by["off"]]
        extra = (f"   {f['diff_mean']:+.2f} ({f['diff_min']:+.2f}..{f['diff_max']:+.2f})"
                 if attr == "supervisor_pct" else "")
        print(f"  {name:<36}{span(on):>20}{span(off):>20}{extra}")
    print(f"  {'whole call CPU-s, supervisor / baresip':<36}"
          f"{f['whole_call_supervisor_s_on']:>12.2f} / {f['whole_call_baresip_s_on']:.2f}"
          f"{f['whole_call_supervisor_s_off']:>12.2f} / {f['whole_call_baresip_s_off']:.2f}"
          f"   (mean call {statistics.fmean(s.whole_call_seconds for s in samples):.1f} s)")
    print(f"  ratio supervisor AEC on / off {f['ratio_on_off']:.2f}x; supervisor / baresip "
          f"{f['ratio_on_baresip']:.1f}x (on), {f['ratio_off_baresip']:.1f}x (off)")
    for s in samples:
        echo = (f"canceller {s.echo_frames} frames ({s.echo_frames / s.seconds:.1f}/s, "
                f"tail {s.echo_state.get('tail_ms')} ms)" if s.echo_frames is not None
                else f"no canceller ({(s.echo_state or {}).get('off')})")
        print(f"    round {s.round} AEC {s.condition:<3} {s.codec}: supervisor {s.supervisor_pct:5.2f} %, "
              f"baresip {s.baresip_pct:5.2f} %, machine {s.machine_busy_pct:4.1f} %; hub "
              f"{s.frames_to_call} frames to the call, {s.frames_from_call} from it, {echo}; "
              f"mic/speaker {s.levels.get('mic_dbfs')} / {s.levels.get('speaker_dbfs')} dBFS, "
              f"mic underruns {s.mic_underruns}")


def idle(stations: dict[str, tuple[Station, int]], bob: Baresip, seconds: float) -> None:
    pids = {f"supervisor AEC {c}": sup for c, (_, sup) in stations.items()} | {"baresip": bob.proc.pid}
    w = Window(pids).start()
    time.sleep(seconds)
    w.stop()
    print(f"\nidle, no call, {seconds:.0f} s (% of one core): "
          + ", ".join(f"{k} {w.pct(k):.2f} %" for k in pids) + f"; machine busy {w.machine_busy_pct:.1f} %")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=lambda v: max(1, int(v)), default=3, help="calls per condition and codec")
    ap.add_argument("--call-seconds", type=float, default=20.0, help="talking window measured in each call")
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    ap.add_argument("--codecs", default="PCMU/8000,G722/16000", help="comma-separated Name/SampleRate")
    ap.add_argument("--sample-rate", type=int, default=16000, choices=(8000, 16000, 32000, 48000),
                    help="the hub's rate ([audio] sample_rate; the canceller runs at it)")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)      # progress shows when redirected to a file
    if not 1 <= args.call_seconds <= 600 or not 0 <= args.idle_seconds <= 600:
        ap.error("--call-seconds must be 1..600 and --idle-seconds 0..600")
    codecs = [(c.split("/")[0], int(c.split("/")[1])) for c in args.codecs.split(",") if c]
    work = Path(tempfile.mkdtemp(prefix="ds-bench-callcpu-"))
    started: list = []
    try:
        stations: dict[str, tuple[Station, int]] = {}
        for condition in CONDITIONS:
            state = work / f"aec-{condition}"
            state.mkdir()
            (state / "hardware.toml").write_text(station_hardware(condition == "on", args.sample_rate))
            st = Station(state).start()
            started.append(st)
            enable_sip(st)
            stations[condition] = (st, supervisor_pid(st))
        bob = Baresip(work / "bob").start()
        started.append(bob)
        time.sleep(3.0)
        for condition, (st, _) in stations.items():
            hub = hub_stats(st)
            print(f"AEC {condition} station: hub echo {hub.get('echo')}, clock running {hub.get('active')}")
        load = os.getloadavg()
        print(f"doorstation CPU per call, AEC on/off vs baresip, {os.cpu_count()} CPUs, loopback, "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average {load[0]:.2f} "
              f"{load[1]:.2f} {load[2]:.2f}; hub {args.sample_rate} Hz, simulated sound device")
        idle(stations, bob, args.idle_seconds)
        all_problems = []
        for name, rate in codecs:
            for st, _ in stations.values():
                st.ok("SetAudioCodecs", {"AudioCodec": [{"Name": name, "SampleRate": rate}]})
            time.sleep(1.0)           # the priority list is applied on the engine thread
            samples = []
            for rnd in range(args.rounds):
                order = CONDITIONS if rnd % 2 == 0 else CONDITIONS[::-1]
                for condition in order:
                    st, sup = stations[condition]
                    samples.append(one_call(st, condition, bob, sup, f"{name}/{rate}", rnd, args.call_seconds))
                    time.sleep(1.5)   # the hub's clock stops 1 s after the call's media went
            print_codec(f"{name}/{rate}", samples, args.call_seconds)
            all_problems += check_canceller(samples)
        load = os.getloadavg()
        print(f"\nload average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        if all_problems:
            print("EVIDENCE CHECK FAILED:\n  " + "\n  ".join(all_problems), file=sys.stderr)
            return 1
        print("evidence: every AEC-on call ran the canceller on every frame given to the call; "
              "no AEC-off call had one")
        return 0
    finally:
        for thing in reversed(started):
            try:
                thing.stop()
            except Exception as e:  # noqa: BLE001
                print(f"stopping {type(thing).__name__}: {e}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
