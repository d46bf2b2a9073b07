"""Fan-out of Axis notifications to the WebSocket streams of one API process (gevent).

One greenlet per process follows the supervisor's event log over the control socket (`events.wait`
long-polls, like /api/events and the RTSP process) and keeps the Axis event model current
(daemon.axis_events.AxisEventModel); it starts with the first stream. Each stream has a bounded
queue of text messages: publishing only puts into queues (never waits), and a stream whose queue
is full is dropped with a reason. The supervisor sees one long-poll whatever the number of streams.
"""
from __future__ import annotations

import json
import logging
from typing import Callable

import gevent
import gevent.event
import gevent.queue

from daemon.api.wsevents.configure import EventFilter, copies
from daemon.axis_events import AxisEventModel, Notification, sync_from_supervisor, ws_notify
from daemon.faults import VapixFault

POLL_WAIT = 20.0            # seconds per events.wait long-poll
POLL_LIMIT = 200
READY_WAIT = 5.0            # how long a new stream waits for the first snapshot


def render(n: Notification) -> str:
    return json.dumps(ws_notify(n), separators=(",", ":"))


class StreamQueue:
    """What one WebSocket stream is waiting to send: its answers and notifications, in order."""

    def __init__(self, size: int, on_drop: Callable[[str], None]):
        self.queue: gevent.queue.Queue = gevent.queue.Queue(size)
        self.filters: tuple[EventFilter, ...] = ()
        self.dropped: str | None = None
        self._on_drop = on_drop

    def put(self, item) -> bool:
        if self.dropped is not None:
            return False
        try:
            self.queue.put_nowait(item)
            return True
        except gevent.queue.Full:
            self.drop(f"slow client: {self.queue.maxsize} messages queued")
            return False

    def offer(self, notes: list[tuple[Notification, str]]) -> None:
        for n, text in notes:
            for _ in range(copies(self.filters, n)):
                if not self.put(text):
                    return

    def drop(self, reason: str) -> None:
        if self.dropped is None:
            self.dropped = reason
            self._on_drop(reason)


class WsEventHub:
    def __init__(self, control, log: logging.Logger, spawn: Callable = gevent.spawn):
        self.control = control
        self.log = log
        self._spawn = spawn
        self.model: AxisEventModel | None = None
        self.streams: set[StreamQueue] = set()
        self.after: int | None = None
        self.published = 0
        self._ready = gevent.event.Event()
        self._follower = None

    # -- streams -----------------------------------------------------------------------------
    def wait_ready(self, timeout: float = READY_WAIT) -> bool:
        if self._follower is None:
            self._follower = self._spawn(self._follow)
        return self._ready.wait(timeout)

    def subscribe(self, stream: StreamQueue) -> None:
        self.streams.add(stream)

    def unsubscribe(self, stream: StreamQueue) -> None:
        self.streams.discard(stream)

    def configure(self, stream: StreamQueue, filters: tuple[EventFilter, ...], answer: str) -> None:
        """Replace the stream's filters: what it had queued is dropped, then the answer, then the
        current value of every property the new filters let through (Initialized), all without
        yielding, so no notification of the old filters or from before the snapshot slips in."""
        while not stream.queue.empty():
            stream.queue.get_nowait()
        stream.filters = filters
        if stream.put(answer) and self.model is not None:
            stream.offer([(n, render(n)) for n in self.model.initialized()])

    # -- the supervisor's log ------------------------------------------------------------------
    def _reset(self, model: AxisEventModel) -> None:
        old, self.model = self.model, model
        self._ready.set()
        if old is not None:      # a supervisor restart: what changed meanwhile goes out as Changed
            self._fan_out(model.changed_since(old))

    def publish(self, events: list[dict]) -> None:
        if self.model is None:
            return
        for event in events:
            notes = self.model.apply(event)
            if notes:
                self._fan_out(notes)

    def _fan_out(self, notes: list[Notification]) -> None:
        if not notes:
            return
        self.published += len(notes)
        rendered = [(n, render(n)) for n in notes]      # once, whatever the number of streams
        for stream in list(self.streams):
            stream.offer(rendered)

    def _follow(self) -> None:
        backoff = 0.5
        while True:
            try:
                self._sync()
                backoff = 0.5
                while True:
                    reply = self.control.request("events.wait", {"after": self.after, "wait": POLL_WAIT,
                                                                 "limit": POLL_LIMIT}, timeout=POLL_WAIT + 10)
                    self.publish(reply.get("events") or [])
                    self.after = int(reply.get("next", self.after))
            except (VapixFault, OSError, ValueError, TypeError, AttributeError) as e:
                self.log.warning("event streams: supervisor not reachable (%s); retrying", getattr(e, "reason", e))
                gevent.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _sync(self) -> None:
        """At start: from the log's end. After a supervisor restart: from the last seq seen (the
        log is in SQLite and outlives it), after a new snapshot."""
        self.after, model = sync_from_supervisor(self.control.request, self.after)
        self._reset(model)
