"""Shared pieces for the command unit tests: a real Store on a temporary file and a small fake of
the Runtime protocol that records what the handlers asked of it. (No tests in here.)"""
from __future__ import annotations

import asyncio
import itertools

import pytest

from daemon.commands import Context, invoke, load_all, lookup
from daemon.faults import VapixFault
from daemon.store import Store

SUPPORTED_CODECS = [
    {"Name": "opus", "SampleRate": 48000},
    {"Name": "G722", "SampleRate": 16000},
    {"Name": "PCMA", "SampleRate": 8000},
    {"Name": "PCMU", "SampleRate": 8000},
    {"Name": "L16", "SampleRate": 16000},
    {"Name": "L16", "SampleRate": 8000},
]


class FakeRuntime:
    """Implements daemon.commands.Runtime in memory: calls get ids Out-<n>, every account has a
    'Does not register' status, config_changed calls are recorded in order."""

    def __init__(self) -> None:
        self.changed: list[str] = []
        self.calls: dict[str, dict] = {}
        self.terminated: list[str] = []
        self.placed: list[tuple[str | None, str]] = []
        self._ids = itertools.count()

    def config_changed(self, what: str) -> None:
        assert what in ("sip_configuration", "sip_accounts", "dtmf", "vms", "codecs")
        self.changed.append(what)

    def config_settled(self) -> None:
        return None

    def supported_codecs(self) -> list[dict]:
        return [dict(c) for c in SUPPORTED_CODECS]

    def call(self, account_id: str | None, to: str) -> str:
        call_id = f"Out-{next(self._ids)}"
        self.placed.append((account_id, to))
        self.calls[call_id] = {"CallId": call_id, "CallState": "Calling",
                               "CallType": "VMS" if to == "VMS_CALL" else "SIP", "RemoteURI": to}
        return call_id

    def terminate_call(self, call_id: str) -> None:
        self.terminated.append(call_id)
        self.calls[call_id]["CallState"] = "Terminated"

    def call_status(self, call_id: str) -> dict | None:
        return self.calls.get(call_id)

    def call_statuses(self) -> list[dict]:
        return list(self.calls.values())

    def account_status(self, account_id: str) -> dict | None:
        return {"SIPAccountId": account_id, "SIPURI": "sip:127.0.0.1:5060", "RegURI": "",
                "Status": 0, "StatusText": "Does not register"}


class Station:
    """A store + fake runtime + helpers to run commands the way the supervisor does."""

    def __init__(self, path) -> None:
        load_all()
        self.store = Store(path)
        self.runtime = FakeRuntime()

    def run(self, name: str, params=None, *, lenient: bool = False):
        ctx = Context(store=self.store, runtime=self.runtime, lenient=lenient)
        return asyncio.run(invoke(lookup(name), ctx, {} if params is None else params))

    def fault(self, name: str, params=None, *, lenient: bool = False) -> VapixFault:
        with pytest.raises(VapixFault) as info:
            self.run(name, params, lenient=lenient)
        return info.value

    def close(self) -> None:
        self.store.close()


def is_invalid(fault: VapixFault) -> bool:
    return (fault.fault, fault.code, fault.subcode) == ("env:Sender", "ter:InvalidArgVal", "ter:InvalidArgVal")


def is_missing(fault: VapixFault) -> bool:
    return (fault.fault, fault.code) == ("env:Sender", "ter:InvalidArgs")


def is_not_found(fault: VapixFault) -> bool:
    return (fault.fault, fault.code, fault.subcode) == ("env:Sender", "ter:InvalidArgVal", "ter:NotFound")
