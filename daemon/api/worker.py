"""gunicorn worker for the door station: gevent (one greenlet per connection, not one thread) plus
what a hostile LAN needs, all answered with VAPIX fault JSON instead of gunicorn's HTML:

- connection caps per client address (429) and in total (503), checked before a byte is read;
  when the total is reached, the connection that has waited longest for a request head gives way
  to the new one (see _evict_waiting), so holding idle connections from many addresses cannot
  lock a door-opening client out;
- a deadline for the request line + headers (408; an idle keep-alive connection is just closed),
  one for the whole body (408) and one per write to a client that does not read;
- gunicorn's own parse errors (bad request line 400, too-large headers 431, ...) as faults;
- HTTPS on the listeners named in DOORSTATION_TLS_PORTS (cert/key in DOORSTATION_TLS_CERT/KEY), so
  one process (one set of Digest nonce counts) serves HTTP and HTTPS; the WSGI environ says which
  (wsgi.url_scheme), from the socket, never from a client's X-Forwarded-Proto.

Run: gunicorn --worker-class daemon.api.lazy_worker.LazyStationWorker ... (daemon/cli.py builds the
command; the lazy class keeps gevent out of gunicorn's master and becomes this one in the worker).
Limits come from the environment (daemon.api.limits.Limits.from_env).
"""
from __future__ import annotations

import errno
import json
import os
import socket
import ssl
import time

import gevent
from gunicorn.http import errors as http_errors
from gunicorn.workers.ggevent import GeventWorker

from daemon.api.limits import BodyTimeout, ConnectionCounter, Limits, request_timeout
from daemon.faults import VapixFault

TLS_PORTS_ENV = "DOORSTATION_TLS_PORTS"
TLS_CERT_ENV = "DOORSTATION_TLS_CERT"
TLS_KEY_ENV = "DOORSTATION_TLS_KEY"
REFUSE_LINGER = 0.2  # s: how long a refused connection may keep sending before we close it


class HeaderTimeout(gevent.Timeout):
    """The request line and headers did not arrive within Limits.header_timeout."""


class DeadlineSocket:
    """The client socket as gunicorn's parser and response see it: reads past `deadline` (set for
    the body) fail with BodyTimeout, a write that times out is a broken pipe (closed quietly),
    and it counts the bytes received since the last response was written (to tell a half-sent
    request from an idle keep-alive).

    It also sends a response's head together with the first piece of its body: gunicorn writes
    them separately, and the second send() was 11 % of the worker's CPU under bench/api.py. The
    head is held only until the next write, read or close, so nothing waits on it."""

    def __init__(self, sock: socket.socket, send_timeout: float):
        self._sock = sock
        self._send_timeout = send_timeout
        self._head = b""
        self.deadline: float | None = None
        self.pending = 0
        self.tls = False                # served on an HTTPS listener (set by the worker)
        self.slot: _Slot | None = None  # the worker's record of this connection
        sock.settimeout(send_timeout)

    @property
    def raw(self) -> socket.socket:
        """The socket itself, for a connection taken over by a WebSocket stream."""
        return self._sock

    def flush(self) -> None:
        if self._head:
            head, self._head = self._head, b""
            self._send(head)

    def recv(self, size: int) -> bytes:
        self.flush()
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise BodyTimeout("request body deadline passed")
            self._sock.settimeout(min(left, self._send_timeout))
        try:
            data = self._sock.recv(size)
        except TimeoutError:
            if self.deadline is not None:
                raise BodyTimeout("request body deadline passed") from None
            raise
        finally:
            if self.deadline is not None:
                self._sock.settimeout(self._send_timeout)
        self.pending += len(data)
        return data

    def sendall(self, data) -> None:
        data = bytes(data)
        if not self._head and data.startswith(b"HTTP/1.") and data.endswith(b"\r\n\r\n"):
            self._head = data  # a response head: wait for its body (or anything else)
            return
        if self._head:
            data, self._head = self._head + data, b""
        self._send(data)

    def _send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except TimeoutError:
            raise BrokenPipeError(errno.EPIPE, "client does not read its response") from None
        self.pending = 0

    def close(self) -> None:
        try:
            self.flush()
        except OSError:
            pass
        finally:
            self._sock.close()

    def shutdown(self, how: int) -> None:
        try:
            self.flush()
        except OSError:
            pass
        self._sock.shutdown(how)

    def setblocking(self, flag: bool) -> None:
        # gunicorn asks for blocking mode; "blocking" here means blocking with our timeout.
        if flag:
            self._sock.settimeout(self._send_timeout)
        else:
            self._sock.setblocking(False)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class _Slot:
    """One admitted connection: its counted address, the socket to shut if it is evicted."""
    __slots__ = ("address", "sock", "evicted")

    def __init__(self, address: str, sock):
        self.address, self.sock, self.evicted = address, sock, False


