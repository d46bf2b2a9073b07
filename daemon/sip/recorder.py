"""Call history in the `calls` table: finished calls (SIP and VMS), the newest HISTORY_SIZE kept.

Used by daemon/supervisor/runtime.py on the supervisor's loop thread (the single SQLite writer), which also
turns engine events into the event log.
"""
from __future__ import annotations

from daemon.sip.calls import HISTORY_SIZE, call_row, status_from_row
from daemon.store import Store


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
