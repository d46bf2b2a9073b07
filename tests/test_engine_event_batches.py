"""Engine events are handled in batches that share one store transaction (one commit), and a
failing step inside a batch undoes only its own writes (a savepoint)."""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading

import pytest

from daemon.events import EventLog
from daemon.store import Store
from daemon.supervisor.wiring import EngineEvents


def test_a_nested_transaction_that_fails_undoes_only_its_own_writes(tmp_path):
    store = Store.open(tmp_path)
    with store.transaction() as outer:
        outer.execute("INSERT INTO settings (key, doc) VALUES ('a', '1')")
        with pytest.raises(RuntimeError):
            with store.transaction() as inner:
                inner.execute("INSERT INTO settings (key, doc) VALUES ('b', '2')")
                raise RuntimeError("this step fails")
        with store.transaction() as inner:
            inner.execute("INSERT INTO settings (key, doc) VALUES ('c', '3')")
        # nothing is visible to another connection before the outer block commits
        reader = sqlite3.connect(store.path)
        assert reader.execute("SELECT count(*) FROM settings WHERE key IN ('a', 'c')").fetchone()[0] == 0
    assert reader.execute("SELECT key FROM settings WHERE key IN ('a', 'b', 'c') ORDER BY key").fetchall() == \
        [("a",), ("c",)]
    reader.close()
    store.close()


def test_engine_events_from_another_thread_are_handled_in_order_in_capped_batches(tmp_path):
    store = Store.open(tmp_path)
    commits: list[int] = []
    handled: list[int] = []

    class CountingBatch:
        def __enter__(self):
            self.tx = store.transaction()
            self.tx.__enter__()
            commits.append(0)

        def __exit__(self, *exc):
            return self.tx.__exit__(*exc)

    def handler(n: int) -> None:
        handled.append(n)
        commits[-1] += 1
        with store.transaction() as tx:          # what the runtime does: an event into the log
            tx.execute("INSERT INTO events (time, topic, source, data) VALUES (0, 't', '{}', ?)", (str(n),))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        events = EngineEvents(loop, logging.getLogger("test"), batch=CountingBatch)
        events.connect(handler)
        total = EngineEvents.MAX_BATCH * 2 + 50
        sender = threading.Thread(target=lambda: [events.deliver(i) for i in range(total)])
        sender.start()
        sender.join(10)
        for _ in range(500):                      # bounded: until every event was handled
            if len(handled) == total:
                break
            await asyncio.sleep(0.01)

    asyncio.run(main())
    total = EngineEvents.MAX_BATCH * 2 + 50
    assert handled == list(range(total))
    assert all(0 < n <= EngineEvents.MAX_BATCH for n in commits), commits
    assert len(commits) < total                   # batched, not one commit per event
    assert len(EventLog.read_after(store, 0, 1000)) == total
    store.close()


def test_a_failing_event_handler_does_not_lose_the_rest_of_its_batch(tmp_path):
    store = Store.open(tmp_path)

    def handler(n: int) -> None:
        with store.transaction() as tx:
            tx.execute("INSERT INTO events (time, topic, source, data) VALUES (0, 't', '{}', ?)", (str(n),))
            if n == 1:
                raise ValueError("a bug in one handler")

    def guarded(n: int) -> None:                 # the runtime's handler logs its own failures
        try:
            handler(n)
        except ValueError:
            pass

    async def main() -> None:
        events = EngineEvents(asyncio.get_running_loop(), logging.getLogger("test"), batch=store.transaction)
        events.connect(guarded)
        for i in range(3):
            events.deliver(i)
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert [e["data"] for e in EventLog.read_after(store, 0)] == [0, 2]
    store.close()
