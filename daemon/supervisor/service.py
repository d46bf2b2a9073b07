"""The supervisor process: single owner of the store (writer), the SIP engine, the hardware and the
event log. One asyncio loop thread runs every command, so no two writers ever race; the SIP engine
runs in its own thread and hands its events over with call_soon_threadsafe.

Signals are only turned into a stop request (as gunicorn's arbiter does); the stop itself runs on
the loop: stop serving, stop the engine (hang up, destroy), lock the door, close the store.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from daemon import sdnotify
from daemon.commands import Context, invoke, lookup, role_allows
from daemon.control.server import ControlServer
from daemon.faults import VapixFault, action_failed, not_authorized
from daemon.store import StoreError
from daemon.supervisor import control_socket_path
from daemon.supervisor.wiring import AlreadyRunning, Station, StationConfigError, open_station

EXIT_OK = 0
EXIT_CONFIG = 2      # bad configuration: systemd should not restart in a loop (RestartPreventExitStatus)
EXIT_FAILURE = 1





class Supervisor:
    """The control socket's handlers over the station's parts (one owner each: the store, the
    event sink, the runtime)."""

    def __init__(self, station: Station, socket_path: str | os.PathLike, log: logging.Logger):
        self.store = station.store
        self.sink = station.sink
        self.runtime = station.runtime
        self.mqtt = station.mqtt
        self.log = log
        self.server = ControlServer(str(socket_path), self._handlers(), log)

    def _handlers(self) -> dict:
        from daemon import device, usercontrol, users
        return {
            "ping": lambda args: {"pid": os.getpid()},
            "vapix": self.vapix,
            "events.wait": self.events_wait,
            "events.end": lambda args: {"next": self.sink.end()},
            "status": lambda args: {**self.runtime.status(),
                                    **({"MQTT": self.mqtt.status()} if self.mqtt is not None else {})},
            "door.open": lambda args: self.runtime.door_open(cause={"api": str(args.get("user", "cli"))}),
            "press": lambda args: self.runtime.press(),
            "door.bindings": lambda args: self.runtime.relay_bindings(),
            "door.bindings.set": lambda args: self.runtime.set_relay_bindings(args.get("DTMFEventIds")),
            "user.add": self.user_add,
            "user.remove": self.user_remove,
            "user.list": lambda args: users.list_users(self.store),
            **device.control_handlers(self.runtime, self.store),
            **(self.mqtt.control_handlers() if self.mqtt is not None else {}),
            **usercontrol.control_handlers(self.store),     # pwdgrp.cgi
        }

    def user_add(self, args: dict) -> dict:
        from daemon import users
        users.add_user(self.store, args["name"], args["role"], args["password"], replace=bool(args.get("replace")))
        return {}

    def user_remove(self, args: dict) -> dict:
        from daemon import users
        users.remove_user(self.store, args["name"])
        return {}

    async def vapix(self, args: dict) -> dict:
        """Run one axcall command. The API checked the role already; checking again keeps the
        supervisor safe from any other client of the socket. Commands that need the SIP engine
        await it: other requests, the door and the event log go on meanwhile."""
        command = lookup(str(args.get("action", "")))
        role = args.get("role", "admin")
        if role not in ("viewer", "operator", "admin") or not role_allows(role, command.role):
            raise not_authorized()
        params = args.get("params")
        ctx = Context(store=self.store, runtime=self.runtime, lenient=bool(args.get("lenient")))
        try:
            # The spec's pseudocode passes some lists bare (SetDTMFEvents([...])): handlers accept them.
            return await invoke(command, ctx, params if isinstance(params, (dict, list)) else {})
        except VapixFault:
            raise
        except Exception as e:  # a bug in a handler must not look like success or crash the loop
            self.log.exception("axcall:%s failed", command.name)
            raise action_failed(f"Internal error in {command.name}") from e

    async def events_wait(self, args: dict) -> dict:
        """Long-poll: events with seq > after, waiting up to `wait` seconds for the first one."""
        try:
            after, wait, limit = int(args.get("after", 0)), float(args.get("wait", 0)), int(args.get("limit", 100))
        except (TypeError, ValueError, OverflowError):
            raise action_failed("after, wait and limit must be numbers") from None
        if wait != wait:       # NaN
            raise action_failed("wait must be a number")
        return await self.sink.wait_after(after, wait, limit)


async def serve(state_dir: Path, options: dict, log: logging.Logger) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        station = open_station(state_dir, loop, log, options)
    except StoreError as e:
        log.error("%s", e)
        return EXIT_CONFIG
    except StationConfigError as e:
        log.error("configuration error: %s", e)
        return EXIT_CONFIG
    except AlreadyRunning as e:
        log.error("%s", e)
        return EXIT_FAILURE       # systemd tries again later: the other one may have ended by then
    supervisor = Supervisor(station, control_socket_path(state_dir), log)
    watchdog_task = None
    try:
        await supervisor.server.start()
        if station.audio_streams is not None:
            await station.audio_streams.start()
        station.start()
        sdnotify.notify("READY=1")
        log.info("supervisor ready (pid %d, state %s)", os.getpid(), state_dir)
        watchdog = sdnotify.watchdog_interval()
        watchdog_task = loop.create_task(_watchdog(station.runtime, watchdog, log)) if watchdog else None
        await stop.wait()
        log.info("supervisor stopping")
        sdnotify.notify("STOPPING=1")
    finally:
        station.stop_answering()      # before the control socket closes: no kept answer outlives it
        if watchdog_task:
            watchdog_task.cancel()
        await supervisor.server.stop()
        if station.audio_streams is not None:
            await station.audio_streams.stop()
        station.close()
    return EXIT_OK


async def _watchdog(runtime, interval: float, log: logging.Logger) -> None:
    """Keep systemd's watchdog fed only while the SIP engine thread is alive and turning."""
    while True:
        await asyncio.sleep(interval)
        age = runtime.heartbeat_age()
        if age < max(2 * interval, 5.0):
            sdnotify.notify("WATCHDOG=1")
        else:
            log.error("SIP engine heartbeat is %.1f s old: not feeding the watchdog", age)


def main(argv: list[str] | None = None) -> int:
    from daemon.fileperms import private_umask, secure_state_dir
    private_umask()
    parser = argparse.ArgumentParser(prog="doorstation-supervisor")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--sip-port", type=int, default=None,
                        help="override SIPPort from the stored SIP configuration")
    parser.add_argument("--sip-bind", default=os.environ.get("DOORSTATION_SIP_BIND", ""),
                        help="address the SIP transports bind to (default: all)")
    parser.add_argument("--log-level", default=os.environ.get("DOORSTATION_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    secure_state_dir(args.state_dir)      # 0700, secrets 0600, whoever started us
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s supervisor %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("doorstation")
    options = {"sip_port": args.sip_port, "sip_bind": args.sip_bind}
    return asyncio.run(serve(Path(args.state_dir).resolve(), options, log))
