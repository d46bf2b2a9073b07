"""The supervisor's stream socket (daemon/audiostream/server.py) on a real Unix socket and asyncio
loop, with a stand-in hub (the clock is driven by the test): caps, slow receivers, bad headers."""
from __future__ import annotations

import asyncio
import json
import logging

from daemon.audiostream.server import AudioStreamServer
from hw.audio import StreamTap


class Hub:
    rate = 16000

    def __init__(self) -> None:
        self.taps: list[StreamTap] = []
        self.on_received = None

    def add_stream(self, tap: StreamTap) -> None:
        self.taps.append(tap)

    def remove_stream(self, tap: StreamTap) -> None:
        if tap in self.taps:
            self.taps.remove(tap)

    def tick(self) -> None:
        """What the clock thread does for receivers: one 20 ms frame each, then a wake-up."""
        for tap in self.taps:
            if tap.kind == "receive":
                tap.fifo.push(bytes(640))
        if self.on_received:
            self.on_received()


async def open_stream(path, kind, peer=""):
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(json.dumps({"kind": kind, "peer": peer}).encode() + b"\n")
    return reader, writer, json.loads(await asyncio.wait_for(reader.readline(), 5))


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_caps_counts_and_close_kind(tmp_path):
    async def main():
        hub, counts = Hub(), []
        server = AudioStreamServer(tmp_path / "a.sock", hub, asyncio.get_running_loop(),
                                   logging.getLogger("t"), on_counts=counts.append,
                                   max_receivers=2, max_transmitters=1)
        await server.start()
        try:
            _, tx1, ok = await open_stream(server.socket_path, "transmit")
            assert ok["ok"] and ok["rate"] == 16000
            _, tx2, refused = await open_stream(server.socket_path, "transmit")
            assert refused == {"ok": False, "status": 503, "reason": "at most 1 transmit streams"}
            r1, rx1, ok1 = await open_stream(server.socket_path, "receive")
            _, _, bad = await open_stream(server.socket_path, "video")
            assert bad["status"] == 400
            assert server.counts() == {"receive": 1, "transmit": 1} and counts[-1] == server.counts()
            tx1.write(bytes(6400))
            await tx1.drain()
            await asyncio.sleep(0.1)
            assert len(hub.taps[0].fifo) == 6400
            assert server.close_kind("receive") == 1
            assert server.counts() == {"receive": 0, "transmit": 1}
            assert await asyncio.wait_for(r1.read(), 5) == b""     # the receiver's socket is closed
            hub.taps[0].fifo.drain()                                # the clock plays it
            tx1.close()
            for _ in range(100):
                if not server.streams:
                    break
                await asyncio.sleep(0.02)
            assert server.counts() == {"receive": 0, "transmit": 0} and not hub.taps
            assert server.refused == {"receive": 0, "transmit": 1}
        finally:
            await server.stop()
    run(main())


def test_a_receiver_that_does_not_read_is_dropped_then_closed(tmp_path):
    async def main():
        hub = Hub()
        server = AudioStreamServer(tmp_path / "a.sock", hub, asyncio.get_running_loop(),
                                   logging.getLogger("t"), slow_drop_s=0.3, rx_buffer_ms=100)
        await server.start()
        try:
            fast_r, fast_w, _ = await open_stream(server.socket_path, "receive")
            slow = await open_stream(server.socket_path, "receive")   # kept open, never read
            received = bytearray()

            async def read_fast():
                while chunk := await fast_r.read(65536):
                    received.extend(chunk)
            reading = asyncio.create_task(read_fast())
            for _ in range(3000):      # the kernel's buffer fills, then ours, then 0.3 s of drops
                hub.tick()
                await asyncio.sleep(0.002)
                if server.closed_slow:
                    break
            assert server.closed_slow == 1
            assert server.counts()["receive"] == 1            # the reading one goes on
            (fast,) = server.status()["Streams"]
            assert fast["DroppedBytes"] == 0 and len(received) >= 640 * 300
            reading.cancel()
            slow[1].close()
            fast_w.close()
        finally:
            await server.stop()
    run(main())


def test_one_address_cannot_take_every_stream(tmp_path):
    async def main():
        server = AudioStreamServer(tmp_path / "a.sock", Hub(), asyncio.get_running_loop(), logging.getLogger("t"),
                                   max_receivers=8, max_per_peer=2)
        await server.start()
        try:
            held = [await open_stream(server.socket_path, "receive", "10.0.0.9") for _ in range(2)]
            assert all(h[2]["ok"] for h in held)
            _, _, third = await open_stream(server.socket_path, "receive", "10.0.0.9")
            assert third["status"] == 429
            _, other_w, other = await open_stream(server.socket_path, "receive", "10.0.0.10")
            assert other["ok"] and server.counts()["receive"] == 3
            for _, w, _ in held:
                w.close()
            other_w.close()
        finally:
            await server.stop()
    run(main())


def test_garbage_or_no_header_is_closed_without_a_stream(tmp_path):
    async def main():
        server = AudioStreamServer(tmp_path / "a.sock", Hub(), asyncio.get_running_loop(), logging.getLogger("t"))
        await server.start()
        try:
            reader, writer = await asyncio.open_unix_connection(server.socket_path)
            writer.write(b"x" * 5000 + b"\n")
            assert await asyncio.wait_for(reader.read(), 5) == b""
            assert server.counts() == {"receive": 0, "transmit": 0}
        finally:
            await server.stop()
    run(main())
