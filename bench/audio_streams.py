"""HTTP audio streams on a real `doorstation run` (simulated sound device): what a stream costs
the supervisor and the API worker, and what the idle supervisor costs before and after (the hub's
clock must stop). Also the per-frame cost of the two ways frames could travel between the
processes: a raw Unix stream socket per stream (used) vs JSON+base64 messages in the control
socket's framing (measured on a socketpair, same process, so only the encoding differs).

    .venv/bin/python bench/audio_streams.py [--receivers 8] [--seconds 10]
"""
from __future__ import annotations

import argparse
import base64
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from requests.auth import HTTPDigestAuth

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import children, cpu_seconds, find_child  # noqa: E402

from daemon.control import protocol  # noqa: E402
from tests.audio_analysis import pcm_to_mulaw, tone  # noqa: E402
from tests.harness import OPERATOR, VIEWER, Station  # noqa: E402

FRAME = 640          # 20 ms of 16 kHz S16


def cpu_pct(pid: int, seconds: float) -> float:
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - before) / seconds


def frame_costs(frames: int = 5000) -> tuple[float, float]:
    """µs per frame: raw bytes vs a control-protocol message, written and read on a socketpair."""
    data = bytes(range(256)) * 2 + bytes(128)
    results = []
    for kind in ("raw", "control"):
        a, b = socket.socketpair()
        t0 = time.process_time()
        for i in range(frames):
            if kind == "raw":
                a.sendall(data)
                got = b""
                while len(got) < FRAME:
                    got += b.recv(FRAME - len(got))
            else:
                a.sendall(protocol.encode({"id": i, "command": "audio.frame",
                                           "args": {"stream": 1, "pcm": base64.b64encode(data).decode()}}))
                head = b.recv(4, socket.MSG_WAITALL)
                body = b.recv(protocol.frame_length(head), socket.MSG_WAITALL)
                got = base64.b64decode(protocol.decode(body)["args"]["pcm"])
            assert got == data
        results.append((time.process_time() - t0) / frames * 1e6)
        a.close()
        b.close()
    return results[0], results[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--receivers", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    raw, control = frame_costs()
    print(f"frame transport (20 ms, 640 B): raw stream socket {raw:.1f} µs, control-socket JSON+base64 "
          f"{control:.1f} µs per frame (x{control / raw:.1f})")
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        state.mkdir()
        (state / "hardware.toml").write_text('[audio]\nsimulated = true\nsim_input = "tone:1000"\n')
        # every client here is 127.0.0.1: lift the per-address cap (4) for the bench
        with Station(state, extra_env={"DOORSTATION_MAX_AUDIO_PER_ADDRESS": "16"}) as st:
            supervisor = find_child(st.proc.pid, "daemon.supervisor")
            master = find_child(st.proc.pid, "gunicorn")
            assert supervisor and master
            worker = children(master)[0]
            time.sleep(2)
            idle_before = cpu_pct(supervisor, 5)
            stop = threading.Event()
            received = [0] * args.receivers

            def receive(k: int) -> None:
                with requests.get(f"{st.url}/axis-cgi/audio/receive.cgi", auth=HTTPDigestAuth(*VIEWER),
                                  stream=True, timeout=10) as r:
                    for chunk in r.iter_content(chunk_size=None):
                        received[k] += len(chunk)
                        if stop.is_set():
                            return

            def body():
                data = pcm_to_mulaw(tone(600, 8000, 1.0))
                start, sent = time.monotonic(), 0
                while not stop.is_set():
                    yield data[(sent % 8000):(sent % 8000) + 320]
                    sent += 320
                    time.sleep(max(0.0, start + sent / 8000 - time.monotonic()))

            def transmit() -> None:
                with requests.Session() as s:
                    s.auth = HTTPDigestAuth(*OPERATOR)
                    s.head(f"{st.url}/axis-cgi/audio/receive.cgi", timeout=10)
                    s.post(f"{st.url}/axis-cgi/audio/transmit.cgi", data=body(),
                           headers={"Content-Type": "audio/basic"}, timeout=args.seconds + 30)

            threads = [threading.Thread(target=receive, args=(k,), daemon=True) for k in range(args.receivers)]
            threads.append(threading.Thread(target=transmit, daemon=True))
            for t in threads:
                t.start()
            time.sleep(2)                       # all streams open, the hub clocked
            sup0, api0, got0 = cpu_seconds(supervisor), cpu_seconds(worker), sum(received)
            time.sleep(args.seconds)
            sup = 100 * (cpu_seconds(supervisor) - sup0) / args.seconds
            api = 100 * (cpu_seconds(worker) - api0) / args.seconds
            rate = (sum(received) - got0) / args.seconds / args.receivers
            from daemon.control.client import ControlClient
            status = ControlClient(str(state / "run" / "control.sock"), timeout=10).request("status")
            stop.set()
            for t in threads:
                t.join(15)
            time.sleep(3)                       # streams closed: the clock should stop
            idle_after = cpu_pct(supervisor, 5)
    streams = status["AudioStreams"]["Streams"]
    print(f"supervisor idle before: {idle_before:.2f} % of a core; after the streams closed: {idle_after:.2f} %")
    print(f"{args.receivers} receivers + 1 transmitter for {args.seconds:g} s: supervisor {sup:.1f} %, "
          f"API worker {api:.1f} % of a core; each receiver got {rate:.0f} B/s (8000 expected)")
    print("per stream: " + ", ".join(f"{s['Kind'][0]}{s['Id']} u{s['Underruns']}/o{s['Overruns']}/d{s['DroppedBytes']}"
                                     for s in streams))
    print(f"hub: {status['Hardware']['Audio']['echo']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
