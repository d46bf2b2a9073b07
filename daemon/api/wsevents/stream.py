"""`GET /vapix/ws-data-stream?sources=events` with `Upgrade: websocket`: Axis event streaming over
WebSocket, served by the gunicorn gevent worker on the API's own port (HTTP and HTTPS alike).

The upgrade request goes through Falcon like any other (the authenticator, or a wssession token:
tokens.py), then this resource answers 101 on the worker's socket and runs the stream in the
request's greenlet; the WSGI wrapper `with_websockets` then tells gunicorn the connection is
handled. wsproto does the framing (no threads, no event loop of its own: it only turns bytes into
events and back); one greenlet reads, one writes.

Bounds (hostile LAN): streams per address and in total (429/503 before the upgrade), a bounded
queue per stream (full: the stream is dropped, never waited for), client messages of at most
MAX_MESSAGE bytes (1009) and at most MAX_MESSAGES of them per MESSAGE_WINDOW (1008), the reader
yielding after every chunk (a flooding client cannot starve the worker), `events:configure`
within CONFIGURE_TIMEOUT (1008), a ping after a third of IDLE_TIMEOUT with nothing to send and
nothing heard for IDLE_TIMEOUT closes it (1001),
a write that cannot finish within WRITE_TIMEOUT drops it. The Origin header is never a
credential: a browser page from another origin may only use a wssession token (which that page
cannot read), not the browser's cached Digest/Basic credentials.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import socket
import time
from collections import deque
from urllib.parse import urlsplit

import falcon
import gevent
import gevent.queue
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.utilities import ProtocolError, generate_accept_token

from daemon.api.limits import ConnectionCounter, station_busy, too_many_connections
from daemon.api.wsevents import configure
from daemon.api.wsevents.hub import StreamQueue, WsEventHub
from daemon.faults import VapixFault, invalid_arg, unavailable

PATH = "/vapix/ws-data-stream"
HANDLED_KEY = "doorstation.websocket.handled"
MAX_MESSAGE = 65536           # bytes of one client message (an events:configure is far smaller)
CONFIGURE_TIMEOUT = 30.0      # s from the upgrade to the first events:configure (Limits overrides)
IDLE_TIMEOUT = 60.0           # s without any frame from the client, pongs included (Limits overrides);
                              # a ping goes out after a third of it with nothing to send
WRITE_TIMEOUT = 10.0          # s for one message to leave
CLOSE_WAIT = 2.0              # s for our close frame to leave before the socket is shut
READ_CHUNK = 4096
MAX_MESSAGES = 16             # client messages per MESSAGE_WINDOW s; more: closed (1008). Clients
MESSAGE_WINDOW = 10.0         # configure once or twice; each answer costs the shared worker's CPU
MAX_PINGS = 64                # client pings per MESSAGE_WINDOW (libraries ping every 20 s or so)
SEND_BUFFER = 32768           # SO_SNDBUF: a client that stops reading fills its queue soon
_STOP = object()


class WsEventStreamResource:
    def __init__(self, hub: WsEventHub, counter: ConnectionCounter, queue_size: int,
                 log: logging.Logger | None = None, configure_timeout: float = CONFIGURE_TIMEOUT,
                 idle_timeout: float = IDLE_TIMEOUT, per_user: ConnectionCounter | None = None):
        self.hub = hub
        self.counter = counter
        # streams per user name: one viewer's password used from many addresses cannot take
        # every stream (the per-address cap alone allowed it from 8 addresses)
        self.per_user = per_user
        self.queue_size = queue_size
        self.timeouts = (configure_timeout, idle_timeout)
        self.log = log or logging.getLogger("doorstation.api.ws")

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            key = self._check_request(req)
        except VapixFault as fault:
            _reply(resp, fault)
            if fault.http_status == 426:
                resp.set_header("Sec-WebSocket-Version", "13")
            return
        sock = req.env.get("gunicorn.socket")
        if sock is None:
            _reply(resp, VapixFault("env:Receiver", "ter:ActionNotSupported", "ter:NotSupported",
                                    "WebSocket needs the station's gunicorn worker", http_status=501))
            return
        peer = req.remote_addr or ""
        user = req.context.get("user")
        name = getattr(user, "name", "?")
        if self.per_user is not None and self.per_user.admit(name) is not None:
            _reply(resp, too_many_connections(name, "event streams of this user"))
            return
        refused = self.counter.admit(peer)
        if refused is not None:
            if self.per_user is not None:
                self.per_user.release(name)
            _reply(resp, too_many_connections(peer, "event streams") if refused.http_status == 429
                   else station_busy("event streams"))
            return
        try:
            if not self.hub.wait_ready():
                _reply(resp, unavailable("The door station service is not reachable yet"))
                return
            raw = getattr(sock, "raw", sock)       # daemon.api.worker.DeadlineSocket: the socket itself
            if hasattr(sock, "deadline"):
                sock.deadline = None                # the request body deadline does not apply any more
            raw.settimeout(None)                    # every wait below has its own gevent.Timeout
            accept = generate_accept_token(key.encode("ascii")).decode("ascii")
            raw.sendall((f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode("ascii"))
            req.env[HANDLED_KEY] = True
            StreamSession(raw, self.hub, self.log, peer, name, self.queue_size, *self.timeouts).run()
        except OSError as e:
            req.env[HANDLED_KEY] = True
            self.log.info("event stream to %s ended: %s", peer, e)
        finally:
            self.counter.release(peer)
            if self.per_user is not None:
                self.per_user.release(name)

    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Not an upgrade (and not the GET of daemon.api.app.with_head: a HEAD never streams)."""
        _reply(resp, VapixFault("env:Sender", "ter:InvalidArgs", "ter:MalformedRequest",
                                "A WebSocket upgrade is a GET", http_status=426))
        resp.set_header("Sec-WebSocket-Version", "13")

    def _check_request(self, req: falcon.Request) -> str:
        sources = [s.strip() for s in (req.get_param("sources") or "").split(",") if s.strip()]
        if sources != ["events"]:
            raise invalid_arg("sources", "This station streams sources=events only")
        if (req.get_header("Upgrade") or "").lower() != "websocket" or "upgrade" not in [
                t.strip().lower() for t in (req.get_header("Connection") or "").split(",")]:
            raise VapixFault("env:Sender", "ter:InvalidArgs", "ter:MalformedRequest",
                             "A WebSocket upgrade is expected here", http_status=426)
        if req.get_header("Sec-WebSocket-Version") != "13":
            raise VapixFault("env:Sender", "ter:InvalidArgs", "ter:MalformedRequest",
                             "WebSocket version 13 only", http_status=426)
        key = req.get_header("Sec-WebSocket-Key") or ""
        try:
            if len(key) != 24 or len(base64.b64decode(key, validate=True)) != 16:
                raise ValueError
        except (ValueError, binascii.Error):
            raise invalid_arg("Sec-WebSocket-Key", "Sec-WebSocket-Key is not 16 bytes in base64") from None
        origin = req.get_header("Origin")
        if origin and not req.context.get("via_token") and not _same_origin(origin, req):
            raise VapixFault("env:Sender", "ter:NotAuthorized", "ter:OperationProhibited",
                             "A page of another origin must use a wssession token", http_status=403)
        return key


def _same_origin(origin: str, req: falcon.Request) -> bool:
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.netloc.lower() == (req.get_header("Host") or "").lower()


def _reply(resp: falcon.Response, fault: VapixFault) -> None:
    resp.status = fault.http_status
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps(fault.to_dict())
    if fault.http_status in (429, 503):
        resp.set_header("Retry-After", "1")


class StreamSession:
    """One upgraded connection: the reader is the request's greenlet, the writer its own."""

    def __init__(self, raw, hub: WsEventHub, log: logging.Logger, peer: str, user: str, queue_size: int,
                 configure_timeout: float = CONFIGURE_TIMEOUT, idle_timeout: float = IDLE_TIMEOUT):
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


def with_websockets(app):
    """The WSGI app gunicorn serves: after an upgraded request, tell gunicorn's worker the
    connection is handled (it writes no response of its own; the socket is shut, so its
    keep-alive loop ends at once)."""
    from gunicorn.workers.base_async import ALREADY_HANDLED

    def wsgi(environ, start_response):
        result = app(environ, start_response)
        if environ.get(HANDLED_KEY):
            close = getattr(result, "close", None)
            if close is not None:
                close()
            return ALREADY_HANDLED
        return result

    return wsgi