# gunicorn's parse errors -> (HTTP status, VAPIX subcode). Anything else a client can cause is 400.
_CLIENT_ERRORS: list[tuple[type, int, str]] = [
    (http_errors.LimitRequestHeaders, 431, "ter:HeadersTooLarge"),
    (http_errors.LimitRequestLine, 414, "ter:URITooLong"),
    (http_errors.UnsupportedTransferCoding, 501, "ter:NotSupported"),
    (http_errors.ExpectationFailed, 417, "ter:MalformedRequest"),
    (http_errors.ForbiddenProxyRequest, 403, "ter:OperationProhibited"),
]


def fault_for_parse_error(exc: BaseException) -> VapixFault | None:
    """The fault for an error gunicorn raised while reading a request; None if it is not the
    client's doing (then it is a bug: 500)."""
    if isinstance(exc, http_errors.ParseException) or isinstance(exc, ssl.SSLError):
        status, subcode = next(((status, subcode) for kind, status, subcode in _CLIENT_ERRORS
                                if isinstance(exc, kind)), (400, "ter:MalformedRequest"))
        reason = f"Bad request: {type(exc).__name__}: {str(exc)[:120]}"
        return VapixFault("env:Sender", "ter:InvalidArgs", subcode, reason, http_status=status)
    return None


def fault_response(fault: VapixFault) -> bytes:
    body = json.dumps(fault.to_dict()).encode()
    head = (f"HTTP/1.1 {fault.http_status} {_REASONS.get(fault.http_status, 'Error')}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n")
    if fault.http_status in (429, 503):
        head += "Retry-After: 1\r\n"
    return (head + "\r\n").encode("latin-1") + body


_REASONS = {400: "Bad Request", 403: "Forbidden", 408: "Request Timeout", 414: "URI Too Long",
            417: "Expectation Failed", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable"}


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["http/1.1"])
    return context


def parse_ports(text: str) -> frozenset[int]:
    return frozenset(int(p) for p in text.replace(",", " ").split() if p)


