"""Fixtures for SIP tests: the engine, and real peers (baresip, kamailio, a second pjsua2 agent).

The peers and their fixtures live in tests/sip_peers.py (shared with the full-stack tests in
tests/test_sip_stack.py and bench/sip.py); they are imported here so pytest finds the fixtures.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from daemon.sip.config import AccountConfig, EngineConfig
from daemon.sip.engine import SipEngine
from tests.sip_peers import (  # noqa: F401
    Agent,
    Baresip,
    Kamailio,
    agent_factory,
    baresip,
    baresip_factory,
    free_port,
    kamailio_factory,
    rtp_base,
    wait_until,
)


# ---- engine -----------------------------------------------------------------------------------------
class EventCollector:
    """The engine's on_event: keeps every event, lets tests wait for one."""

    def __init__(self) -> None:
        self.events: list = []
        self._cond = threading.Condition()

    def __call__(self, event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def snapshot(self) -> list:
        with self._cond:
            return list(self.events)

    def wait_for(self, pred: Callable[[Any], bool], timeout: float = 5.0, what: str = "event") -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events:
                    if pred(ev):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; got {self.events!r}")
                self._cond.wait(left)

    def of_type(self, cls) -> list:
        return [e for e in self.snapshot() if isinstance(e, cls)]


@dataclass
class Station:
    engine: SipEngine
    events: EventCollector
    sip_port: int
    tls_port: int
    rtp_port: int

    @property
    def uri(self) -> str:
        return f"sip:door@127.0.0.1:{self.sip_port}"

    def config(self, accounts: tuple[AccountConfig, ...] | None = None, **kw) -> EngineConfig:
        base = dict(sip_enabled=True, sip_port=self.sip_port, sip_tls_port=self.tls_port,
                    bind_address="127.0.0.1", rtp_start_port=self.rtp_port, calling_timeout=10.0,
                    registration_retry_interval=2)
        base.update(kw)
        if accounts is None:
            accounts = (AccountConfig(id="peer-to-peer", user_id="door", is_default=True),)
        return EngineConfig(accounts=accounts, **base)

    def wait_state(self, call_id: str, state: str, timeout: float = 5.0) -> dict:
        return wait_until(lambda: (st := self.engine.call_status(call_id)) and st["CallState"] == state and st,
                          timeout, f"call {call_id} to reach {state}")

    def answers_call_from(self, peer, uri: str, account_id: str) -> str:
        """`peer` (baresip) dials `uri`; the station answers on `account_id`; the peer hangs up.
        Returns the CallId."""
        from daemon.sip.types import CallTransition
        peer.command("dial", uri)
        ev = self.events.wait_for(lambda e: isinstance(e, CallTransition) and e.reason == "AcceptedByDevice")
        assert ev.status["SIPAccountId"] == account_id
        peer.wait_event("CALL_ESTABLISHED")
        peer.command("hangup")
        assert self.wait_state(ev.call_id, "Terminated")["CallStateReason"] == "Terminated"
        return ev.call_id

    def reasons(self, call_id: str) -> list[str]:
        from daemon.sip.types import CallTransition
        return [e.reason for e in self.events.of_type(CallTransition) if e.call_id == call_id]


@pytest.fixture
def station():
    events = EventCollector()
    engine = SipEngine(events, logging.getLogger("test.sip"), pj_log_level=int(os.environ.get("PJ_LOG", "2")))
    engine.start()
    st = Station(engine, events, free_port(), free_port(), rtp_base())
    try:
        yield st
    finally:
        engine.stop()
