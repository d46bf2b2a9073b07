"""What the engine hands to its owner: typed errors and typed events.

`on_event` is called on the engine thread: it must only enqueue (never block, never call back into
the engine synchronously). Exceptions it raises are logged and swallowed.
"""
from __future__ import annotations

from dataclasses import dataclass


class EngineError(Exception):
    """A request the engine refused or could not carry out (message is client-presentable)."""


class EngineTimeout(EngineError):
    """The engine thread did not answer in time (hung or overloaded)."""


class EngineNotRunning(EngineError):
    """start() was not called, or the engine has stopped."""


class EngineSuperseded(EngineError):
    """A configuration apply was replaced by a newer one before it completed."""


class CallNotFound(EngineError):
    """No call in progress with that CallId."""


@dataclass(frozen=True)
class CallTransition:
    """A call changed state. `reason` is a CallStateChangeReason; `status` a CallStatus snapshot."""
    call_id: str
    reason: str
    status: dict


@dataclass(frozen=True)
class CallFinished:
    """A call ended and was moved to history: persist `status` (see daemon.sip.calls.call_row).
    `sip_code` is the last SIP status code seen (diagnostics only, not part of CallStatus)."""
    status: dict
    sip_code: int = 0


@dataclass(frozen=True)
class DtmfMatched:
    call_id: str
    account_id: str
    event_id: str
    event_name: str


@dataclass(frozen=True)
class DtmfBlocked:
    """The call reached the limit of wrong sequences: further DTMF on it is ignored."""
    call_id: str
    wrong_sequences: int


@dataclass(frozen=True)
class AccountStatusChanged:
    account_id: str
    status: dict


EngineEvent = CallTransition | CallFinished | DtmfMatched | DtmfBlocked | AccountStatusChanged
