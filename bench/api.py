"""API throughput and latency through the whole stack (gunicorn -> auth -> codec -> control socket ->
supervisor -> SQLite) next to a bare Falcon endpoint under the same gunicorn settings, same run.

    .venv/bin/python bench/api.py [--duration 10] [--connections 32]

Load comes from wrk (Debian package `wrk`, installed if missing) on loopback, with HTTP Basic auth
(verification cached after the first scrypt check, so it measures the steady state a VMS polling
with Basic sees); one Digest round trip per request would measure the client, not the server.
"""
from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daemon.cli import gunicorn_command, port_open  # noqa: E402
from tests.harness import ADMIN, Station, free_port  # noqa: E402


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk")


def wrk(url: str, body: str, auth: str | None, duration: int, connections: int, workdir: Path) -> dict:
    script = workdir / "post.lua"
    headers = 'wrk.headers["Content-Type"] = "application/json"\n'
    if auth:
        headers += f'wrk.headers["Authorization"] = "Basic {auth}"\n'
    script.write_text(f'wrk.method = "POST"\nwrk.body = [[{body}]]\n{headers}'
                      'done = function(summary, latency, requests)\n'
                      '  io.write(string.format("errors %d %d %d %d %d\\n", summary.errors.connect, '
                      'summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))\n'
                      '  for _, p in pairs({50, 90, 99, 99.9}) do\n'
                      '    io.write(string.format("p%g %d\\n", p, latency:percentile(p)))\n  end\n'
                      '  io.write(string.format("requests %d\\n", summary.requests))\nend\n')
    out = subprocess.run([ensure_wrk(), "-t2", f"-c{connections}", f"-d{duration}s", "-s", str(script), url],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    pct = {m.group(1): int(m.group(2)) / 1000 for m in re.finditer(r"^p([\d.]+) (\d+)$", out, re.M)}
    errors = [int(x) for x in re.search(r"^errors (.*)$", out, re.M).group(1).split()]
    return {"rps": rps, "p50": pct["50"], "p90": pct["90"], "p99": pct["99"], "errors": sum(errors)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ds-bench-"))
    auth = base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
    station = Station(work / "state").start()
    bare_port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "bench")}
    bare = subprocess.Popen(gunicorn_command(f"127.0.0.1:{bare_port}", 1, 8)[:-1] + ["bare_app:app"],
                            env=env, cwd=REPO / "bench")
    try:
        station.ok("SetSIPAccounts", {"SIPAccount": [{"UserId": f"user{i}", "Password": "secret-pass",
                                                      "Registrar": "127.0.0.1"} for i in range(5)]})
        deadline = time.monotonic() + 20
        while not port_open("127.0.0.1", bare_port) and time.monotonic() < deadline:
            time.sleep(0.1)
        rows = []
        for command in ("GetSIPAccounts", "GetAudioCodecs"):
            body = f'{{"axcall:{command}":{{}}}}'
            full = wrk(f"{station.url}/vapix/call", body, auth, args.duration, args.connections, work)
            base = wrk(f"http://127.0.0.1:{bare_port}/vapix/call", body, None, args.duration, args.connections, work)
            rows.append((command, full, base))
        print(f"{'command':<16} {'stack':>6} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'errors':>6}")
        for command, full, base in rows:
            for label, r in (("full", full), ("bare", base)):
                print(f"{command:<16} {label:>6} {r['rps']:>8.0f} {r['p50']:>7.2f} {r['p90']:>7.2f} "
                      f"{r['p99']:>7.2f} {r['errors']:>6}")
            print(f"{command:<16} ratio full/bare throughput {full['rps'] / base['rps']:.2f}, "
                  f"p50 latency {full['p50'] / max(base['p50'], 1e-3):.1f}x")
        print(f"({args.connections} connections, {args.duration} s each, gunicorn 1 worker x 8 gthreads, "
              f"{os.cpu_count()} CPUs shared by load generator and server)")
        return 0
    finally:
        bare.terminate()
        bare.wait(10)
        station.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
