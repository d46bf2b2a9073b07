"""`python -m daemon.rtsp --state-dir DIR --listen HOST:PORT`: serve the RTSP event stream."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from daemon import sdnotify


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


async def serve(state_dir: Path, host: str, port: int, log: logging.Logger) -> int:
    from daemon.api.auth import StoreUserLookup
    from daemon.api.readstore import ReadStore
    from daemon.control.client import ControlClient
    from daemon.rtsp.auth import DigestVerifier
    from daemon.rtsp.hub import EventHub, SupervisorFollower
    from daemon.rtsp.server import RtspServer
    from daemon.supervisor import control_socket_path

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    hub = EventHub(log)
    from daemon.audiostream import audio_socket_path
    server = RtspServer(hub, DigestVerifier(StoreUserLookup(ReadStore(state_dir))), log,
                        audio_socket=str(audio_socket_path(state_dir)))
    try:
        await server.start(host, port)
    except OSError as e:
        log.error("cannot listen on %s:%d: %s", host, port, e)
        return 2
    stop_follower = threading.Event()
    follower = SupervisorFollower(ControlClient(str(control_socket_path(state_dir)), timeout=10.0),
                                  loop, hub, log, stop_follower)
    follower.start()
    shown = f"[{host}]" if ":" in host else host
    log.info("RTSP event stream on rtsp://%s:%d/axis-media/media.amp?video=0&audio=0&event=on", shown, port)
    log.info("RTSP microphone on rtsp://%s:%d/axis-media/media.amp?audio=1&video=0", shown, port)
    sdnotify.notify("READY=1")
    await stop.wait()
    stop_follower.set()
    await server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m daemon.rtsp", description=__doc__)
    parser.add_argument("--state-dir", default=os.environ.get("DOORSTATION_STATE_DIR", "/var/lib/doorstation"))
    parser.add_argument("--listen", type=parse_listen, default=parse_listen("0.0.0.0:554"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s doorstation-rtsp %(levelname)s %(message)s")
    host, port = args.listen
    return asyncio.run(serve(Path(args.state_dir).resolve(), host, port, logging.getLogger("doorstation.rtsp")))


if __name__ == "__main__":
    sys.exit(main())
