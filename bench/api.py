"""API throughput and latency through the whole stack (gunicorn -> auth -> codec -> control socket ->
supervisor -> SQLite) next to a bare Falcon endpoint under the same gunicorn settings, same run.

    .venv/bin/python bench/api.py [--duration 10] [--connections 32] [--profile DIR]

Load comes from wrk (Debian package `wrk`, installed if missing) on loopback, with HTTP Basic auth
(verification cached after the first scrypt check, so it measures the steady state a VMS polling
with Basic sees); one Digest round trip per request would measure the client, not the server. Both stacks run the
station's gunicorn worker (daemon.api.worker.StationWorker, gevent). Also printed: the station's
gunicorn master + worker memory (RSS and PSS) after the load. --profile DIR records py-spy
flame graphs of the API worker and the supervisor during an extra full-stack run (py-spy from PyPI).
GetSIPAccounts and GetAudioCodecs are stored-configuration reads (answered again by the worker until
the store changes); GetCallStatuses is live state (answered again until the supervisor's live stamp
changes: no call changes during the bench). The bare stack's memory is printed too: the floor that
gunicorn + gevent + Falcon set for any app served this way.
"""
from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from load import children, cpu_seconds, find_child, pss_mib, rss_mib, wrk  # noqa: E402

from daemon.cli import gunicorn_command, port_open  # noqa: E402
from tests.harness import ADMIN, Station, free_port  # noqa: E402


def py_spy(pid: int, seconds: int, out: Path) -> subprocess.Popen:
    binary = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if binary is None:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    return subprocess.Popen([binary, "record", "--pid", str(pid), "--duration",
                             str(seconds), "--rate", "250", "--format", "speedscope", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--profile", type=Path, help="write py-spy profiles (speedscope JSON) here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ds-bench-"))
    auth = base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
    station = Station(work / "state").start()
    bare_port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "bench")}
    bare = subprocess.Popen(gunicorn_command([f"127.0.0.1:{bare_port}"], 1, app="bare_app:app"),
                            env=env, cwd=REPO / "bench")
    try:
        station.ok("SetSIPAccounts", {"SIPAccount": [{"UserId": f"user{i}", "Password": "secret-pass",
                                                      "Registrar": "127.0.0.1"} for i in range(5)]})
        deadline = time.monotonic() + 20
        while not port_open("127.0.0.1", bare_port) and time.monotonic() < deadline:
            time.sleep(0.1)
        # One Basic request first: the steady state is measured, not 32 connections' first scrypt
        # checks queueing at once (~140 ms each, 2 at a time).
        warm = requests.post(f"{station.url}/vapix/call", data='{"axcall:GetAudioCodecs":{}}',
                             headers={"Authorization": f"Basic {auth}"}, timeout=30)
        assert warm.status_code == 200, warm.text
        rows = []
        master = find_child(station.proc.pid, "gunicorn")
        api_worker = children(master)[0]
        supervisor = find_child(station.proc.pid, "daemon.supervisor")
        # All three are answered again by the API worker while nothing they read changes
        # (daemon/api/answers.py): the store for the first two, the live stamp for GetCallStatuses.
        for command in ("GetSIPAccounts", "GetAudioCodecs", "GetCallStatuses"):
            body = f'{{"axcall:{command}":{{}}}}'
            before = cpu_seconds(api_worker), cpu_seconds(supervisor)
            full = wrk(f"{station.url}/vapix/call", body, auth, args.duration, args.connections, work)
            count = full["rps"] * args.duration
            full["cpu_api"] = (cpu_seconds(api_worker) - before[0]) / count * 1000
            full["cpu_sup"] = (cpu_seconds(supervisor) - before[1]) / count * 1000
            base = wrk(f"http://127.0.0.1:{bare_port}/vapix/call", body, None, args.duration, args.connections, work)
            rows.append((command, full, base))
        memory = [(label, rss_mib(pid), pss_mib(pid)) for label, pid in
                  [("master", master)] + [("worker", w) for w in children(master)]] if master else []
        floor = [(label, rss_mib(pid), pss_mib(pid)) for label, pid in
                 [("master", bare.pid)] + [("worker", w) for w in children(bare.pid)]]
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            body = '{"axcall:GetCallStatuses":{}}'
            spies = [py_spy(pid, args.duration, args.profile / f"{name}.speedscope.json")
                     for name, pid in (("api-worker", api_worker), ("supervisor", supervisor))]
            wrk(f"{station.url}/vapix/call", body, auth, args.duration, args.connections, work)
            for spy in spies:
                spy.wait(args.duration + 30)
            print(f"profiles in {args.profile} (open in https://www.speedscope.app or py-spy's viewer)")
        print(f"{'command':<16} {'stack':>6} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'errors':>6}")
        for command, full, base in rows:
            for label, r in (("full", full), ("bare", base)):
                print(f"{command:<16} {label:>6} {r['rps']:>8.0f} {r['p50']:>7.2f} {r['p90']:>7.2f} "
                      f"{r['p99']:>7.2f} {r['errors']:>6}")
            print(f"{command:<16} ratio full/bare throughput {full['rps'] / base['rps']:.2f}, "
                  f"p50 latency {full['p50'] / max(base['p50'], 1e-3):.1f}x; CPU per request: "
                  f"API worker {full['cpu_api']:.2f} ms, supervisor {full['cpu_sup']:.2f} ms")
        for stack, rows_ in (("station", memory), ("bare   ", floor)):
            for label, rss, pss in rows_:
                print(f"{stack} gunicorn {label:<6} RSS {rss:5.1f} MiB  PSS {pss:5.1f} MiB")
            if rows_:
                print(f"{stack} gunicorn total  RSS {sum(m[1] for m in rows_):5.1f} MiB  "
                      f"PSS {sum(m[2] for m in rows_):5.1f} MiB")
        print(f"({args.connections} connections, {args.duration} s each, gunicorn 1 gevent worker "
              f"(daemon.api.worker.StationWorker), {os.cpu_count()} CPUs shared by load generator and server)")
        return 0
    finally:
        bare.terminate()
        bare.wait(10)
        station.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
