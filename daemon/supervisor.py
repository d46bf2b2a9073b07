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
from daemon.store import Store, StoreError

EXIT_OK = 0
EXIT_CONFIG = 2      # bad configuration: systemd should not restart in a loop (RestartPreventExitStatus)
EXIT_FAILURE = 1

MAX_EVENT_WAIT = 30.0


def control_socket_path(state_dir: str | os.PathLike) -> Path:
    return Path(state_dir) / "run" / "control.sock"


class Supervisor:
    def __init__(self, store: Store, runtime, socket_path: str | os.PathLike, log: logging.Logger):
        self.store = store
        self.runtime = runtime
        self.log = log
        self._events_changed = asyncio.Condition()
        self.server = ControlServer(str(socket_path), self._handlers(), log)

    def _handlers(self) -> dict:
        from daemon import device, users
        return {
            "ping": lambda args: {"pid": os.getpid()},
            "vapix": self.vapix,
            "events.wait": self.events_wait,
            "status": lambda args: self.runtime.status(),
            "door.open": lambda args: self.runtime.door_open(cause={"api": str(args.get("user", "cli"))}),
            "press": lambda args: self.runtime.press(),
            "door.bindings": lambda args: self.runtime.relay_bindings(),
            "door.bindings.set": lambda args: self.runtime.set_relay_bindings(args.get("DTMFEventIds")),
            "user.add": lambda args: (users.add_user(self.store, args["name"], args["role"], args["password"],
                                                     replace=bool(args.get("replace"))), {})[1],
            "user.remove": lambda args: (users.remove_user(self.store, args["name"]), {})[1],
            "user.list": lambda args: users.list_users(self.store),
            **device.control_handlers(self.runtime, self.store),
        }

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
        from daemon.events import read_after
        try:
            after = min(max(0, int(args.get("after", 0))), 2**63 - 1)
            wait = min(max(0.0, float(args.get("wait", 0))), MAX_EVENT_WAIT)
            limit = min(max(1, int(args.get("limit", 100))), 1000)
        except (TypeError, ValueError):
            raise action_failed("after, wait and limit must be numbers") from None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        async with self._events_changed:
            while True:
                events = read_after(self.store, after, limit)
                left = deadline - loop.time()
                if events or left <= 0:
                    break
                try:
                    await asyncio.wait_for(self._events_changed.wait(), left)
                except asyncio.TimeoutError:
                    pass
        return {"events": events, "next": events[-1]["seq"] if events else after}

    def events_appended(self) -> None:
        """Called on the loop thread by the runtime after it committed new events."""
        async def wake() -> None:
            async with self._events_changed:
                self._events_changed.notify_all()
        asyncio.get_running_loop().create_task(wake())


async def serve(state_dir: Path, options: dict, log: logging.Logger) -> int:
    from daemon.runtime import build_runtime, RuntimeConfigError
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    try:
        store = Store.open(state_dir)
    except StoreError as e:
        log.error("%s", e)
        return EXIT_CONFIG
    supervisor = None
    runtime = None
    try:
        runtime = build_runtime(store=store, state_dir=state_dir, loop=loop, log=log, options=options,
                                events_appended=lambda: supervisor.events_appended())
        supervisor = Supervisor(store, runtime, control_socket_path(state_dir), log)
        await supervisor.server.start()
        runtime.start()
    except RuntimeConfigError as e:
        log.error("configuration error: %s", e)
        if supervisor is not None:
            await supervisor.server.stop()
        if runtime is not None:
            runtime.stop()
        store.close()
        return EXIT_CONFIG
    sdnotify.notify("READY=1")
    log.info("supervisor ready (pid %d, state %s)", os.getpid(), state_dir)

    watchdog = sdnotify.watchdog_interval()
    watchdog_task = loop.create_task(_watchdog(runtime, watchdog, log)) if watchdog else None
    await stop.wait()

    log.info("supervisor stopping")
    sdnotify.notify("STOPPING=1")
    if watchdog_task:
        watchdog_task.cancel()
    await supervisor.server.stop()
    runtime.stop()
    store.close()
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


if __name__ == "__main__":
    sys.exit(main())
