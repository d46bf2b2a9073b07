"""`GET /vapix/ws-data-stream?sources=events` with `Upgrade: websocket`: Axis event streaming over
WebSocket, served by the gunicorn gevent worker on the API's own port (HTTP and HTTPS alike).

The upgrade request goes through Falcon like any other (the authenticator, or a wssession token:
tokens.py), then this resource answers 101 on the worker's socket and runs the stream in the
request's greenlet; the WSGI wrapper `with_websockets` then tells gunicorn the connection is
handled. The upgraded connection itself is session.py: wsproto does the framing (no threads, no
event loop of its own: it only turns bytes into events and back); one greenlet reads, one writes.

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
from urllib.parse import urlsplit

import falcon

from daemon.api.limits import ConnectionCounter, station_busy, too_many_connections
from daemon.api.wsevents.hub import WsEventHub
from daemon.faults import VapixFault, invalid_arg, unavailable

PATH = "/vapix/ws-data-stream"
HANDLED_KEY = "doorstation.websocket.handled"
CONFIGURE_TIMEOUT = 30.0      # s from the upgrade to the first events:configure (Limits overrides)
IDLE_TIMEOUT = 60.0           # s without any frame from the client, pongs included (Limits overrides);
                              # a ping goes out after a third of it with nothing to send


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
            # wsproto (~5 MiB of the worker's memory) is loaded with the first stream, not before.
            from daemon.api.wsevents.session import StreamSession, accept_token
            accept = accept_token(key)
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
