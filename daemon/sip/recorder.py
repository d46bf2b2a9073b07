"""Persisting what the engine reports: events into the event log, finished calls into `calls`.

Runs on the supervisor's side (single SQLite writer), never inside the engine's on_event callback:
the supervisor's on_event only enqueues, its loop then calls `EngineEventRecorder.record(event)`.
"""
from __future__ import annotations

from daemon.events import CallEventSequencer, EventLog, dtmf_event
from daemon.sip.calls import HISTORY_SIZE, call_row, status_from_row
from daemon.sip.types import CallFinished, CallTransition, DtmfMatched, EngineEvent
from daemon.store import Store


class EngineEventRecorder:
    def __init__(self, store: Store, sequencer: CallEventSequencer | None = None,
                 history_size: int = HISTORY_SIZE):
        self.store = store
        self.sequencer = sequencer or CallEventSequencer()
        self.history_size = history_size

    def start(self) -> list[int]:
        """Record the initial Call/State property value (Idle at start-up)."""
        return EventLog.append_events(self.store, self.sequencer.initial())

    def record(self, event: EngineEvent) -> list[int]:
        """Returns the event-log sequence numbers written (empty when nothing was logged)."""
        if isinstance(event, CallTransition):
            st = event.status
            return EventLog.append_events(self.store, self.sequencer.transition(
                event.call_id, event.reason, st.get("RemoteURI", ""), st.get("DeviceURI", "")))
        if isinstance(event, DtmfMatched):
            return EventLog.append_events(self.store, [dtmf_event(event.call_id, event.event_id,
                                                                  event.event_name)])
        if isinstance(event, CallFinished):
            save_finished_call(self.store, event.status, self.history_size)
        return []


def save_finished_call(store: Store, status: dict, keep: int = HISTORY_SIZE) -> None:
    with store.transaction() as tx:
        tx.execute("INSERT OR REPLACE INTO calls (call_id, started, doc) VALUES (?, ?, ?)", call_row(status))
        tx.execute("DELETE FROM calls WHERE call_id NOT IN "
                   "(SELECT call_id FROM calls ORDER BY started DESC, rowid DESC LIMIT ?)", (keep,))


def load_call_history(store: Store, keep: int = HISTORY_SIZE) -> list[dict]:
    """The persisted history, oldest first: feed it to SipEngine.load_history() at start-up."""
    rows = store.conn.execute("SELECT doc FROM (SELECT doc, started, rowid FROM calls "
                              "ORDER BY started DESC, rowid DESC LIMIT ?) ORDER BY started, rowid",
                              (keep,)).fetchall()
    return [status_from_row(r[0]) for r in rows]
