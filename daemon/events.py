"""Call events (tnsaxis:Call/State, Call/StateChange, Call/DTMF) and the event log in SQLite.

Two parts:
* `CallEventSequencer`: pure logic. Fed the engine's call transitions, it returns the events in the
  order the spec's event examples show: the StateChange first, then the State property event, the
  latter only when the aggregate state (Active if any call is active, else Calling if any call is
  calling, else Idle) really changed.
* `EventLog`: append/read over the `events` table of daemon.store (seq is the autoincrement key, so
  a subscriber resumes with `read_after(store, last_seen_seq)`).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from daemon.sip.calls import ACTIVE, CALLING, TERMINATED, LiveCalls
from daemon.store import Store

TOPIC_STATE = "tnsaxis:Call/State"
TOPIC_STATE_CHANGE = "tnsaxis:Call/StateChange"
TOPIC_DTMF = "tnsaxis:Call/DTMF"
DEFAULT_SOURCE = "DoorStation"

REASONS = ("Initiated", "Denied", "NoAnswer", "Busy", "Failed",
           "AcceptedByRemote", "AcceptedByDevice", "Terminated")
# Where each reason leaves the call (None: the call is over).
_STATE_AFTER = {"Initiated": CALLING, "AcceptedByRemote": ACTIVE, "AcceptedByDevice": ACTIVE,
                "Denied": None, "NoAnswer": None, "Busy": None, "Failed": None, "Terminated": None}


@dataclass(frozen=True)
class Event:
    topic: str
    source: dict
    data: dict


def state_event(call_state: str, source: str = DEFAULT_SOURCE) -> Event:
    return Event(TOPIC_STATE, {"Source": source}, {"CallState": call_state})


def state_change_event(reason: str, call_id: str, remote_uri: str, device_uri: str,
                       source: str = DEFAULT_SOURCE) -> Event:
    return Event(TOPIC_STATE_CHANGE, {"Source": source},
                 {"Reason": reason, "CallId": call_id, "RemoteURI": remote_uri, "DeviceURI": device_uri})


def dtmf_event(call_id: str, event_id: str, event_name: str) -> Event:
    return Event(TOPIC_DTMF, {"DTMFEventId": event_id, "Name": event_name}, {"CallId": call_id})


@dataclass
class CallEventSequencer:
    """Turns call transitions into events, keeping `calls` (the live calls' states, which it is the
    one writer of) up to date on the way."""
    source: str = DEFAULT_SOURCE
    calls: LiveCalls = field(default_factory=LiveCalls)

    @property
    def aggregate(self) -> str:
        return self.calls.aggregate

    def initial(self) -> list[Event]:
        """The property event's current value (emit at start-up)."""
        return [state_event(self.aggregate, self.source)]

    def transition(self, call_id: str, reason: str, remote_uri: str = "", device_uri: str = "") -> list[Event]:
        if reason not in _STATE_AFTER:
            raise ValueError(f"unknown call state change reason {reason!r}")
        before = self.aggregate
        self.calls.set(call_id, _STATE_AFTER[reason] or TERMINATED)
        events = [state_change_event(reason, call_id, remote_uri, device_uri, self.source)]
        if self.aggregate != before:
            events.append(state_event(self.aggregate, self.source))
        return events


def events_for_transitions(transitions, source: str = DEFAULT_SOURCE) -> list[Event]:
    """Pure form of the sequencer: (call_id, reason, remote_uri, device_uri) tuples, in the order
    the engine reported them, to the events in the order the spec's examples show."""
    seq = CallEventSequencer(source)
    out: list[Event] = []
    for call_id, reason, remote_uri, device_uri in transitions:
        out += seq.transition(call_id, reason, remote_uri, device_uri)
    return out


class EventLog:
    """The persistent event log. Stateless: every method takes the store (single writer)."""

    @staticmethod
    def append(store: Store, topic: str, source: dict, data: dict, at: float | None = None) -> int:
        with store.transaction() as tx:
            cur = tx.execute("INSERT INTO events (time, topic, source, data) VALUES (?, ?, ?, ?)",
                             (time.time() if at is None else at, topic,
                              json.dumps(source, sort_keys=True), json.dumps(data, sort_keys=True)))
            return int(cur.lastrowid or 0)

    @staticmethod
    def append_events(store: Store, events: list[Event], at: float | None = None) -> list[int]:
        """Several events in one transaction (keeps StateChange + State together)."""
        now = time.time() if at is None else at
        seqs = []
        with store.transaction() as tx:
            for ev in events:
                cur = tx.execute("INSERT INTO events (time, topic, source, data) VALUES (?, ?, ?, ?)",
                                 (now, ev.topic, json.dumps(ev.source, sort_keys=True),
                                  json.dumps(ev.data, sort_keys=True)))
                seqs.append(int(cur.lastrowid or 0))
        return seqs

    @staticmethod
    def read_after(store: Store, after: int = 0, limit: int = 100) -> list[dict]:
        limit = max(1, min(int(limit), 1000))
        rows = store.conn.execute(
            "SELECT seq, time, topic, source, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (int(after), limit)).fetchall()
        return [{"seq": r[0], "time": r[1], "topic": r[2], "source": json.loads(r[3]),
                 "data": json.loads(r[4])} for r in rows]

    @staticmethod
    def end(store: Store) -> int:
        """The newest event's sequence number (0 for an empty log): where a new reader starts."""
        row = store.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        return int(row[0])

    @staticmethod
    def prune(store: Store, keep: int = 10000) -> int:
        """Drop all but the newest `keep` events; returns how many were removed."""
        with store.transaction() as tx:
            return tx.execute("DELETE FROM events WHERE seq <= "
                              "(SELECT COALESCE(MAX(seq), 0) FROM events) - ?", (int(keep),)).rowcount


# Module-level spellings of the log operations.
append = EventLog.append
append_events = EventLog.append_events
read_after = EventLog.read_after
