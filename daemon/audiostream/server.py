"""The supervisor's end of the network audio streams (runs on the supervisor's loop).

Each stream is one Unix-socket connection from the API process (see protocol.py). Here:
- admission: at most `max_receivers` receive and `max_transmitters` transmit streams (503 above),
  and `max_per_peer` streams of one client address (429);
- the stream counts by kind, reported to `on_counts` whenever they change (the VMS calls);
- receive: the hub's clock thread pushes microphone frames into the stream's tap and wakes the
  loop (`flush`), which writes them to the socket. A receiver whose socket does not drain (its
  HTTP client reads slower than real time) has its audio dropped and counted; after
  `slow_drop_s` of only drops it is closed;
- transmit: PCM read from the socket goes into the tap the clock thread mixes into the speaker.
  The socket is not read while the tap holds more than `tx_high_ms` of audio: a client that sends
  faster than real time is slowed by flow control, never buffered without bound. `idle_s` without
  a byte ends the stream (a VMS that stops sending ends its call);
- `close_kind(kind)`: TerminateCall of a VMS call closes the streams that made it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from daemon.audiostream import protocol
from daemon.control.server import start_private_unix_server
from hw.audio import RECEIVE_RATE, SAMPLE_BYTES, StreamTap

HEADER_TIMEOUT = 5.0
READ_CHUNK = 4096
SOCKET_BUFFER = 8192       # asked for; Linux doubles it: ~0.5 s of 16 kHz PCM


@dataclass
class Stream:
    tap: StreamTap
    writer: asyncio.StreamWriter
    peer: str
    user: str
    opened: float = field(default_factory=time.monotonic)
    drop_since: float | None = None       # receive: when its socket last stopped taking audio
    closed: bool = False


class AudioStreamServer:
    def __init__(self, socket_path: str | os.PathLike, hub: Any, loop: asyncio.AbstractEventLoop,
                 log: logging.Logger, *, on_counts: Callable[[dict[str, int]], None] | None = None,
                 max_receivers: int = 8, max_transmitters: int = 1, max_per_peer: int = 4, idle_s: float = 5.0,
                 slow_drop_s: float = 5.0, tx_high_ms: int = 300, rx_buffer_ms: int = 1000) -> None:
        self.socket_path = str(socket_path)
        self.hub = hub
        self.loop = loop
        self.log = log
        self.on_counts = on_counts
        self.max = {"receive": max_receivers, "transmit": max_transmitters}
        self.max_per_peer = max_per_peer      # streams of one client address: one host cannot take all
        self.idle_s = idle_s
        self.slow_drop_s = slow_drop_s
        bytes_per_ms = hub.rate * SAMPLE_BYTES // 1000
        self.tx_high = tx_high_ms * bytes_per_ms
        self.tap_capacity = max(tx_high_ms * 2, 400) * bytes_per_ms
        self.rx_buffer = rx_buffer_ms * RECEIVE_RATE // 1000   # mu-law bytes a receiver may hold back
        self.streams: dict[int, Stream] = {}
        self.refused = {"receive": 0, "transmit": 0}
        self.closed_slow = 0
        self._next_id = 0
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._flush_pending = False

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        self._server = await start_private_unix_server(self._serve, self.socket_path,
                                                       limit=protocol.MAX_HEADER + 16)
        self.hub.on_received = self._wake

    async def stop(self) -> None:
        self.hub.on_received = None
        if self._server is not None:
            self._server.close()
        for stream in list(self.streams.values()):
            self._close(stream)                 # their tasks end on their own
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        for task in list(self._tasks):          # a connection still in its header
            task.cancel()
        if self._server is not None:
            await self._server.wait_closed()
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass

    # -- counts and control ----------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        live = [s for s in self.streams.values() if not s.closed]
        return {kind: sum(1 for s in live if s.tap.kind == kind) for kind in protocol.KINDS}

    def close_kind(self, kind: str) -> int:
        """Close every stream of this kind (TerminateCall); returns how many."""
        victims = [s for s in self.streams.values() if s.tap.kind == kind and not s.closed]
        for stream in victims:
            self._close(stream)
        if victims:
            self._counts_changed()
        return len(victims)

    def status(self) -> dict[str, Any]:
        return {"Counts": self.counts(), "Limits": dict(self.max), "Refused": dict(self.refused),
                "ClosedSlowReceivers": self.closed_slow,
                "Streams": [{**s.tap.stats(), "Peer": s.peer, "User": s.user,
                             "Seconds": round(time.monotonic() - s.opened, 1)}
                            for s in self.streams.values()]}

    def _counts_changed(self) -> None:
        if self.on_counts is not None:
            try:
                self.on_counts(self.counts())
            except Exception:
                self.log.exception("stream count handler failed")

    # -- one connection ------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        stream: Stream | None = None
        try:
            try:
                header = protocol.decode(await asyncio.wait_for(reader.readline(), HEADER_TIMEOUT))
            except (asyncio.TimeoutError, ValueError, asyncio.LimitOverrunError):
                return
            kind = header.get("kind")
            if kind not in protocol.KINDS:
                writer.write(protocol.encode({"ok": False, "status": 400, "reason": "unknown stream kind"}))
                return
            if self.counts()[kind] >= self.max[kind]:
                self.refused[kind] += 1
                writer.write(protocol.encode({"ok": False, "status": 503,
                                              "reason": f"at most {self.max[kind]} {kind} streams"}))
                return
            peer = str(header.get("peer", ""))[:64]
            if peer and sum(1 for s in self.streams.values() if s.peer == peer and not s.closed) >= self.max_per_peer:
                self.refused[kind] += 1
                writer.write(protocol.encode({"ok": False, "status": 429,
                                              "reason": f"at most {self.max_per_peer} audio streams per address"}))
                return
            self._next_id += 1
            stream = Stream(StreamTap(self._next_id, kind, self.tap_capacity), writer,
                            peer, str(header.get("user", ""))[:64])
            self.streams[stream.tap.stream_id] = stream
            sock = writer.get_extra_info("socket")
            if sock is not None and kind == "receive":
                # audio for a receiver queues here (where it is counted and dropped), not in a
                # large kernel buffer that would only add latency
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
            writer.write(protocol.encode({"ok": True, "id": stream.tap.stream_id, "rate": self.hub.rate}))
            await writer.drain()
            self.hub.add_stream(stream.tap)
            self._counts_changed()
            self.log.info("%s stream %d opened (%s %s)", kind, stream.tap.stream_id, stream.user, stream.peer)
            if kind == "transmit":
                await self._transmit(stream, reader)
            else:
                await self._receive(stream, reader)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if stream is not None:
                was_live = not stream.closed
                self._close(stream)
                self.hub.remove_stream(stream.tap)
                self.streams.pop(stream.tap.stream_id, None)
                if was_live:
                    self._counts_changed()
                self.log.info("%s stream %d closed: %s", stream.tap.kind, stream.tap.stream_id,
                              stream.tap.stats())
            writer.close()
            self._tasks.discard(task)

    async def _transmit(self, stream: Stream, reader: asyncio.StreamReader) -> None:
        odd = b""
        while not stream.closed:
            try:
                data = await asyncio.wait_for(reader.read(READ_CHUNK), self.idle_s)
            except asyncio.TimeoutError:
                return
            if not data:
                await self._played(stream, 0)       # the end of the body is heard too
                return
            data = odd + data
            cut = len(data) - len(data) % SAMPLE_BYTES
            odd = data[cut:]
            stream.tap.fifo.push(data[:cut])
            # flow control: stop reading while the speaker has enough queued
            await self._played(stream, self.tx_high)

    async def _played(self, stream: Stream, level: int) -> None:
        """Wait until at most `level` bytes are left for the speaker. Bounded: the clock drains
        the tap at real time, and a hub without a clock would not, hence the idle bound."""
        waited = 0.0
        while len(stream.tap.fifo) > level and not stream.closed and waited < self.idle_s:
            await asyncio.sleep(0.02)
            waited += 0.02

    async def _receive(self, stream: Stream, reader: asyncio.StreamReader) -> None:
        """The audio goes out in flush(); here we only wait for the API side to hang up."""
        while not stream.closed:
            if not await reader.read(READ_CHUNK):
                return

    # -- clock thread -> loop ----------------------------------------------------------------------
    def _wake(self) -> None:
        """Clock thread: schedule one flush (not one per frame if the loop is behind)."""
        if not self._flush_pending:
            self._flush_pending = True
            self.loop.call_soon_threadsafe(self.flush)

    def flush(self) -> None:
        self._flush_pending = False
        now = time.monotonic()
        for stream in list(self.streams.values()):
            if stream.tap.kind != "receive" or stream.closed:
                continue
            data = stream.tap.fifo.drain()
            if not data:
                continue
            transport = stream.writer.transport
            if transport.is_closing():
                continue
            if transport.get_write_buffer_size() + len(data) > self.rx_buffer:
                stream.tap.dropped_bytes += len(data)
                stream.drop_since = stream.drop_since or now
                if now - stream.drop_since > self.slow_drop_s:
                    self.closed_slow += 1
                    self.log.warning("receive stream %d closed: its client does not keep up",
                                     stream.tap.stream_id)
                    self._close(stream)
                    self._counts_changed()
                continue
            stream.drop_since = None
            stream.writer.write(data)

    def _close(self, stream: Stream) -> None:
        if not stream.closed:
            stream.closed = True
            self.hub.remove_stream(stream.tap)
            stream.writer.transport.abort()
