"""The microphone over RTSP: `rtsp://host/axis-media/media.amp?audio=1&video=0`, G.711 mu-law
8 kHz (RTP payload type 0, PCMU/8000), 20 ms per RTP packet, over UDP unicast or interleaved in
the RTSP connection (RTP/AVP/TCP).

The audio comes from the supervisor's hub through the same per-stream Unix socket as the API's
receive.cgi (daemon/audiostream/protocol.py, kind "receive"): the stream is admitted by the
supervisor (receiver cap, per-address cap), counts as a "device to network" stream for VMS calls,
shows in `doorstation status`, and ends when the supervisor closes it (TerminateCall, a receiver
that does not keep up). No RTCP is sent or read (docs/audio.md).

The backchannel (`?simplex=receiver&audio=1&video=0`, AudioTransmitter below) is the other way:
PCMU in RTP from the client, over TCP-interleaved only, into a "transmit" stream (as transmit.cgi).
"""
from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass
from typing import Callable

from daemon.audiostream import protocol
from daemon.rtsp.protocol import RtspError
from hw.g711 import Resampler, mulaw_decode

PCMU_PAYLOAD_TYPE = 0
PCMU_CLOCK = 8000
PACKET_SAMPLES = 160               # 20 ms at 8 kHz, one mu-law byte per sample
OPEN_TIMEOUT = 5.0
MAX_PENDING = PCMU_CLOCK           # mu-law bytes held for packetising (1 s); more only if we fell behind
BACKCHANNEL_TAG = "www.onvif.org/ver20/backchannel"


@dataclass
class InterleavedTransport:
    rtp_channel: int
    rtcp_channel: int


def parse_interleaved(value: str) -> InterleavedTransport | None:
    """`RTP/AVP/TCP;unicast;interleaved=a-b` (RFC 2326 10.12), or None when the client asks for
    something else (then the UDP parser decides)."""
    for spec in value.split(",")[:4]:
        params = [p.strip() for p in spec.split(";")]
        if params[0] != "RTP/AVP/TCP" or "multicast" in params:
            continue
        for p in params[1:]:
            name, _, channels = p.partition("=")
            if name == "interleaved":
                a, _, b = channels.partition("-")
                if a.isdigit() and int(a) < 255 and (not b or (b.isdigit() and int(b) < 256)):
                    return InterleavedTransport(int(a), int(b) if b else int(a) + 1)
        return InterleavedTransport(0, 1)      # no channels named: the first pair
    return None


def interleaved_frame(channel: int, packet: bytes) -> bytes:
    """RFC 2326 10.12: `$`, channel, 16-bit length, the RTP packet."""
    return struct.pack("!cBH", b"$", channel, len(packet)) + packet


class PcmuPacketizer:
    """RTP packets of 160 mu-law samples: sequence +1 and timestamp +160 per packet (the samples
    are counted, not the wall clock: a late flush from the hub does not make a gap), marker bit on
    the first packet (the start of a talkspurt, RFC 3551 4.1)."""

    def __init__(self, ssrc: int, seq: int, ts_base: int):
        self.ssrc = ssrc
        self.seq = seq
        self.ts = ts_base
        self.pending = bytearray()
        self.first = True
        self.discarded = 0               # bytes thrown away because we fell more than MAX_PENDING behind

    def feed(self, data: bytes) -> list[bytes]:
        self.pending += data
        if len(self.pending) > MAX_PENDING:
            extra = len(self.pending) - MAX_PENDING
            extra -= extra % PACKET_SAMPLES
            if extra:
                del self.pending[:extra]
                self.discarded += extra
                self.ts = (self.ts + extra) & 0xFFFFFFFF
        packets = []
        while len(self.pending) >= PACKET_SAMPLES:
            payload = bytes(self.pending[:PACKET_SAMPLES])
            del self.pending[:PACKET_SAMPLES]
            marker = 0x80 if self.first else 0
            self.first = False
            packets.append(struct.pack("!BBHII", 0x80, marker | PCMU_PAYLOAD_TYPE, self.seq, self.ts, self.ssrc)
                           + payload)
            self.seq = (self.seq + 1) & 0xFFFF
            self.ts = (self.ts + PACKET_SAMPLES) & 0xFFFFFFFF
        return packets


