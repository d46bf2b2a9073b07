"""Which gunicorn worker model for the API: the same bare Falcon endpoints (bench/frontend_apps.py)
under each, same run, same load.

    .venv/bin/python bench/frontend.py [--duration 8] [--connections 32] [--longpolls 200]

Per model: throughput and latency under wrk (POST, keep-alive), gunicorn master + worker RSS after
the load, and what a plain request costs while `--longpolls` long-polls (5 s each) are open:
median/max latency of 10 probes on fresh connections, and how many got no answer within 3 s.
Models: gthread 1 worker x 8 threads (the old API), gevent (gunicorn's worker), the station's own
gevent worker (daemon.api.worker.StationWorker: caps and deadlines on top), and Falcon's ASGI app
under uvicorn's gunicorn worker.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from load import close_all, hold_longpolls, probe, tree_pss_mib, tree_rss_mib, wrk  # noqa: E402

from daemon.cli import WORKER_CLASS, port_open  # noqa: E402
from tests.harness import free_port  # noqa: E402

BASE = ["--workers", "1", "--keep-alive", "5", "--graceful-timeout", "2", "--log-level", "error"]
MODELS = {
    "gthread 1x8": (["--worker-class", "gthread", "--threads", "8"], "frontend_apps:wsgi_app"),
    "gevent": (["--worker-class", "gevent", "--worker-connections", "1000"], "frontend_apps:wsgi_app"),
    "station gevent": (["--worker-class", WORKER_CLASS], "frontend_apps:wsgi_app"),
    "uvicorn ASGI": (["--worker-class", "uvicorn.workers.UvicornWorker"], "frontend_apps:asgi_app"),
}
PROBE = b"POST /vapix/call HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"


def measure(name: str, extra: list[str], app: str, args, work: Path) -> dict:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "bench") + os.pathsep + str(REPO),
           # the comparison is about the worker model: no per-address cap in the way
           "DOORSTATION_MAX_PER_ADDRESS": "100000", "DOORSTATION_MAX_CONNECTIONS": "100000"}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", *BASE,
                             *extra, app], env=env, cwd=REPO / "bench",
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not port_open("127.0.0.1", port):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{name} did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
        probe(port, PROBE, 3, 3.0)
        idle = sum(tree_rss_mib(proc.pid))
        load = wrk(f"http://127.0.0.1:{port}/vapix/call", "{}", None, args.duration, args.connections, work)
        master, workers = tree_rss_mib(proc.pid)
        pss = tree_pss_mib(proc.pid)
        held = hold_longpolls(port, args.longpolls, "/poll?wait=5")
        try:
            time.sleep(0.5)
            during = probe(port, PROBE, 10, 3.0)
            rss_polls = sum(tree_rss_mib(proc.pid))
        finally:
            close_all(held)
        return {"load": load, "idle": idle, "master": master, "workers": workers, "pss": pss, "during": during,
                "rss_polls": rss_polls}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def fmt(value: float | None) -> str:
    return f"{value:7.1f}" if value is not None else "      -"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--longpolls", type=int, default=200)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ds-frontend-"))
    rows = {name: measure(name, *MODELS[name], args, work) for name in args.models.split(",")}
    base = rows.get("gthread 1x8")
    print(f"{'model':<15} {'req/s':>7} {'ratio':>5} {'p50 ms':>7} {'p99 ms':>7} {'err':>4} "
          f"{'RSS idle':>8} {'RSS load':>14} {'PSS':>5} {'RSS polls':>9} | with {args.longpolls} long-polls: "
          f"{'p50 ms':>7} {'max ms':>7} {'no answer':>9}")
    for name, r in rows.items():
        load, during = r["load"], r["during"]
        ratio = f"{load['rps'] / base['load']['rps']:.2f}" if base else "-"
        print(f"{name:<15} {load['rps']:>7.0f} {ratio:>5} {load['p50']:>7.2f} {load['p99']:>7.2f} "
              f"{load['errors']:>4} {r['idle']:>8.1f} {r['master']:>5.1f} + {r['workers']:>5.1f} {r['pss']:>5.1f} "
              f"{r['rss_polls']:>9.1f} | {'':>21}{fmt(during['p50'])} {fmt(during['max'])} "
              f"{during['failed']:>6}/10")
    print(f"(RSS and PSS in MiB, master + worker; RSS counts the pages the worker shares with its "
          f"master twice, PSS once; {args.connections} connections for {args.duration} s; "
          f"{os.cpu_count()} CPUs shared by wrk and the server)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
