"""Which new calls the engine lets in: the outgoing call rate, and incoming callers that never ACK.

Pure logic over the engine's CallRecords (no pjsua2), so the rules are tested alone
(tests/sip/test_admission.py) and the engine only asks.
"""
from __future__ import annotations

from typing import Iterable

from daemon.sip.calls import CALLING, CallRecord

# An incoming call we answered must be confirmed by the caller's ACK. A real phone ACKs within
# milliseconds (seconds with packet loss: 200 OK is retransmitted at 0.5, 1, 2, 4 s); an INVITE
# whose Via points nowhere never is, and pjsip keeps such a call until its ACK and BYE timeouts
# (about a minute). Our record of it ends after this, and a new caller may take its place before.
INCOMING_ACK_WAIT_S = 8.0
# A host with a call still unconfirmed after this long gets no new call answered until that call is
# confirmed or dropped: it sends INVITEs it never ACKs. (A phone that does ACK is never held back,
# even making several calls at once.)
UNCONFIRMED_SUSPECT_S = 1.0
# New calls per second. Every call registers two sockets (RTP, RTCP) with pjlib's select()
# ioqueue, which holds each closed one for 500 ms before reuse. With pjlib's 64 slots (PyPI's wheel)
# ~30 calls in half a second aborted the process; our build has 512 slots and fails a call instead
# of aborting (tests/test_call_flood.py). A door station never needs more than a few calls a second.
CALL_RATE_PER_SECOND = 8


def _unconfirmed(calls: Iterable[CallRecord], newcomer: str) -> list[CallRecord]:
    """Incoming calls answered (their ACK deadline set) and not confirmed yet, except `newcomer`."""
    return [r for r in calls if r.call_id != newcomer and r.direction == "Incoming" and r.state == CALLING
            and r.calling_deadline is not None]


def suspect_host(calls: Iterable[CallRecord], host: str, newcomer: str, now: float) -> bool:
    """Has `host` a call answered more than UNCONFIRMED_SUSPECT_S ago and still not ACKed?"""
    late = now + INCOMING_ACK_WAIT_S - UNCONFIRMED_SUSPECT_S      # the deadline is set at answer time
    return bool(host) and any(r.peer_host == host and (r.calling_deadline or 0.0) < late
                              for r in _unconfirmed(calls, newcomer))


def oldest_unconfirmed(calls: Iterable[CallRecord], newcomer: str) -> CallRecord | None:
    """At the call limit, the call that gives its slot to a new caller: the oldest answered but never
    confirmed one (no ACK: a spoofed or unreachable caller). Confirmed calls are never chosen."""
    waiting = _unconfirmed(calls, newcomer)
    return min(waiting, key=lambda r: r.calling_deadline or 0.0) if waiting else None


class CallRate:
    """At most CALL_RATE_PER_SECOND new outgoing calls in any second."""

    def __init__(self, per_second: int = CALL_RATE_PER_SECOND) -> None:
        self.per_second = per_second
        self._starts: list[float] = []          # monotonic times of the last second's calls

    def allows(self, now: float) -> bool:
        self._starts = [t for t in self._starts if now - t < 1.0]
        return len(self._starts) < self.per_second

    def started(self, now: float) -> None:
        self._starts.append(now)
