"""Load and measurement helpers shared by bench/api.py and bench/frontend.py: wrk runs, the RSS of a
gunicorn master with its workers, long-polls held open on raw sockets, and probe latencies."""
from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import time
from pathlib import Path


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk")


def wrk(url: str, body: str, auth: str | None, duration: int, connections: int, workdir: Path) -> dict:
    """POST `body` to `url` for `duration` s over `connections` connections (Basic `auth` if given)."""
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


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def pss_mib(pid: int) -> float:
    """Proportional set size: shared pages (libpython, modules imported before gunicorn forks the
    worker) are split between the processes sharing them instead of counted in each RSS."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` so far (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def tree_rss_mib(pid: int) -> tuple[float, float]:
    """(master, workers) VmRSS of a gunicorn master `pid` and its direct children."""
    return rss_mib(pid), sum(rss_mib(c) for c in children(pid))


def tree_pss_mib(pid: int) -> float:
    """PSS of a gunicorn master `pid` and its direct children together."""
    return pss_mib(pid) + sum(pss_mib(c) for c in children(pid))


def find_child(pid: int, needle: str) -> int | None:
    """The first child of `pid` whose command line contains `needle`."""
    for child in children(pid):
        try:
            if needle in Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace"):
                return child
        except OSError:
            continue
    return None


def hold_longpolls(port: int, count: int, path: str, headers: str = "",
                   source: str = "127.0.0.1") -> list[socket.socket]:
    """Open `count` connections that each send one GET `path` and are not read from (yet)."""
    held = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
        held.append(s)
    return held


def probe(port: int, request: bytes, count: int, timeout: float) -> dict:
    """Send `request` on a fresh connection `count` times; latency to the status line (ms), or a
    timeout. Bounded: count x timeout seconds at most."""
    times, timeouts = [], 0
    for _ in range(count):
        t0 = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
                s.settimeout(max(0.01, timeout - (time.monotonic() - t0)))
                s.sendall(request)
                if not s.recv(64).startswith(b"HTTP/1.1 200"):
                    raise OSError("not a 200")
            times.append((time.monotonic() - t0) * 1000)
        except OSError:
            timeouts += 1
    return {"p50": statistics.median(times) if times else None, "max": max(times) if times else None,
            "failed": timeouts}


def close_all(sockets: list[socket.socket]) -> None:
    for s in sockets:
        try:
            s.close()
        except OSError:
            pass
