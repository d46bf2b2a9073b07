"""VAPIX Audio API over HTTP: audio to the speaker and from the microphone, as Axis devices serve it.

    POST /axis-cgi/audio/transmit.cgi   operator   body: Content-Type audio/basic (G.711 mu-law,
        8 kHz) or audio/axis-mulaw-128 (mu-law, 16 kHz); any Content-Length, or chunked, as long as
        the client keeps sending. 200 (empty) when the body ends; 503 when the station already has
        its maximum of transmitters (429 when the client's address has 4 audio streams already);
        415 for another content type.
    GET  /axis-cgi/audio/receive.cgi    viewer     a continuous audio/basic stream (mu-law 8 kHz)
        of the microphone, until the client goes; 503 when the receivers' cap is reached.

Each stream is one greenlet here (gunicorn's gevent worker) and one Unix-socket connection to the
supervisor (daemon/audiostream/protocol.py), which owns the hub and counts the streams (VMS calls).
Transmitters are decoded here (mu-law to the hub's PCM), off the supervisor's loop; receivers get
mu-law 8 kHz that the hub encoded once per frame for all of them.

Bounds: a transmitter that sends nothing for IDLE_S ends its stream (that is how a VMS hangs up);
the whole body may take up to MAX_TRANSMIT_S instead of the usual body deadline; a receiver that
reads slower than real time is dropped by the supervisor (see daemon/audiostream/server.py).
"""
from __future__ import annotations

import socket
import time

import falcon

from daemon.api.axis.jsonapi import ApiError, require_role
from daemon.audiostream import protocol
from hw.g711 import Resampler, mulaw_decode

TRANSMIT_TYPES = {"audio/basic": 8000, "audio/axis-mulaw-128": 16000}
RECEIVE_TYPE = "audio/basic"       # G.711 mu-law 8 kHz, as the hub encodes it
IDLE_S = 5.0               # s without audio from a transmitter (or for a receiver) ends the stream
MAX_TRANSMIT_S = 3600.0    # one transmit request lasts at most this long
CONNECT_TIMEOUT = 5.0
SOCKET_BUFFER = 8192       # bytes asked for (Linux doubles it): ~0.5 s of 16 kHz PCM
READ_BYTES = 320           # mu-law bytes per read: 40 ms at 8 kHz, 20 ms at 16 kHz


class StreamRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def open_stream(path: str, kind: str, peer: str, user: str) -> tuple[socket.socket, int, bytes]:
    """Connect a stream to the supervisor: (socket, hub rate, PCM already received)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # A small send buffer: audio for the speaker waits in the client's TCP connection (flow
    # control), not in ~200 KB (6 s at 16 kHz) of Unix-socket buffer between us and the hub.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
    sock.settimeout(CONNECT_TIMEOUT)
    try:
        sock.connect(path)
        sock.sendall(protocol.encode({"kind": kind, "peer": peer, "user": user}))
        buf = b""
        while b"\n" not in buf and len(buf) <= protocol.MAX_HEADER:
            got = sock.recv(protocol.MAX_HEADER)
            if not got:
                break
            buf += got
        line, _, rest = buf.partition(b"\n")
        reply = protocol.decode(line + b"\n")
    except (OSError, protocol.ProtocolError) as e:
        sock.close()
        raise StreamRefused(503, f"The audio service is not available ({type(e).__name__})") from None
    if not reply.get("ok"):
        sock.close()
        raise StreamRefused(int(reply.get("status", 503)), str(reply.get("reason", "refused")))
    return sock, int(reply["rate"]), rest


def _text(resp: falcon.Response, status: int, message: str) -> None:
    resp.status = falcon.code_to_http_status(status)
    if status in (429, 503):
        resp.set_header("Retry-After", "1")
    resp.content_type = "text/plain"
    resp.text = message + "\n"


def _who(req: falcon.Request) -> tuple[str, str]:
    user = req.context.get("user")
    return str(req.remote_addr or ""), str(getattr(user, "name", "") or "")


class TransmitResource:
    def __init__(self, socket_path: str, idle_s: float = IDLE_S) -> None:
        self.socket_path = socket_path
        self.idle_s = idle_s

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        import gevent
        try:
            require_role(req.context.get("user"), "operator")
        except ApiError as e:
            _text(resp, e.http_status, e.message)
            return
        ctype = (req.content_type or "").split(";", 1)[0].strip().lower()
        rate = TRANSMIT_TYPES.get(ctype)
        if rate is None:
            _text(resp, 415, "Content-Type must be audio/basic or audio/axis-mulaw-128")
            return
        try:
            sock, hub_rate, _ = open_stream(self.socket_path, "transmit", *_who(req))
        except StreamRefused as e:
            _text(resp, e.status, e.reason)
            return
        client = req.env.get("gunicorn.socket")
        # daemon.api.worker.DeadlineSocket: this body is a stream, not a form with a deadline
        if client is not None and hasattr(client, "deadline"):
            client.deadline = time.monotonic() + MAX_TRANSMIT_S
        sock.settimeout(self.idle_s + 2)       # the supervisor's flow control never waits that long
        resampler = Resampler(rate, hub_rate)
        ended_early = False
        try:
            while True:
                try:
                    with gevent.Timeout(self.idle_s):
                        data = req.stream.read(READ_BYTES)
                except gevent.Timeout:
                    ended_early = True          # the client stopped sending without ending
                    break
                if not data:
                    break
                try:
                    sock.sendall(resampler.process(mulaw_decode(data)))
                except OSError:                 # the station ended the stream (TerminateCall)
                    ended_early = True
                    break
            if not ended_early:
                # answer once the speaker has played it all and the stream no longer counts (the
                # supervisor closes its end then), so a client that sends again at once is not 503
                try:
                    sock.shutdown(socket.SHUT_WR)
                    sock.recv(1)
                except OSError:
                    pass
        finally:
            sock.close()
        if ended_early and client is not None:
            try:                                # the rest of the body is not wanted
                client.shutdown(socket.SHUT_RD)
            except OSError:
                pass
        resp.status = falcon.HTTP_200
        resp.content_type = "text/plain"
        resp.text = ""


class ReceiveResource:
    def __init__(self, socket_path: str, idle_s: float = IDLE_S) -> None:
        self.socket_path = socket_path
        self.idle_s = idle_s

    def on_head(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            require_role(req.context.get("user"), "viewer")
        except ApiError as e:
            _text(resp, e.http_status, e.message)
            return
        resp.content_type = RECEIVE_TYPE

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            require_role(req.context.get("user"), "viewer")
        except ApiError as e:
            _text(resp, e.http_status, e.message)
            return
        try:
            sock, _, first = open_stream(self.socket_path, "receive", *_who(req))
        except StreamRefused as e:
            _text(resp, e.status, e.reason)
            return
        sock.settimeout(self.idle_s)
        resp.content_type = RECEIVE_TYPE
        resp.set_header("Cache-Control", "no-cache")
        resp.stream = self._audio(sock, first)

    @staticmethod
    def _audio(sock: socket.socket, first: bytes):
        """The supervisor's mu-law 8 kHz bytes as they come (the hub encodes each frame once for
        every receiver); ends when either side goes."""
        try:
            if first:
                yield first
            while True:
                try:
                    got = sock.recv(8192)
                except OSError:                 # timeout: the hub stopped
                    return
                if not got:
                    return
                yield got
        finally:
            sock.close()


def audio_routes(state_dir: str) -> dict[str, object]:
    from daemon.audiostream import audio_socket_path
    path = str(audio_socket_path(state_dir))
    return {"/axis-cgi/audio/transmit.cgi": TransmitResource(path),
            "/axis-cgi/audio/receive.cgi": ReceiveResource(path)}
