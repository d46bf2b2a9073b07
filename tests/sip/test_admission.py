"""Admission rules for new calls (pure): unconfirmed incoming callers and the outgoing call rate."""
from daemon.sip.admission import (
    CALL_RATE_PER_SECOND,
    INCOMING_ACK_WAIT_S,
    CallRate,
    oldest_unconfirmed,
    suspect_host,
)
from daemon.sip.calls import ACTIVE, CallRecord


def incoming(call_id: str, host: str, answered_at: float | None, state: str = "Calling") -> CallRecord:
    rec = CallRecord(call_id, "Incoming", "acc0", "sip:door@127.0.0.1", f"sip:x@{host}")
    rec.peer_host, rec.state = host, state
    rec.calling_deadline = None if answered_at is None else answered_at + INCOMING_ACK_WAIT_S
    return rec


def test_a_host_is_suspect_only_after_its_call_waited_a_second_for_the_ack():
    calls = [incoming("In-1", "10.0.0.9", answered_at=100.0)]
    assert not suspect_host(calls, "10.0.0.9", "In-2", now=100.5)      # a phone making two calls
    assert suspect_host(calls, "10.0.0.9", "In-2", now=101.5)
    assert not suspect_host(calls, "10.0.0.8", "In-2", now=101.5)      # another host is not held back
    assert not suspect_host(calls, "", "In-2", now=101.5)               # no address: no rule
    assert not suspect_host(calls, "10.0.0.9", "In-1", now=101.5)      # the call itself does not count


def test_confirmed_or_unanswered_calls_never_make_a_host_suspect_nor_get_evicted():
    active = incoming("In-1", "10.0.0.9", answered_at=100.0, state=ACTIVE)
    ringing = incoming("In-2", "10.0.0.9", answered_at=None)
    assert not suspect_host([active, ringing], "10.0.0.9", "In-3", now=200.0)
    assert oldest_unconfirmed([active, ringing], "In-3") is None


def test_the_oldest_unconfirmed_call_gives_way():
    old, new = incoming("In-1", "a", answered_at=100.0), incoming("In-2", "b", answered_at=103.0)
    assert oldest_unconfirmed([new, old], "In-9") is old
    assert oldest_unconfirmed([new, old], "In-1") is new               # never the newcomer itself


def test_call_rate_allows_a_burst_per_second_then_recovers():
    rate = CallRate()
    for i in range(CALL_RATE_PER_SECOND):
        assert rate.allows(10.0 + i * 0.01)
        rate.started(10.0 + i * 0.01)
    assert not rate.allows(10.5)
    assert rate.allows(11.01)                                          # the first call left the window
