"""CallEventSequencer (pure) and EventLog over a real SQLite store."""
from __future__ import annotations

import pytest

from daemon.events import (
    TOPIC_DTMF,
    TOPIC_STATE,
    TOPIC_STATE_CHANGE,
    CallEventSequencer,
    EventLog,
    dtmf_event,
    events_for_transitions,
)
from daemon.store import Store


def flat(events) -> list[tuple[str, str]]:
    return [(e.topic, e.data.get("Reason") or e.data.get("CallState")) for e in events]


def test_outgoing_call_order_matches_spec_example():
    s = CallEventSequencer()
    out = s.initial()
    for reason in ("Initiated", "AcceptedByRemote", "Terminated"):
        out += s.transition("c1", reason, "sip:6002@example.axis.com", "sip:door@10.0.0.2")
    assert flat(out) == [(TOPIC_STATE, "Idle"),
                         (TOPIC_STATE_CHANGE, "Initiated"), (TOPIC_STATE, "Calling"),
                         (TOPIC_STATE_CHANGE, "AcceptedByRemote"), (TOPIC_STATE, "Active"),
                         (TOPIC_STATE_CHANGE, "Terminated"), (TOPIC_STATE, "Idle")]
    change = out[1]
    assert change.source == {"Source": "DoorStation"}
    assert change.data == {"Reason": "Initiated", "CallId": "c1", "RemoteURI": "sip:6002@example.axis.com",
                           "DeviceURI": "sip:door@10.0.0.2"}


def test_incoming_call_order_matches_spec_example():
    s = CallEventSequencer()
    out = s.transition("c1", "AcceptedByDevice") + s.transition("c1", "Terminated")
    assert flat(out) == [(TOPIC_STATE_CHANGE, "AcceptedByDevice"), (TOPIC_STATE, "Active"),
                         (TOPIC_STATE_CHANGE, "Terminated"), (TOPIC_STATE, "Idle")]


@pytest.mark.parametrize("reason", ["NoAnswer", "Busy", "Failed"])
def test_unanswered_call_returns_to_idle(reason):
    s = CallEventSequencer()
    out = s.transition("c1", "Initiated") + s.transition("c1", reason)
    assert flat(out)[2:] == [(TOPIC_STATE_CHANGE, reason), (TOPIC_STATE, "Idle")]


def test_denied_call_changes_no_state():
    s = CallEventSequencer()
    assert flat(s.transition("c9", "Denied")) == [(TOPIC_STATE_CHANGE, "Denied")]


def test_aggregate_over_several_calls():
    s = CallEventSequencer()
    s.transition("a", "Initiated")
    assert flat(s.transition("b", "Initiated")) == [(TOPIC_STATE_CHANGE, "Initiated")]    # still Calling
    assert flat(s.transition("a", "AcceptedByRemote"))[-1] == (TOPIC_STATE, "Active")
    assert flat(s.transition("b", "NoAnswer")) == [(TOPIC_STATE_CHANGE, "NoAnswer")]      # a still active
    s.transition("c", "Initiated")
    assert flat(s.transition("a", "Terminated"))[-1] == (TOPIC_STATE, "Calling")          # c still calling
    assert flat(s.transition("c", "Busy"))[-1] == (TOPIC_STATE, "Idle")
    assert s.aggregate == "Idle"


def test_unknown_reason_is_refused():
    with pytest.raises(ValueError):
        CallEventSequencer().transition("a", "Ringing")


def test_dtmf_event_shape():
    e = dtmf_event("c1", "dtmf_event_0", "OpenDoor")
    assert (e.topic, e.source, e.data) == (TOPIC_DTMF, {"DTMFEventId": "dtmf_event_0", "Name": "OpenDoor"},
                                           {"CallId": "c1"})


def test_event_log_append_and_read_after(tmp_path):
    store = Store.open(tmp_path)
    s = CallEventSequencer()
    first = EventLog.append(store, TOPIC_STATE, {"Source": "DoorStation"}, {"CallState": "Idle"})
    seqs = EventLog.append_events(store, s.transition("c1", "Initiated", "sip:a@b", "sip:door@c"))
    assert seqs == [first + 1, first + 2]
    rows = EventLog.read_after(store, first)
    assert [r["seq"] for r in rows] == seqs
    assert rows[0]["topic"] == TOPIC_STATE_CHANGE and rows[0]["data"]["CallId"] == "c1"
    assert rows[1]["data"] == {"CallState": "Calling"}
    assert EventLog.read_after(store, seqs[-1]) == []
    assert len(EventLog.read_after(store, 0, limit=1)) == 1
    # a reader on its own connection sees committed events
    reader = Store.open(tmp_path, readonly=True)
    assert [r["seq"] for r in EventLog.read_after(reader, 0)] == [first] + seqs
    reader.close()
    store.close()


def test_event_log_prune_keeps_newest(tmp_path):
    store = Store.open(tmp_path)
    for i in range(10):
        EventLog.append(store, TOPIC_STATE, {"Source": "DoorStation"}, {"CallState": "Idle", "i": i})
    assert EventLog.prune(store, keep=3) == 7
    assert [r["data"]["i"] for r in EventLog.read_after(store, 0)] == [7, 8, 9]
    store.close()


def test_event_log_end_is_the_newest_seq(tmp_path):
    store = Store.open(tmp_path)
    assert EventLog.end(store) == 0
    seqs = [EventLog.append(store, TOPIC_STATE, {"Source": "DoorStation"}, {"i": i}) for i in range(5)]
    EventLog.prune(store, keep=2)
    assert EventLog.end(store) == seqs[-1]
    assert EventLog.read_after(store, EventLog.end(store)) == []
    store.close()


def test_call_history_keeps_the_newest_finished_calls(tmp_path):
    from daemon.sip.calls import CallRecord
    from daemon.sip.recorder import load_call_history, save_finished_call

    store = Store.open(tmp_path)
    for i, start in enumerate((11.0, 12.0, 13.0)):
        done = CallRecord(f"d{i}", "Outgoing", "acc", "d", "r", start_time=start, state="Terminated",
                          reason="Busy", stop_time=start + 1).status()
        save_finished_call(store, done, keep=2)
    history = load_call_history(store)
    assert [s["CallId"] for s in history] == ["d1", "d2"]
    assert history[0]["CallStateReason"] == "Busy" and "StopTime" in history[0]
    store.close()


def test_pure_function_matches_sequencer():
    transitions = [("a", "Initiated", "sip:r", "sip:d"), ("b", "AcceptedByDevice", "sip:x", "sip:d"),
                   ("a", "Busy", "sip:r", "sip:d"), ("b", "Terminated", "sip:x", "sip:d")]
    assert flat(events_for_transitions(transitions)) == [
        (TOPIC_STATE_CHANGE, "Initiated"), (TOPIC_STATE, "Calling"),
        (TOPIC_STATE_CHANGE, "AcceptedByDevice"), (TOPIC_STATE, "Active"),
        (TOPIC_STATE_CHANGE, "Busy"),
        (TOPIC_STATE_CHANGE, "Terminated"), (TOPIC_STATE, "Idle")]
