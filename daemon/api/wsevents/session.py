"""One upgraded WebSocket event stream (see stream.py for the request side and the bounds): the
reader is the request's greenlet, the writer its own; wsproto does the framing.

Imported with the first stream: wsproto costs the worker ~5 MiB that a station nobody streams
from does not need.
"""
from __future__ import annotations

import logging
import socket
import time
from collections import deque

import gevent
import gevent.queue
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.utilities import ProtocolError, generate_accept_token

from daemon.api.wsevents import configure
from daemon.api.wsevents.hub import StreamQueue, WsEventHub

MAX_MESSAGE = 65536           # bytes of one client message (an events:configure is far smaller)
WRITE_TIMEOUT = 10.0          # s for one message to leave
CLOSE_WAIT = 2.0              # s for our close frame to leave before the socket is shut
READ_CHUNK = 4096
MAX_MESSAGES = 16             # client messages per MESSAGE_WINDOW s; more: closed (1008). Clients
MESSAGE_WINDOW = 10.0         # configure once or twice; each answer costs the shared worker's CPU
MAX_PINGS = 64                # client pings per MESSAGE_WINDOW (libraries ping every 20 s or so)
SEND_BUFFER = 32768           # SO_SNDBUF: a client that stops reading fills its queue soon
_STOP = object()


def accept_token(key: str) -> str:
    """Sec-WebSocket-Accept for the client's Sec-WebSocket-Key."""
    return generate_accept_token(key.encode("ascii")).decode("ascii")


class StreamSession:
    """One upgraded connection: the reader is the request's greenlet, the writer its own."""

    def __init__(self, raw, hub: WsEventHub, log: logging.Logger, peer: str, user: str, queue_size: int,
                 configure_timeout: float, idle_timeout: float):
        self.raw = raw
        self.configure_timeout, self.idle_timeout = configure_timeout, idle_timeout
        self.hub = hub
        self.log = log
        self.peer = peer
        self.user = user
        self.conn = Connection(ConnectionType.SERVER)
        self.stream = StreamQueue(queue_size, self._dropped)
        self.configured = False
        self.ended: str | None = None

    def run(self) -> None:
        try:
            self.raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        except OSError:
            pass
        self.hub.subscribe(self.stream)
        writer = gevent.spawn(self._write_loop)
        self.log.info("event stream (WebSocket) to %s for %s", self.peer, self.user)
        try:
            self._read_loop()
        finally:
            self.hub.unsubscribe(self.stream)
            writer.join(CLOSE_WAIT)
            writer.kill(block=False)
            self._shut()
            self.log.info("event stream (WebSocket) to %s ended: %s", self.peer,
                          self.stream.dropped or self.ended or "closed")

    # -- reading -------------------------------------------------------------------------------
    def _read_loop(self) -> None:
        started = time.monotonic()
        parts: list[str] = []
        size = 0
        recent: deque[float] = deque(maxlen=MAX_MESSAGES)   # when the last messages arrived
        pings: deque[float] = deque(maxlen=MAX_PINGS)       # ... and the last pings
        while self.stream.dropped is None:
            wait = self.idle_timeout if self.configured else self.configure_timeout - (time.monotonic() - started)
            data = None
            with gevent.Timeout(max(wait, 0.0), False):
                data = self.raw.recv(READ_CHUNK)
            if data is None:
                self._close(1008 if not self.configured else 1001,
                            "no events:configure in time" if not self.configured else "idle")
                return
            if not data:
                self.ended = "the client went away"
                self.stream.put(_STOP)      # the writer ends now: its stream slot is free at once
                return
            try:
                self.conn.receive_data(data)
                for event in self.conn.events():
                    if isinstance(event, TextMessage):
                        size += len(event.data.encode("utf-8", "surrogatepass"))
                        if size > MAX_MESSAGE:
                            self._close(1009, f"messages are at most {MAX_MESSAGE} bytes")
                            return
                        parts.append(event.data)
                        if event.message_finished:
                            now = time.monotonic()
                            if len(recent) == MAX_MESSAGES and now - recent[0] < MESSAGE_WINDOW:
                                self._close(1008, f"over {MAX_MESSAGES} messages in {MESSAGE_WINDOW:.0f} s")
                                return
                            recent.append(now)
                            self._handle("".join(parts))
                            parts, size = [], 0
                    elif isinstance(event, BytesMessage):
                        self._close(1003, "text messages only")
                        return
                    elif isinstance(event, Ping):
                        # a client that reads its pongs is never dropped for a full queue
                        now = time.monotonic()
                        if len(pings) == MAX_PINGS and now - pings[0] < MESSAGE_WINDOW:
                            self._close(1008, f"over {MAX_PINGS} pings in {MESSAGE_WINDOW:.0f} s")
                            return
                        pings.append(now)
                        self.stream.put(event.response())
                    elif isinstance(event, CloseConnection):
                        self.ended = f"the client closed ({event.code})"
                        self.stream.put(event.response())
                        self.stream.put(_STOP)
                        return
            except ProtocolError as e:
                self._close(1002, str(e)[:100])
                return
            # gevent's recv() returns at once while the client keeps data coming, without ever
            # switching: a client streaming configures (each one answered) kept this greenlet
            # running and starved every other connection, the door's included. Yield per chunk.
            gevent.sleep(0)

    def _handle(self, text: str) -> None:
        try:
            request = configure.parse(text)
        except configure.ConfigureError as e:
            self.stream.put(configure.error_answer(e))
            return
        self.hub.configure(self.stream, request.filters, configure.answer(request))
        self.configured = True

    def _close(self, code: int, reason: str) -> None:
        self.ended = reason
        self.stream.put(CloseConnection(code, reason[:100]))
        self.stream.put(_STOP)

    # -- writing -------------------------------------------------------------------------------
    def _write_loop(self) -> None:
        queue = self.stream.queue
        while self.stream.dropped is None:
            try:
                item = queue.get(timeout=self.idle_timeout / 3)
            except gevent.queue.Empty:
                item = Ping(b"")
            if item is _STOP:
                return
            try:
                data = self.conn.send(TextMessage(item) if isinstance(item, str) else item)
            except ProtocolError:
                return                  # closing already: nothing more goes out
            sent = False
            try:
                with gevent.Timeout(WRITE_TIMEOUT, False):
                    self.raw.sendall(data)
                    sent = True
            except OSError as e:
                self.stream.drop(f"write failed: {e}")
                return
            if not sent:
                self.stream.drop(f"slow client: a message took over {WRITE_TIMEOUT:.0f} s to leave")
                return

    def _dropped(self, reason: str) -> None:
        """The hub or the writer gave up on this client: never wait for it. Shutting the socket
        ends the reader's recv and any blocked write at once."""
        self.log.warning("dropped the event stream (WebSocket) to %s: %s", self.peer, reason)
        self._shut()

    def _shut(self) -> None:
        try:
            self.raw.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