class AudioReceiver:
    """One microphone stream: a receive stream of the supervisor's hub, turned into RTP packets
    handed to `send`. `ended(reason)` is called once when the supervisor ends the stream."""

    def __init__(self, socket_path: str, packetizer: PcmuPacketizer, send: Callable[[bytes], None],
                 ended: Callable[[str], None]):
        self.socket_path = socket_path
        self.packetizer = packetizer
        self._send = send
        self._ended = ended
        self._writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task | None = None
        self.stopped = False

    async def open(self, peer: str, user: str) -> None:
        """Ask the supervisor for the stream; RtspError(503) when it refuses (caps) or is not there."""
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(self.socket_path), OPEN_TIMEOUT)
        except (OSError, asyncio.TimeoutError):
            raise RtspError(503, "the audio service is not available") from None
        try:
            writer.write(protocol.encode({"kind": "receive", "peer": peer, "user": user}))
            line = await asyncio.wait_for(reader.readline(), OPEN_TIMEOUT)
            reply = protocol.decode(line)
        except (OSError, asyncio.TimeoutError, ValueError, asyncio.LimitOverrunError):
            writer.close()
            raise RtspError(503, "the audio service did not answer") from None
        if not reply.get("ok"):
            writer.close()
            # 503 for the receiver cap and the per-address cap (429 over HTTP): RTSP has no 429
            raise RtspError(503, str(reply.get("reason", "refused"))[:200])
        self._writer = writer
        self.task = asyncio.get_running_loop().create_task(self._run(reader))

    async def _run(self, reader: asyncio.StreamReader) -> None:
        reason = "the station ended the audio stream"
        try:
            while not self.stopped:
                data = await reader.read(4096)
                if not data:
                    break
                for packet in self.packetizer.feed(data):
                    self._send(packet)
                    if self.stopped:
                        return
        except (OSError, asyncio.IncompleteReadError) as e:
            reason = f"audio stream failed: {e}"
        finally:
            if self._writer is not None:
                self._writer.close()
        if not self.stopped:
            self.stopped = True
            self._ended(reason)

    def stop(self) -> None:
        """Our end (TEARDOWN, the connection went): closing the socket ends the stream's count."""
        if not self.stopped:
            self.stopped = True
            if self._writer is not None:
                self._writer.transport.abort()
            if self.task is not None:
                self.task.cancel()


MAX_BACKCHANNEL_FRAME = 1500       # bytes of one interleaved RTP packet from the client (20-60 ms of PCMU)


def rtp_payload(packet: bytes) -> tuple[int, bytes] | None:
    """(sequence number, payload) of an RTP packet (RFC 3550) carrying PCMU, or None for anything
    else (another version or payload type, a truncated header, bad padding)."""
    if len(packet) < 12 or packet[0] >> 6 != 2 or packet[1] & 0x7F != PCMU_PAYLOAD_TYPE:
        return None
    start = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:                                  # header extension
        if len(packet) < start + 4:
            return None
        start += 4 + 4 * int.from_bytes(packet[start + 2:start + 4], "big")
    end = len(packet)
    if packet[0] & 0x20:                                  # padding: its length is the last byte
        end -= packet[-1]
    if start > end:
        return None
    return int.from_bytes(packet[2:4], "big"), packet[start:end]


class AudioTransmitter:
    """The ONVIF/Axis backchannel: PCMU in RTP from the client, decoded to the hub's PCM and
    written to a "transmit" stream of the supervisor (the same as transmit.cgi's: one transmitter
    at most, counted as audio to the device, ended by the supervisor after 5 s without audio).
    Real time is not buffered: when the supervisor's flow control holds our writes back (its
    speaker queue is full), packets are dropped and counted. Late or repeated packets (sequence
    not newer than the last) are dropped too; there is no jitter buffer beyond the hub's FIFO."""

    def __init__(self, socket_path: str, ended: Callable[[str], None]):
        self.socket_path = socket_path
        self._ended = ended
        self._writer: asyncio.StreamWriter | None = None
        self._resampler: Resampler | None = None
        self._backlog = 0
        self.last_seq: int | None = None
        self.received = 0
        self.dropped = 0
        self.task: asyncio.Task | None = None
        self.stopped = False

    async def open(self, peer: str, user: str) -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(self.socket_path), OPEN_TIMEOUT)
        except (OSError, asyncio.TimeoutError):
            raise RtspError(503, "the audio service is not available") from None
        try:
            writer.write(protocol.encode({"kind": "transmit", "peer": peer, "user": user}))
            reply = protocol.decode(await asyncio.wait_for(reader.readline(), OPEN_TIMEOUT))
            rate = int(reply.get("rate", 0)) if reply.get("ok") else 0
            self._resampler = Resampler(PCMU_CLOCK, rate) if rate else None
        except (OSError, asyncio.TimeoutError, ValueError, TypeError, asyncio.LimitOverrunError):
            writer.close()
            raise RtspError(503, "the audio service did not answer") from None
        if self._resampler is None:
            writer.close()
            raise RtspError(503, str(reply.get("reason", "refused"))[:200])
        self._backlog = rate * 2 // 2                     # 0.5 s of the hub's PCM held in our buffer
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # as transmit.cgi: a client faster than real time fills our small buffers and is
            # dropped, instead of ~6 s queued in a default-sized Unix socket ahead of the speaker
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        self._writer = writer
        self.task = asyncio.get_running_loop().create_task(self._watch(reader))

    async def _watch(self, reader: asyncio.StreamReader) -> None:
        """The supervisor says nothing after its answer; the socket's end is the stream's end."""
        try:
            while await reader.read(1024):
                pass
        except OSError:
            pass
        if not self.stopped:
            self.stopped = True
            self._ended("the station ended the audio stream")

    def feed(self, packet: bytes) -> None:
        if self.stopped or self._writer is None or self._resampler is None:
            return
        parsed = rtp_payload(packet)
        if parsed is None:
            self.dropped += 1
            return
        seq, payload = parsed
        if self.last_seq is not None and not 0 < (seq - self.last_seq) & 0xFFFF < 0x8000:
            self.dropped += 1
            return
        self.last_seq = seq
        if self._writer.transport.get_write_buffer_size() > self._backlog:
            self.dropped += 1
            return
        self.received += 1
        self._writer.write(self._resampler.process(mulaw_decode(payload)))

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            if self._writer is not None:
                self._writer.transport.abort()
            if self.task is not None:
                self.task.cancel()
