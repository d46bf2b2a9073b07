"""The call model: one CallRecord per call, reasons per the spec, a bounded history, JSON both ways.

Pure logic (no pjsua2): the engine creates and updates records; everything here is testable alone.
"""
from __future__ import annotations

import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable

from daemon.dtmf_matcher import DtmfMatcher

HISTORY_SIZE = 100
CALL_ID_MAX = 64

# CallState values (the one definition: the events, the intercom and the commands import these).
# IDLE is the station's aggregate state when no call is Calling or Active.
IDLE, CALLING, ACTIVE, TERMINATING, TERMINATED = "Idle", "Calling", "Active", "Terminating", "Terminated"
# The Call destination that makes a VMS call (no SIP; the spec's VMS_CALL)
VMS_CALL = "VMS_CALL"

# Reasons for a call that ends before it was answered, by final SIP status code.
BUSY_CODES = frozenset({486, 600})


def iso_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_call_id(direction: str, counter: int, now: float | None = None) -> str:
    """`Out-<n>-<epoch>-<random>` like the spec's examples, never longer than 64 characters."""
    now = time.time() if now is None else now
    prefix = "Out" if direction == "Outgoing" else "In"
    return f"{prefix}-{counter}-{now:.6f}-{secrets.token_urlsafe(12)}"[:CALL_ID_MAX]


def end_reason(was_active: bool, local_reason: str | None, status_code: int) -> str:
    """Reason for a call that reached DISCONNECTED.

    * `local_reason`: set by the engine when it ended the call itself (NoAnswer on CallingTimeout,
      Terminated on TerminateCall/MaxCallDuration/shutdown, Denied on a refused incoming call).
    * an answered call always ends with Terminated;
    * an unanswered one: 486/600 -> Busy, anything else (603, 404, 408, 488, 503...) -> Failed.
    """
    if local_reason:
        return local_reason
    if was_active:
        return "Terminated"
    if status_code in BUSY_CODES:
        return "Busy"
    return "Failed"


@dataclass
class CallRecord:
    call_id: str
    direction: str                 # Outgoing | Incoming
    account_id: str
    device_uri: str
    remote_uri: str
    start_time: float = field(default_factory=time.time)
    state: str = CALLING
    reason: str = "Initiated"
    stop_time: float | None = None
    audio_codec: str = ""
    source: str = "DoorStation"
    # engine-side bookkeeping (not part of CallStatus)
    local_reason: str | None = None
    calling_deadline: float | None = None
    active_deadline: float | None = None
    last_status_code: int = 0
    peer_host: str = ""            # incoming: the address the INVITE came from (not its Via)
    announced: bool = False        # its Initiated was emitted (incoming calls have none: set at once)
    dtmf: DtmfMatcher | None = None  # the engine's DtmfMatcher for this call, from its first digit

    def status(self) -> dict:
        """The spec's CallStatus."""
        st = {"CallId": self.call_id, "Source": self.source, "CallState": self.state,
              "CallStateReason": self.reason, "StartTime": iso_time(self.start_time),
              "Direction": self.direction, "DeviceURI": self.device_uri, "RemoteURI": self.remote_uri,
              "CallType": "SIP", "SIPAccountId": self.account_id}
        if self.stop_time is not None:
            st["StopTime"] = iso_time(self.stop_time)
        if self.audio_codec:
            st["AudioCodec"] = self.audio_codec
        return st


class LiveCalls:
    """The calls in progress as the supervisor's loop knows them (SIP and VMS): CallId -> CallState.

    One writer: the event sequencer (daemon/events.py), fed every call transition by the runtime;
    the intercom (LED, ring-back, the button's hang-up) and the status read it. Bounded by the
    calls in progress: an ended call is forgotten."""

    def __init__(self) -> None:
        self._states: dict[str, str] = {}

    def set(self, call_id: str, state: str) -> None:
        if state in (CALLING, ACTIVE):
            self._states[call_id] = state
        else:
            self._states.pop(call_id, None)

    def get(self, call_id: str) -> str | None:
        return self._states.get(call_id)

    def items(self) -> list[tuple[str, str]]:
        return list(self._states.items())

    @property
    def aggregate(self) -> str:
        """The station's CallState: Active if any call is active, else Calling if any calls, else Idle."""
        return aggregate_state(self._states.values())

    def __len__(self) -> int:
        return len(self._states)


def aggregate_state(states: Iterable[str]) -> str:
    states = set(states)
    return ACTIVE if ACTIVE in states else CALLING if CALLING in states else IDLE


class CallHistory:
    """Finished calls, newest last, bounded (the spec keeps 'recently terminated' calls)."""

    def __init__(self, size: int = HISTORY_SIZE):
        self._items: deque[dict] = deque(maxlen=size)

    def add(self, status: dict) -> None:
        self._items.append(dict(status))

    def load(self, statuses: Iterable[dict]) -> None:
        for st in statuses:
            self.add(st)

    def get(self, call_id: str) -> dict | None:
        return next((dict(s) for s in reversed(self._items) if s.get("CallId") == call_id), None)

    def all(self) -> list[dict]:
        return [dict(s) for s in self._items]

    def __len__(self) -> int:
        return len(self._items)


# -- persistence helpers for the `calls` table (call_id TEXT, started REAL, doc TEXT) ------------
def history_to_json(statuses: Iterable[dict]) -> str:
    return json.dumps([dict(s) for s in statuses], sort_keys=True)


def history_from_json(text: str) -> list[dict]:
    data = json.loads(text) if text else []
    if not isinstance(data, list):
        raise ValueError("call history JSON must be a list")
    return [d for d in data if isinstance(d, dict) and isinstance(d.get("CallId"), str)]


def call_row(status: dict) -> tuple[str, float, str]:
    """(call_id, started_epoch, doc) for `INSERT OR REPLACE INTO calls`."""
    started = datetime.fromisoformat(status["StartTime"].replace("Z", "+00:00")).timestamp()
    return status["CallId"], started, json.dumps(status, sort_keys=True)


def status_from_row(doc: str) -> dict:
    return json.loads(doc)
