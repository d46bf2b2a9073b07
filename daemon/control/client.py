"""API-side client of the supervisor's control socket: a bounded pool of connections, one request
at a time on each.

Cooperative under gevent: the API's gunicorn worker monkey-patches `socket` and `threading`, so
every wait here (connect, send, reply, a free connection) yields to the other greenlets instead of
blocking the worker; the same code blocks a plain thread in the CLI.

A request borrows an idle connection (or opens one while fewer than `max_connections` are open),
and gives it back after the reply; a long-poll holds one for its whole wait. Failures to reach the
supervisor become faults.unavailable() (HTTP 503) at once: connecting to a Unix socket nobody
listens on fails immediately, a supervisor that accepted but does not answer is given `timeout`
seconds, and a pool with every connection busy for `timeout` seconds answers 503 too.
"""
from __future__ import annotations

import itertools
import socket
import threading

from daemon.control import protocol
from daemon.faults import VapixFault, unavailable


class ControlError(Exception):
    """The supervisor answered with an error that is not a VAPIX fault (a bug or a bad request)."""


class ControlClient:
    def __init__(self, socket_path: str, timeout: float = 5.0, connect_timeout: float = 0.5,
                 max_connections: int = 256):
        self.socket_path = str(socket_path)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_connections = max_connections
        self._idle: list[socket.socket] = []   # LIFO: the most recently used stays warm
        self._open = 0
        self._cond = threading.Condition()
        self._ids = itertools.count(1)

    def request(self, command: str, args: dict | None = None, timeout: float | None = None):
        """Send one request and return the reply's data; raise VapixFault or ControlError."""
        message = {"id": next(self._ids), "command": command, "args": args or {}}
        frame = protocol.encode(message)
        sock: socket.socket | None
        sock, reused = self._acquire()
        healthy = False
        try:
            try:
                sock.sendall(frame)
            except OSError as e:
                if not reused:
                    raise unavailable(f"The door station service is not reachable: {e}") from e
                # The supervisor restarted since this connection was last used; nothing was
                # delivered, so one retry on a new connection is safe.
                self._discard(sock)
                sock = None
                sock, reused = self._acquire(fresh=True)
                try:
                    sock.sendall(frame)
                except OSError as e:
                    raise unavailable(f"The door station service is not reachable: {e}") from e
            try:
                sock.settimeout(timeout if timeout is not None else self.timeout)
                reply = self._read_frame(sock)
            except (OSError, protocol.ProtocolError) as e:
                raise unavailable(f"The door station service did not answer: {e}") from e
            if reply.get("id") != message["id"]:
                raise unavailable("The door station service answered out of turn")
            healthy = True
        finally:
            if sock is not None:
                (self._release if healthy else self._discard)(sock)
        if reply.get("ok"):
            return reply.get("data")
        error = reply.get("error") or {}
        if error.get("kind") == "fault":
            raise VapixFault.from_wire(error.get("fault") or {})
        raise ControlError(str(error.get("message", "unknown error")))

    def close(self) -> None:
        """Close the idle connections (busy ones close when their request ends)."""
        with self._cond:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for sock in idle:
            sock.close()

    @property
    def open_connections(self) -> int:
        return self._open

    def _acquire(self, fresh: bool = False) -> tuple[socket.socket, bool]:
        """(connection, reused?): an idle one, else a new one within the cap, else wait."""
        with self._cond:
            if not self._cond.wait_for(lambda: (self._idle and not fresh)
                                       or self._open < self.max_connections, self.timeout):
                raise unavailable("The door station service is busy (all control connections in use)")
            if self._idle and not fresh:
                return self._idle.pop(), True
            self._open += 1  # reserved before connecting, so the cap holds while we wait
        try:
            return self._connect(), False
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.connect_timeout)
        try:
            sock.connect(self.socket_path)
        except OSError as e:
            sock.close()
            raise unavailable("The door station service is not running") from e
        return sock

    def _release(self, sock: socket.socket) -> None:
        with self._cond:
            self._idle.append(sock)
            self._cond.notify()

    def _discard(self, sock: socket.socket) -> None:
        sock.close()
        with self._cond:
            self._open -= 1
            self._cond.notify()

    @staticmethod
    def _read_frame(sock: socket.socket) -> dict:
        """One reply frame. Replies are small: the first recv() usually brings the whole frame
        (one system call instead of two for header and body)."""
        data = b""
        while len(data) < protocol.HEADER.size:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by the supervisor")
            data += chunk
        length = protocol.frame_length(data[:protocol.HEADER.size])
        chunks, have = [data[protocol.HEADER.size:]], len(data) - protocol.HEADER.size
        while have < length:
            chunk = sock.recv(min(length - have, 1 << 20))
            if not chunk:
                raise ConnectionError("connection closed by the supervisor")
            chunks.append(chunk)
            have += len(chunk)
        if have > length:  # one request at a time: nothing may follow the reply
            raise protocol.ProtocolError("the supervisor sent more than one reply")
        return protocol.decode(b"".join(chunks))