class StationWorker(GeventWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._setup()

    @classmethod
    def adopt(cls, worker) -> None:
        """Turn a daemon.api.lazy_worker.LazyStationWorker (built by gunicorn's master, which then
        never imports gevent) into this class, in the forked worker process."""
        worker.__class__ = cls
        worker.worker_connections = worker.cfg.worker_connections  # AsyncWorker.__init__'s part
        worker._setup()

    def _setup(self) -> None:
        self.limits = Limits.from_env()
        self.connections = ConnectionCounter(self.limits.max_connections, self.limits.max_per_address)
        # connections waiting for a request head (TLS handshake, first request, idle keep-alive),
        # oldest first; a connection inside a request (a long-poll, a WebSocket stream) is not here
        self.waiting: dict[_Slot, None] = {}
        self.tls_ports = parse_ports(os.environ.get(TLS_PORTS_ENV, ""))
        self.tls: ssl.SSLContext | None = None
        # gevent's pool must not be what refuses: our counter answers first, with a fault.
        self.worker_connections: int = max(int(self.worker_connections), self.limits.max_connections + 64)

    def patch(self) -> None:
        super().patch()
        if self.tls_ports:  # after monkey-patching: the context then makes cooperative sockets
            self.tls = tls_context(os.environ[TLS_CERT_ENV], os.environ[TLS_KEY_ENV])

    # -- per connection ------------------------------------------------------------------------
    def handle(self, listener, client, addr) -> None:
        address = addr[0] if isinstance(addr, tuple) and addr else ""
        fault = self.connections.admit(address)
        if fault is not None and fault.http_status == 503 and self._evict_waiting(address):
            fault = self.connections.admit(address)
        if fault is not None:
            self._refuse(client, fault)
            return
        slot = _Slot(address, client)
        self.waiting[slot] = None
        try:
            client.setblocking(1)
            tls = self.tls is not None and listener.getsockname()[1] in self.tls_ports
            if tls:
                client = self._tls_handshake(client, slot)
                if client is None:
                    return
            wrapped = DeadlineSocket(client, self.limits.send_timeout)
            wrapped.tls = tls
            wrapped.slot = slot
            slot.sock = client
            super().handle(listener, wrapped, addr)
        finally:
            self.waiting.pop(slot, None)
            if not slot.evicted:
                self.connections.release(address)

    def _evict_waiting(self, newcomer: str) -> bool:
        """The station is full: shut the connection that has waited longest for a request head
        (a slowloris, a half-open or idle connection; a client mid-request is never chosen) and
        give its place to `newcomer`. Its count is released here, at once, so the new connection
        is admitted without waiting for the old greenlet to notice. False: nothing to evict."""
        victim = next(iter(self.waiting), None)
        if victim is None:
            return False
        del self.waiting[victim]
        victim.evicted = True
        self.connections.release(victim.address)
        try:
            # Shut a duplicate of its descriptor: the connection ends for both (its pending recv
            # sees EOF and gunicorn closes it quietly), whereas gevent's shutdown() of the socket
            # itself would fail that recv with EBADF, which gunicorn logs as a socket error.
            with socket.fromfd(victim.sock.fileno(), socket.AF_INET, socket.SOCK_STREAM) as dup:
                dup.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.log.info("connections full: closed a connection from %s waiting for a request, for %s",
                      victim.address, newcomer)
        return True

    def _refuse(self, client, fault: VapixFault) -> None:
        """Answer before reading, then close gently: closing with the client's request still
        unread would send a reset, and the client could lose the answer."""
        try:
            client.settimeout(REFUSE_LINGER)
            client.sendall(fault_response(fault))
            client.shutdown(socket.SHUT_WR)
            for _ in range(4):  # at most 4 reads of what it sent, within REFUSE_LINGER each
                if not client.recv(4096):
                    break
        except OSError:
            pass
        finally:
            client.close()

    def _tls_handshake(self, client, slot: _Slot):
        assert self.tls is not None             # called for TLS listeners only
        tls_client = self.tls.wrap_socket(client, server_side=True, do_handshake_on_connect=False)
        slot.sock = tls_client                  # wrap_socket took the socket over: evict this one
        try:
            with gevent.Timeout(self.limits.header_timeout, TimeoutError):
                tls_client.do_handshake()
            return tls_client
        except (OSError, TimeoutError) as e:  # ssl.SSLError is an OSError
            self.log.debug("TLS handshake failed: %s", e)
            tls_client.close()
            return None

    # -- per request ---------------------------------------------------------------------------
    def timeout_ctx(self):
        # gunicorn wraps each wait for a request (line + headers) in this.
        return HeaderTimeout(self.limits.header_timeout)

    def handle_request(self, listener_name, req, sock, addr):
        slot = getattr(sock, "slot", None) if isinstance(sock, DeadlineSocket) else None
        if isinstance(sock, DeadlineSocket):
            req.scheme = "https" if sock.tls else "http"
            sock.deadline = time.monotonic() + self.limits.body_timeout
        if slot is not None:
            self.waiting.pop(slot, None)        # in a request: never evicted
        try:
            return super().handle_request(listener_name, req, sock, addr)
        finally:
            if isinstance(sock, DeadlineSocket):
                sock.deadline = None
            if slot is not None and not slot.evicted:
                self.waiting[slot] = None       # waits for its next request: newest in the order
            # Fairness: a keep-alive client whose next request is already buffered would be served
            # again without this greenlet ever yielding, starving the others (measured: p99 of
            # 500-700 ms at 32 connections with p50 at 1 ms). Yield once per request.
            gevent.sleep(0)

    def handle_error(self, req, client, addr, exc) -> None:
        address = addr[0] if isinstance(addr, tuple) and addr else ""
        if isinstance(exc, HeaderTimeout):
            if not getattr(client, "pending", 0):
                return  # an idle keep-alive (or never-used) connection: close without a word
            fault = request_timeout("headers")
        elif isinstance(exc, BodyTimeout):
            fault = request_timeout("body")
        else:
            parsed = fault_for_parse_error(exc)
            if parsed is None:
                self.log.exception("error handling a request from %s", address)
                fault = VapixFault("env:Receiver", "ter:Action", "ter:Failure", "Internal error",
                                   http_status=500)
            else:
                fault = parsed
        if fault.http_status != 500:
            self.log.info("refused a request from %s: %s %s", address, fault.http_status, fault.reason)
        try:
            client.sendall(fault_response(fault))
            # The rest of a bad request is likely unread: drain a little so that closing does
            # not reset the connection under the answer (gunicorn closes it after this).
            client.shutdown(socket.SHUT_WR)
            client.settimeout(REFUSE_LINGER)
            for _ in range(4):
                if not client.recv(4096):
                    break
        except (OSError, BodyTimeout):
            pass

