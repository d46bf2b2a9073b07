"""The RTSP event-stream server: `rtsp://host:port/axis-media/media.amp?video=0&audio=0&event=on
[&eventtopic=FILTER]`, Digest auth, RTP over UDP unicast, one ONVIF tt:MetadataStream document
per RTP packet; and the microphone, `?audio=1&video=0` (PCMU over UDP or TCP-interleaved:
daemon/rtsp/audio.py, docs/audio.md), and its backchannel `?simplex=receiver&audio=1&video=0`
(PCMU over TCP-interleaved to the speaker). Written for what Axis clients (PyPI `axis` v60, Home Assistant) expect; see
docs/events.md for why this is a small responder of our own rather than gst-rtsp-server.

Limits (hostile LAN): MAX_CONNECTIONS connections and MAX_PER_ADDRESS of one client address, one
request at a time per connection, heads of at most 8 KiB, unread requests and unread responses
bounded, a connection that has not authenticated within LOGIN_TIMEOUT closed, an idle connection
closed after IDLE_TIMEOUT, a connection closed after
MAX_AUTH_FAILURES wrong passwords (and the address slowed down by the API's FailureLimiter), RTP
sent only to the address of the TCP peer, every stream's queue bounded (hub.Subscriber).
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from daemon.api.auth import FailureLimiter, UserStoreUnavailable
from daemon.api.limits import peer_key
from daemon.axis_events import Notification, TopicFilter, metadata_xml
from daemon.commands.roles import role_allows
from daemon.rtsp.audio import (
    BACKCHANNEL_TAG,
    MAX_BACKCHANNEL_FRAME,
    PCMU_CLOCK,
    PCMU_PAYLOAD_TYPE,
    AudioReceiver,
    AudioTransmitter,
    InterleavedTransport,
    PcmuPacketizer,
    interleaved_frame,
    parse_interleaved,
)
from daemon.rtsp.auth import ConnectionNonce, DigestVerifier, RtspUser
from daemon.rtsp.hub import EventHub, Subscriber
from daemon.rtsp.protocol import (
    METHODS,
    RTP_CLOCK,
    RTP_PAYLOAD_TYPE,
    Request,
    RtpSequence,
    RtspError,
    format_response,
    parse_request,
    parse_transport,
)

MEDIA_PATH = "/axis-media/media.amp"
TRACK = "trackID=1"
CONTROL_PATH = f"{MEDIA_PATH}/{TRACK}"
SESSION_TIMEOUT = 60          # announced; Axis clients send a keep-alive every timeout-5 s
IDLE_TIMEOUT = SESSION_TIMEOUT + 15   # for connections that are not streaming
KEEPALIVE_IDLE = 60                   # TCP keep-alive probes after this many silent seconds
MAX_CONNECTIONS = 64
MAX_PER_ADDRESS = 8           # one LAN host cannot take every connection (the API caps the same way)
LOGIN_TIMEOUT = 15.0          # s from connect to a successful Digest login; clients need well under 1 s
MAX_AUTH_FAILURES = 3
MAX_DATAGRAM = 8192
MAX_UNREAD = 16384            # request bytes buffered but not handled yet (pipelining bound)
MAX_UNSENT = 65536            # response bytes a client has not read; beyond: it is not reading
ABORT_AFTER = 5.0             # seconds a closing connection may take to flush
MAX_UDP_BACKLOG = 256 * 1024  # RTP bytes queued in the shared UDP socket; beyond: drop the stream
AUDIO_TCP_BACKLOG = 16384     # interleaved audio bytes the client has not read (~2 s); beyond: packets dropped
AUDIO_SLOW_CLOSE = 5.0        # seconds of only dropped packets before such a client is closed
SERVER = "doorstation"
PUBLIC = ", ".join(METHODS)


class RtpSender(asyncio.DatagramProtocol):
    """One UDP socket per address family, shared by every stream (RTP only goes out)."""

    def __init__(self):
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def error_received(self, exc) -> None:     # ICMP port unreachable etc.: the stream's keep-alive decides
        pass


class RtspServer:
    def __init__(self, hub: EventHub, verifier: DigestVerifier, log: logging.Logger,
                 limiter: FailureLimiter | None = None, audio_socket: str | None = None):
        self.hub = hub
        self.audio_socket = audio_socket      # the supervisor's audio.sock; None: no audio served
        self.verifier = verifier
        self.log = log
        self.limiter = limiter or FailureLimiter()
        self.connections: set[RtspConnection] = set()
        self._senders: dict[str, RtpSender] = {}
        self._server: asyncio.base_events.Server | None = None

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: RtspConnection(self), host, port, reuse_address=True)
        bind_v6 = ":" in host
        sender = RtpSender()
        local = host if host else ("::" if bind_v6 else "0.0.0.0")
        await loop.create_datagram_endpoint(lambda: sender, local_addr=(local, 0))
        self._senders["v6" if bind_v6 else "v4"] = sender

    @property
    def sockets(self):
        return self._server.sockets if self._server else []

    def sender_for(self, address: str) -> RtpSender | None:
        return self._senders.get("v6" if ":" in address else "v4")

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close("server stopping")
        for sender in self._senders.values():
            if sender.transport is not None:
                sender.transport.close()


class RtspConnection(asyncio.Protocol):
    def __init__(self, server: RtspServer):
        self.server = server
        self.log = server.log
        self.transport: asyncio.Transport       # set by connection_made, which asyncio calls first
        self.peer = ""
        self.peer_key = ""
        self.buffer = bytearray()
        self.nonce = ConnectionNonce()
        self.user: RtspUser | None = None
        self.failures = 0
        self.session_id = ""
        self.filter = TopicFilter()
        self.client_rtp_port = 0
        self.rtp: RtpSequence | None = None
        self.subscriber: Subscriber | None = None
        self.audio_mode = False                            # this session is the microphone (SETUP)
        self.interleaved: InterleavedTransport | None = None
        self.audio: AudioReceiver | None = None
        self.backchannel = False                           # this session sends to the speaker (SETUP)
        self.talk: AudioTransmitter | None = None
        self.skip = 0                                      # bytes left of a client's interleaved frame
        self.audio_drop_since: float | None = None
        self.idle: asyncio.TimerHandle | None = None
        self.login: asyncio.TimerHandle | None = None
        self.opened = time.monotonic()
        self.closed = False

    # -- connection --------------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername") or ("", 0)
        self.peer = peer[0]
        self.peer_key = peer_key(self.peer)
        mine = sum(1 for c in self.server.connections if c.peer_key == self.peer_key)
        if mine < MAX_PER_ADDRESS and len(self.server.connections) >= MAX_CONNECTIONS:
            # Full, with room for this address: the oldest connection that has not logged in gives
            # way (LAN hosts with many addresses could otherwise keep everyone else out by
            # reconnecting every LOGIN_TIMEOUT); logged-in clients are never closed for a newcomer.
            waiting = [c for c in self.server.connections if c.user is None and not c.closed]
            if waiting:
                oldest = min(waiting, key=lambda c: c.opened)
                oldest.close(f"connections full: room for {self.peer}")
                oldest.transport.abort()
                self.server.connections.discard(oldest)
        if len(self.server.connections) >= MAX_CONNECTIONS or mine >= MAX_PER_ADDRESS:
            transport.write(format_response(503, "0", [("Server", SERVER)]))
            transport.close()
            self.closed = True
            return
        self.server.connections.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None and hasattr(socket, "TCP_KEEPIDLE"):
            # a playing stream outlives keep-alive silence (see _touch); dead peers are found here
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
        self._touch()
        # The idle timer restarts with every request, and an unauthenticated OPTIONS is a request:
        # without this deadline a peer with no password could hold connections for ever (each
        # keep-alive 401 resetting the timer), or trickle a head byte by byte for IDLE_TIMEOUT.
        self.login = asyncio.get_running_loop().call_later(LOGIN_TIMEOUT, self._login_deadline)

    def connection_lost(self, exc) -> None:
        self._teardown()
        self.closed = True
        self.server.connections.discard(self)
        if self.idle is not None:
            self.idle.cancel()
        if self.login is not None:
            self.login.cancel()

    def _login_deadline(self) -> None:
        if self.user is None:
            self.close(f"no login within {LOGIN_TIMEOUT:.0f} s")

    def close(self, reason: str) -> None:
        if not self.closed:
            self.log.info("closing RTSP connection from %s: %s", self.peer, reason)
            self.closed = True
            self._teardown()
            self.transport.close()
            # close() first sends what is queued; a peer that does not read is cut off
            asyncio.get_running_loop().call_later(ABORT_AFTER, self.transport.abort)

    def _touch(self) -> None:
        """Restart the idle timer. A playing stream has none: some clients (ffmpeg) send their
        keep-alive only when packets arrive, and a quiet door sends none for hours; a vanished
        peer is found by TCP keep-alive instead, and streams are bounded in number."""
        if self.idle is not None:
            self.idle.cancel()
            self.idle = None
        # audio over UDP keeps the timer: packets flow, so clients send their keep-alives (ffmpeg
        # every 30 s), and one that stops is dropped; interleaved audio lives with its TCP connection
        streaming = self.audio is not None or self.talk is not None
        if self.subscriber is None and not (streaming and self.interleaved is not None):
            self.idle = asyncio.get_running_loop().call_later(IDLE_TIMEOUT, self.close, "idle")

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.buffer += data
        if len(self.buffer) > MAX_UNREAD:
            self.close("too many unhandled request bytes")
            return
        while self.buffer and not self.closed:
            if self.interleaved is not None and not self._skip_interleaved():
                return
            if not self.buffer:
                return
            try:
                request, used = parse_request(bytes(self.buffer))
            except RtspError as e:
                self._write(format_response(e.status, "0", [("Server", SERVER)]))
                self.close(str(e))
                return
            if request is None:
                return
            del self.buffer[:used]
            self._touch()
            self._handle(request)

    def _skip_interleaved(self) -> bool:
        """Drop the client's interleaved frames (RTCP receiver reports: not used). False while a
        frame's header is incomplete."""
        while self.buffer and (self.skip or self.buffer[:1] == b"$"):
            if self.skip:
                n = min(self.skip, len(self.buffer))
                del self.buffer[:n]
                self.skip -= n
                continue
            if len(self.buffer) < 4:
                return False
            length = int.from_bytes(self.buffer[2:4], "big")
            channel = self.interleaved.rtp_channel if self.interleaved is not None else -1
            if self.talk is not None and self.buffer[1] == channel:
                # the backchannel's RTP: whole packets only, of a sane size
                if length > MAX_BACKCHANNEL_FRAME:
                    self.close("oversized backchannel packet")
                    return False
                if len(self.buffer) < 4 + length:
                    return False
                self.talk.feed(bytes(self.buffer[4:4 + length]))
                del self.buffer[:4 + length]
                continue
            self.skip = length
            del self.buffer[:4]
        return True

    def _write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)
            if self.transport.get_write_buffer_size() > MAX_UNSENT:
                self.close("the client does not read its responses")

    def _reply(self, request: Request, status: int, headers: Sequence[tuple[str, str]] = (),
               body: bytes = b"") -> None:
        self._write(format_response(status, request.cseq, [("Server", SERVER), *headers], body))

    # -- requests ----------------------------------------------------------------------------
    def _handle(self, request: Request) -> None:
        try:
            if request.method not in METHODS:
                raise RtspError(501 if request.method.isupper() else 400)
            self._check_url(request)
            if not self._keep_alive(request) and not self._authenticated(request):
                return
            if request.headers.get("require") and not self._backchannel_required(request):
                # RFC 2326 12.32; the ONVIF backchannel tag among them: we do not receive audio
                # over RTSP, and 551 is what ONVIF clients expect then (they retry without it)
                raise RtspError(551, f"Require: {request.headers['require'][:100]}")
            {"OPTIONS": self._options, "GET_PARAMETER": self._options, "DESCRIBE": self._describe,
             "SETUP": self._setup, "PLAY": self._play, "TEARDOWN": self._teardown_request}[request.method](request)
        except RtspError as e:
            extra = [("Public", PUBLIC)] if e.status == 405 else []
            if e.status == 551:
                extra = [("Unsupported", request.headers.get("require", BACKCHANNEL_TAG)[:100])]
            elif e.status == 503 and self.audio_mode:
                extra = [("Retry-After", "1")]
            self._reply(request, e.status, extra)
            if e.close:
                self.close(str(e))

    def _check_url(self, request: Request) -> None:
        if request.url == "*" and request.method == "OPTIONS":
            return
        try:
            parts = urlsplit(request.url)
        except ValueError:
            raise RtspError(400) from None
        if parts.scheme.lower() != "rtsp" or parts.path.rstrip("/") not in (MEDIA_PATH, CONTROL_PATH):
            raise RtspError(404)

    def _keep_alive(self, request: Request) -> bool:
        """OPTIONS/GET_PARAMETER within a playing session are keep-alives; axis v60 sends them
        without credentials (the TCP connection is the authenticated session)."""
        return (request.method in ("OPTIONS", "GET_PARAMETER") and self.user is not None
                and bool(self.session_id) and request.headers.get("session", "").split(";")[0] == self.session_id)

    def _authenticated(self, request: Request) -> bool:
        now = time.time()
        header = request.headers.get("authorization")
        name = self.server.verifier.claimed_name(header)
        if header:        # the API's policy: per address and claimed name (docs/auth.md)
            wait = self.server.limiter.blocked_for(self.peer, name, now)
            if wait > 0:
                self._reply(request, 503, [("Retry-After", str(int(wait) + 1))])
                self.close("too many failed logins")
                return False
        try:
            outcome = self.server.verifier.check(request.method, header, self.nonce, (MEDIA_PATH, CONTROL_PATH))
        except UserStoreUnavailable as e:
            self.log.error("user database unavailable: %s", e)
            raise RtspError(503) from None
        if isinstance(outcome, RtspUser):
            if self.user is not None and outcome.name != self.user.name:
                raise RtspError(403, "another user on this connection", close=True)
            self.user = outcome
            self.server.limiter.success(self.peer, outcome.name)
            return True
        if outcome == "failed":
            self.failures += 1
            self.server.limiter.failure(self.peer, name, now)
        if outcome == "stale":
            self.nonce = ConnectionNonce()
        challenge = self.server.verifier.challenge(self.nonce, outcome == "stale")
        self._reply(request, 401, [("WWW-Authenticate", challenge)])
        if self.failures >= MAX_AUTH_FAILURES:
            self.close("wrong credentials")
        return False

    def _options(self, request: Request) -> None:
        headers = [("Public", PUBLIC)]
        if self.session_id:
            headers.append(("Session", f"{self.session_id};timeout={SESSION_TIMEOUT}"))
        self._reply(request, 200, headers)

    def _stream_query(self, request: Request) -> TopicFilter:
        query = request.query
        if query.get("event", "off") != "on" or query.get("video", "1") != "0" or query.get("audio", "1") != "0":
            raise RtspError(404, "only the event stream (video=0&audio=0&event=on) is served here")
        try:
            return TopicFilter(query.get("eventtopic", ""))
        except ValueError:
            raise RtspError(400) from None

    def _describe(self, request: Request) -> None:
        if self._wants_audio(request):
            self._describe_audio(request)
            return
        self.filter = self._stream_query(request)
        parts = urlsplit(request.url)
        control = urlunsplit((parts.scheme, parts.netloc, CONTROL_PATH, parts.query, ""))
        local = self.transport.get_extra_info("sockname") or ("0.0.0.0", 0)
        family = "IP6" if ":" in local[0] else "IP4"
        sdp = "\r\n".join([
            "v=0", f"o=- {secrets.randbelow(10**9)} 1 IN {family} {local[0]}", "s=Doorstation events",
            f"c=IN {family} {'::' if family == 'IP6' else '0.0.0.0'}", "t=0 0",
            f"m=application 0 RTP/AVP {RTP_PAYLOAD_TYPE}",
            f"a=rtpmap:{RTP_PAYLOAD_TYPE} vnd.onvif.metadata/{RTP_CLOCK}",
            # absolute: axis v60 uses this line as the SETUP URL as it is
            f"a=control:{control}", "a=recvonly", ""]).encode()
        base = urlunsplit((parts.scheme, parts.netloc, MEDIA_PATH + "/", "", ""))
        self._reply(request, 200, [("Content-Base", base), ("Content-Type", "application/sdp")], sdp)

    def _setup(self, request: Request) -> None:
        if self.session_id:
            raise RtspError(459, "one stream per connection")
        if self._wants_audio(request):
            self._setup_audio(request)
            return
        self.filter = self._stream_query(request)
        transport = parse_transport(request.headers.get("transport", ""))
        self.client_rtp_port = transport.rtp_port
        self.session_id = secrets.token_hex(8).upper()
        self.rtp = RtpSequence(secrets.randbits(32), secrets.randbits(16), secrets.randbits(32))
        sender = self.server.sender_for(self.peer)
        server_port = sender.transport.get_extra_info("sockname")[1] if sender and sender.transport else 0
        self._reply(request, 200, [
            ("Transport", f"RTP/AVP;unicast;client_port={transport.rtp_port}-{transport.rtcp_port};"
                          f"server_port={server_port}-{server_port + 1};ssrc={self.rtp.ssrc:08X}"),
            ("Session", f"{self.session_id};timeout={SESSION_TIMEOUT}")])

    def _play(self, request: Request) -> None:
        self._require_session(request)
        if self.audio_mode:
            asyncio.get_running_loop().create_task(self._play_audio(request))
            return
        if self.subscriber is not None:
            self._reply(request, 200, [("Session", f"{self.session_id};timeout={SESSION_TIMEOUT}")])
            return
        sub = Subscriber(self.filter, self._send, self._dropped)
        if not self.server.hub.subscribe(sub):
            raise RtspError(503, "too many event streams, or the supervisor is not reachable yet")
        self.subscriber = sub
        self._touch()
        assert self.rtp is not None and self.user is not None      # SETUP made them (_require_session)
        parts = urlsplit(request.url)
        control = urlunsplit((parts.scheme, parts.netloc, CONTROL_PATH, parts.query, ""))
        self._reply(request, 200, [("Session", f"{self.session_id};timeout={SESSION_TIMEOUT}"),
                                   ("Range", "npt=now-"),
                                   ("RTP-Info", f"url={control};seq={self.rtp.seq};rtptime={self.rtp.ts_base}")])
        self.log.info("event stream to %s:%d for %s (filter %r)", self.peer, self.client_rtp_port,
                      self.user.name, self.filter.expression)

    def _teardown_request(self, request: Request) -> None:
        self._require_session(request)
        self._teardown()
        self._reply(request, 200)

    def _require_session(self, request: Request) -> None:
        if not self.session_id or request.headers.get("session", "").split(";")[0].strip() != self.session_id:
            raise RtspError(454)

    # -- the stream --------------------------------------------------------------------------
    def _send(self, n: Notification) -> None:
        sender = self.server.sender_for(self.peer)
        if sender is None or sender.transport is None or self.rtp is None:
            return
        payload = metadata_xml(n)
        if len(payload) > MAX_DATAGRAM:
            self.log.warning("event %s too large for one datagram (%d bytes); not sent", n.topic, len(payload))
            return
        # asyncio's UDP transports have get_write_buffer_size(); typeshed's DatagramTransport omits it
        if sender.transport.get_write_buffer_size() > MAX_UDP_BACKLOG:  # type: ignore[attr-defined]
            if self.subscriber is not None:
                self.subscriber.drop("the network does not take the stream's packets")
            return
        sender.transport.sendto(self.rtp.packet(payload), (self.peer, self.client_rtp_port))

    def _dropped(self, reason: str) -> None:
        asyncio.get_running_loop().call_soon(self.close, reason)

    def _teardown(self) -> None:
        if self.audio is not None or self.talk is not None:
            for stream in (self.audio, self.talk):
                if stream is not None:
                    stream.stop()
            self.audio = None
            self.talk = None
            if not self.closed:
                self._touch()
        self.audio_mode = False
        self.backchannel = False
        if self.subscriber is not None:
            self.server.hub.unsubscribe(self.subscriber)
            self.subscriber = None
            if not self.closed:
                self._touch()
        self.session_id = ""

    # -- the microphone (daemon/rtsp/audio.py) ---------------------------------------------------
    def _wants_audio(self, request: Request) -> bool:
        """True for `audio=1&video=0`; the backchannel form (`simplex=receiver`: the station would
        receive) is refused with 551 as the Require tag is, audio with events with 404."""
        query = request.query
        if query.get("audio") != "1":
            return False
        if query.get("simplex", "") not in ("", "sender", "receiver"):
            raise RtspError(551, f"simplex={query['simplex'][:20]} is not served")
        if query.get("video", "1") != "0" or query.get("event", "off") != "off":
            raise RtspError(404, "audio is served alone: audio=1&video=0, without event=on")
        if not self.server.audio_socket:
            raise RtspError(404, "no audio here")
        return True

    def _describe_audio(self, request: Request) -> None:
        talk = self._talks(request)
        parts = urlsplit(request.url)
        control = urlunsplit((parts.scheme, parts.netloc, CONTROL_PATH, parts.query, ""))
        local = self.transport.get_extra_info("sockname") or ("0.0.0.0", 0)
        family = "IP6" if ":" in local[0] else "IP4"
        sdp = "\r\n".join([
            "v=0", f"o=- {secrets.randbelow(10**9)} 1 IN {family} {local[0]}",
            "s=Doorstation speaker" if talk else "s=Doorstation microphone",
            f"c=IN {family} {'::' if family == 'IP6' else '0.0.0.0'}", "t=0 0",
            f"m=audio 0 RTP/AVP {PCMU_PAYLOAD_TYPE}", f"a=rtpmap:{PCMU_PAYLOAD_TYPE} PCMU/{PCMU_CLOCK}",
            "a=ptime:20", f"a=control:{control}", "a=sendonly" if talk else "a=recvonly", ""]).encode()
        base = urlunsplit((parts.scheme, parts.netloc, MEDIA_PATH + "/", "", ""))
        self._reply(request, 200, [("Content-Base", base), ("Content-Type", "application/sdp")], sdp)

    def _setup_audio(self, request: Request) -> None:
        header = request.headers.get("transport", "")
        interleaved = parse_interleaved(header)
        talk = self._talks(request)
        if talk:
            assert self.user is not None                  # _authenticated set it
            if not role_allows(self.user.role, "operator"):
                raise RtspError(403, "talking through the door needs the operator role (as transmit.cgi)")
            if interleaved is None:
                raise RtspError(461, "the backchannel is served over RTP/AVP/TCP (interleaved) only")
        if interleaved is None:
            udp = parse_transport(header)
            self.client_rtp_port = udp.rtp_port
            sender = self.server.sender_for(self.peer)
            server_port = sender.transport.get_extra_info("sockname")[1] if sender and sender.transport else 0
            answer = (f"RTP/AVP;unicast;client_port={udp.rtp_port}-{udp.rtcp_port};"
                      f"server_port={server_port}-{server_port + 1}")
        else:
            answer = f"RTP/AVP/TCP;unicast;interleaved={interleaved.rtp_channel}-{interleaved.rtcp_channel}"
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                # a small kernel buffer (Linux doubles it: ~4 s of audio), so a client that stops
                # reading shows in our own buffer (AUDIO_TCP_BACKLOG) instead of megabytes of TCP's
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, AUDIO_TCP_BACKLOG)
        self.session_id = secrets.token_hex(8).upper()
        self.audio_mode = True
        self.backchannel = talk
        self.interleaved = interleaved
        self.rtp = RtpSequence(secrets.randbits(32), secrets.randbits(16), secrets.randbits(32))
        self._reply(request, 200, [("Transport", f"{answer};ssrc={self.rtp.ssrc:08X}"),
                                   ("Session", f"{self.session_id};timeout={SESSION_TIMEOUT}")])

    async def _play_audio(self, request: Request) -> None:
        session = [("Session", f"{self.session_id};timeout={SESSION_TIMEOUT}")]
        if self.backchannel:
            await self._play_backchannel(request, session)
            return
        if self.audio is not None:
            self._reply(request, 200, session)
            return
        assert self.rtp is not None and self.user is not None and self.server.audio_socket
        packetizer = PcmuPacketizer(self.rtp.ssrc, self.rtp.seq, self.rtp.ts_base)
        receiver = AudioReceiver(self.server.audio_socket, packetizer, self._send_audio, self._dropped)
        self.audio = receiver            # a second PLAY meanwhile is answered, not a second stream
        try:
            await receiver.open(self.peer, self.user.name)
        except RtspError as e:
            self.audio = None
            self.log.info("audio stream to %s refused: %s", self.peer, e)
            self._reply(request, e.status, [("Retry-After", "1")] if e.status == 503 else [])
            return
        if self.closed or self.audio is not receiver:       # gone (or TEARDOWN) while we waited
            receiver.stop()
            return
        self._touch()
        parts = urlsplit(request.url)
        control = urlunsplit((parts.scheme, parts.netloc, CONTROL_PATH, parts.query, ""))
        self._reply(request, 200, [*session, ("Range", "npt=now-"),
                                   ("RTP-Info", f"url={control};seq={self.rtp.seq};rtptime={self.rtp.ts_base}")])
        how = "interleaved" if self.interleaved else f"UDP port {self.client_rtp_port}"
        self.log.info("audio stream to %s (%s) for %s", self.peer, how, self.user.name)

    def _send_audio(self, packet: bytes) -> None:
        if self.closed:
            return
        if self.interleaved is not None:
            if self.transport.get_write_buffer_size() > AUDIO_TCP_BACKLOG:
                now = time.monotonic()
                self.audio_drop_since = self.audio_drop_since or now
                if now - self.audio_drop_since > AUDIO_SLOW_CLOSE:
                    self.close("the client does not read its audio")
                return
            self.audio_drop_since = None
            self.transport.write(interleaved_frame(self.interleaved.rtp_channel, packet))
            return
        sender = self.server.sender_for(self.peer)
        if sender is None or sender.transport is None:
            return
        if sender.transport.get_write_buffer_size() > MAX_UDP_BACKLOG:  # type: ignore[attr-defined]
            self.close("the network does not take the stream's packets")
            return
        sender.transport.sendto(packet, (self.peer, self.client_rtp_port))

    # -- the backchannel: audio to the speaker (daemon/rtsp/audio.py AudioTransmitter) ---------------
    @staticmethod
    def _talks(request: Request) -> bool:
        return request.query.get("simplex") == "receiver"

    def _backchannel_required(self, request: Request) -> bool:
        """A Require header we understand: only ONVIF's backchannel tag, on the backchannel form
        (`simplex=receiver`) or in a backchannel session."""
        tags = {t.strip() for t in request.headers.get("require", "").split(",")}
        return tags == {BACKCHANNEL_TAG} and (self.backchannel or (
            request.query.get("audio") == "1" and self._talks(request)))

    async def _play_backchannel(self, request: Request, session: list[tuple[str, str]]) -> None:
        if self.talk is not None:
            self._reply(request, 200, session)
            return
        assert self.user is not None and self.server.audio_socket
        talk = AudioTransmitter(self.server.audio_socket, self._dropped)
        self.talk = talk
        try:
            await talk.open(self.peer, self.user.name)
        except RtspError as e:
            self.talk = None
            self.log.info("backchannel from %s refused: %s", self.peer, e)
            self._reply(request, e.status, [("Retry-After", "1")] if e.status == 503 else [])
            return
        if self.closed or self.talk is not talk:
            talk.stop()
            return
        self._touch()
        self._reply(request, 200, [*session, ("Range", "npt=now-")])
        self.log.info("backchannel from %s for %s", self.peer, self.user.name)
