"""Fan-out of Axis notifications to RTSP subscribers, and the thread that follows the supervisor's
event log over the control socket.

`EventHub` runs on the RTSP process's loop. Each subscriber has a bounded queue; one that cannot
keep up (queue full) is dropped with a reason instead of slowing the others. The supervisor never
sees subscribers: it only answers this process's long-poll (`events.wait`), like the API's.

`SupervisorFollower` is a thread (the control client blocks): it takes a snapshot ("status",
"device.ports") and the log's last seq, hands the model to the hub, then long-polls from that seq.
When the supervisor restarts it takes a new snapshot (properties that changed meanwhile reach the
subscribers as Changed) and goes on from the last seq it saw.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from typing import Callable

from daemon.axis_events import AxisEventModel, Notification, TopicFilter, sync_from_supervisor
from daemon.faults import VapixFault

MAX_SUBSCRIBERS = 32
MAX_QUEUE = 256            # notifications waiting for one subscriber
POLL_WAIT = 20.0           # seconds per events.wait long-poll
POLL_LIMIT = 200


class Subscriber:
    """One event stream. `send(notification)` puts it on the wire (never blocks); `drop(reason)`
    ends the stream and its RTSP connection."""

    def __init__(self, topic_filter: TopicFilter, send: Callable[[Notification], None],
                 drop: Callable[[str], None], max_queue: int = MAX_QUEUE):
        self.filter = topic_filter
        self._send = send
        self._drop = drop
        self.queue: asyncio.Queue[Notification] = asyncio.Queue(max_queue)
        self.task: asyncio.Task | None = None
        self.dropped: str | None = None

    def offer(self, notes: list[Notification]) -> bool:
        """Queue what passes the filter; False (and the subscriber is dropped) when full."""
        for n in notes:
            if not self.filter.matches(n.topic):
                continue
            try:
                self.queue.put_nowait(n)
            except asyncio.QueueFull:
                self.drop(f"slow subscriber: {self.queue.maxsize} notifications queued")
                return False
        return True

    def drop(self, reason: str) -> None:
        if self.dropped is None:
            self.dropped = reason
            self._drop(reason)

    async def run(self) -> None:
        while self.dropped is None:
            n = await self.queue.get()
            self._send(n)


class EventHub:
    def __init__(self, log: logging.Logger, max_subscribers: int = MAX_SUBSCRIBERS):
        self.log = log
        self.max_subscribers = max_subscribers
        self.model: AxisEventModel | None = None
        self.subscribers: set[Subscriber] = set()
        self.published = 0

    @property
    def ready(self) -> bool:
        return self.model is not None

    def reset(self, model: AxisEventModel) -> None:
        """A new snapshot. Subscribers get Changed for each property that differs from before."""
        old, self.model = self.model, model
        if old is None:
            return
        self._fan_out(model.changed_since(old))

    def publish(self, events: list[dict]) -> None:
        if self.model is None:
            return
        for event in events:
            notes = self.model.apply(event)
            if notes:
                self._fan_out(notes)

    def _fan_out(self, notes: list[Notification]) -> None:
        self.published += len(notes)
        for sub in list(self.subscribers):
            if not sub.offer(notes):
                self.unsubscribe(sub)
                self.log.warning("dropped an event subscriber: %s", sub.dropped)

    def subscribe(self, sub: Subscriber) -> bool:
        """Start `sub` with every property's current value (Initialized); False when full or
        when the supervisor's state is not known yet."""
        if self.model is None or len(self.subscribers) >= self.max_subscribers:
            return False
        self.subscribers.add(sub)
        sub.offer(self.model.initialized())
        sub.task = asyncio.get_running_loop().create_task(sub.run())
        return True

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        if sub.task is not None:
            sub.task.cancel()


class SupervisorFollower(threading.Thread):
    """Follows the event log; hands snapshots and events to the hub on its loop."""

    def __init__(self, client, loop: asyncio.AbstractEventLoop, hub: EventHub, log: logging.Logger,
                 stop: threading.Event):
        super().__init__(name="rtsp-follower", daemon=True)
        self.client = client
        self.loop = loop
        self.hub = hub
        self.log = log
        self.stop = stop
        self.after: int | None = None      # the last seq handed to the hub

    def run(self) -> None:
        backoff = 0.5
        while not self.stop.is_set():
            try:
                self._sync()
                backoff = 0.5
                while not self.stop.is_set():
                    reply = self.client.request("events.wait", {"after": self.after, "wait": POLL_WAIT,
                                                                "limit": POLL_LIMIT}, timeout=POLL_WAIT + 10)
                    events = reply.get("events") or []
                    if events:
                        self.loop.call_soon_threadsafe(self.hub.publish, events)
                    self.after = int(reply.get("next", self.after))
            except (VapixFault, OSError, ValueError, TypeError, AttributeError) as e:
                self.log.warning("supervisor not reachable (%s); retrying", getattr(e, "reason", e))
                self.client.close()
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _sync(self) -> None:
        """At start: from the log's end. After a supervisor restart: from the last seq seen, so
        what was logged meanwhile (a press, a call) still reaches the streams (the log is in
        SQLite and outlives the supervisor); replayed property values change nothing twice."""
        self.after, model = sync_from_supervisor(self.client.request, self.after)
        self.loop.call_soon_threadsafe(self.hub.reset, model)
