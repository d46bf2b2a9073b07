"""The event log's one writer and the one place its readers wait: every event the station emits
(call states, DTMF, relay, button, inputs, SIP applies) goes through `append`/`emit`, gets its
sequence number from SQLite, and wakes the long-polls waiting in `wait_after`.

Runs on the supervisor's loop thread (the store's single writer).
"""
from __future__ import annotations

import asyncio
from typing import Any

from daemon.events import Event, EventLog
from daemon.store import Store

EVENT_LOG_KEEP = 10000          # newest events kept; older ones are pruned every 1000
MAX_EVENT_WAIT = 30.0
SOURCE = {"Source": "DoorStation"}


class EventSink:
    def __init__(self, store: Store, keep: int = EVENT_LOG_KEEP) -> None:
        self._store = store
        self._keep = keep
        self._changed = asyncio.Condition()
        self._wake_pending = False

    def append(self, events: list[Event]) -> list[int]:
        """Commit the events (one transaction) and wake the waiting readers."""
        if not events:
            return []
        seqs = EventLog.append_events(self._store, events)
        if seqs and seqs[-1] % 1000 == 0:
            EventLog.prune(self._store, self._keep)
        self._wake()
        return seqs

    def emit(self, topic: str, data: dict[str, Any]) -> None:
        """A hardware or station event (relay, button, inputs, outputs, SIP applies)."""
        self.append([Event(topic, dict(SOURCE), dict(data))])

    def _wake(self) -> None:
        if self._wake_pending:       # one wake-up task serves every append of this loop turn
            return
        self._wake_pending = True

        async def wake() -> None:
            self._wake_pending = False
            async with self._changed:
                self._changed.notify_all()
        asyncio.get_running_loop().create_task(wake())

    def end(self) -> int:
        """The log's newest sequence number, for readers that only want what comes next."""
        return EventLog.end(self._store)

    async def wait_after(self, after: int, wait: float, limit: int) -> dict:
        """Events with seq > after, waiting up to `wait` seconds for the first one."""
        after = min(max(0, after), 2**63 - 1)
        wait = min(max(0.0, wait), MAX_EVENT_WAIT)
        limit = min(max(1, limit), 1000)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        async with self._changed:
            while True:
                events = EventLog.read_after(self._store, after, limit)
                left = deadline - loop.time()
                if events or left <= 0:
                    break
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except asyncio.TimeoutError:
                    pass
        return {"events": events, "next": events[-1]["seq"] if events else after}
