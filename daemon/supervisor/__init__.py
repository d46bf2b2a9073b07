"""The supervisor process: the one owner of the SQLite store (writer), the SIP engine, the GPIO
lines, the sound device and the event log. Its modules:

    service.py    main(), the asyncio loop, the control socket's handlers, signals, sd_notify
    wiring.py     builds store -> event sink -> hardware -> SIP engine -> runtime -> intercom, and
                  tears them down in reverse
    runtime.py    the live state the commands use: calls (SIP and VMS), configuration applies, door
    eventsink.py  the event log's one writer and the long-polls that wait on it

daemon/sdnotify.py (shared with the RTSP process) talks to systemd. The door's own safety (the
relay's re-lock) does not depend on this loop: hw/timers.ThreadTimers.
"""

from __future__ import annotations

import os
from pathlib import Path


def control_socket_path(state_dir: str | os.PathLike) -> Path:
    """Where the control socket lives (light: the CLI and the API import it)."""
    return Path(state_dir) / "run" / "control.sock"


def main(argv: list[str] | None = None) -> int:
    from daemon.supervisor.service import main as service_main
    return service_main(argv)
