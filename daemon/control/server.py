"""Supervisor-side control socket server (asyncio, runs on the supervisor's loop thread).

Handlers are registered by name; a handler takes the request's args and returns the reply data,
or a coroutine for requests that wait (the events long-poll). Handlers run on the loop thread,
which is what makes the supervisor the single writer of the store.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import os
from typing import Any, Awaitable, Callable

from daemon.control import protocol
from daemon.faults import VapixFault

Handler = Callable[[dict], Any | Awaitable[Any]]



async def start_private_unix_server(serve: Callable, path: str, limit: int) -> asyncio.base_events.Server:
    """A Unix socket server at `path` for the station's own processes: its directory 0750, the
    socket 0660 (owner and group: the API runs as the same user or group), a socket left over
    from a killed supervisor replaced."""
    os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    old_umask = os.umask(0o117)
    try:
        return await asyncio.start_unix_server(serve, path=path, limit=limit)
    finally:
        os.umask(old_umask)

class ControlServer:
    def __init__(self, socket_path: str, handlers: dict[str, Handler], log: logging.Logger):
        self.socket_path = str(socket_path)
        self.handlers = handlers
        self.log = log
        self._server: asyncio.base_events.Server | None = None
        self._clients: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await start_private_unix_server(self._serve, self.socket_path,
                                                       limit=protocol.MAX_MESSAGE + 16)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._clients):
                task.cancel()
            if self._clients:
                await asyncio.wait(list(self._clients), timeout=2)
            await self._server.wait_closed()
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # asyncio.start_server runs each connection in a task of its own
        self._clients.add(task)
        try:
            while True:
                try:
                    header = await reader.readexactly(protocol.HEADER.size)
                    body = await reader.readexactly(protocol.frame_length(header))
                    message = protocol.decode(body)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except protocol.ProtocolError as e:
                    self.log.warning("control: dropping client: %s", e)
                    return
                reply = await self._dispatch(message)
                writer.write(protocol.encode(reply))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._clients.discard(task)
            writer.close()

    async def _dispatch(self, message: dict) -> dict:
        request_id = message.get("id")
        command = message.get("command")
        args = message.get("args") or {}
        handler = self.handlers.get(command) if isinstance(command, str) else None
        if handler is None or not isinstance(args, dict):
            return {"id": request_id, "ok": False,
                    "error": {"kind": "error", "message": f"unknown control command {command!r}"}}
        try:
            result = handler(args)
            if inspect.isawaitable(result):
                result = await result
            return {"id": request_id, "ok": True, "data": result}
        except VapixFault as fault:
            return {"id": request_id, "ok": False, "error": {"kind": "fault", "fault": fault.to_wire()}}
        except Exception as e:  # a bug: report it, keep serving
            self.log.exception("control: %s failed", command)
            return {"id": request_id, "ok": False,
                    "error": {"kind": "error", "message": f"{type(e).__name__}: {e}"}}
