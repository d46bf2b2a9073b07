"""API-side client of the supervisor's control socket (blocking; one connection per thread).

Failures to reach the supervisor become faults.unavailable() (HTTP 503) at once: connecting to a
Unix socket nobody listens on fails immediately, and a supervisor that accepted but does not answer
is given `timeout` seconds.
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
    def __init__(self, socket_path: str, timeout: float = 5.0, connect_timeout: float = 0.5):
        self.socket_path = str(socket_path)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._local = threading.local()
        self._ids = itertools.count(1)

    def request(self, command: str, args: dict | None = None, timeout: float | None = None):
        """Send one request and return the reply's data; raise VapixFault or ControlError."""
        message = {"id": next(self._ids), "command": command, "args": args or {}}
        frame = protocol.encode(message)
        sock = self._connection()
        try:
            sock.sendall(frame)
        except OSError:
            # The supervisor restarted since this thread last used the connection; nothing was
            # delivered, so one retry on a new connection is safe.
            self._drop()
            sock = self._connection()
            try:
                sock.sendall(frame)
            except OSError as e:
                self._drop()
                raise unavailable(f"The door station service is not reachable: {e}") from e
        try:
            sock.settimeout(timeout if timeout is not None else self.timeout)
            reply = self._read_frame(sock)
        except (OSError, protocol.ProtocolError) as e:
            self._drop()
            raise unavailable(f"The door station service did not answer: {e}") from e
        if reply.get("id") != message["id"]:
            self._drop()
            raise unavailable("The door station service answered out of turn")
        if reply.get("ok"):
            return reply.get("data")
        error = reply.get("error") or {}
        if error.get("kind") == "fault":
            raise VapixFault.from_wire(error.get("fault") or {})
        raise ControlError(str(error.get("message", "unknown error")))

    def close(self) -> None:
        self._drop()

    def _connection(self) -> socket.socket:
        sock = getattr(self._local, "sock", None)
        if sock is not None:
            return sock
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.connect_timeout)
        try:
            sock.connect(self.socket_path)
        except OSError as e:
            sock.close()
            raise unavailable("The door station service is not running") from e
        self._local.sock = sock
        return sock

    def _drop(self) -> None:
        sock = getattr(self._local, "sock", None)
        if sock is not None:
            try:
                sock.close()
            finally:
                self._local.sock = None

    @staticmethod
    def _recv_exact(sock: socket.socket, n: int) -> bytes:
        chunks, left = [], n
        while left:
            chunk = sock.recv(min(left, 65536))
            if not chunk:
                raise ConnectionError("connection closed by the supervisor")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _read_frame(self, sock: socket.socket) -> dict:
        length = protocol.frame_length(self._recv_exact(sock, protocol.HEADER.size))
        return protocol.decode(self._recv_exact(sock, length))
