"""Helpers for driving a real `doorstation run` (tests/harness.Station) in SIP scenarios, shared by
tests/test_sip_stack.py and bench/sip.py: hardware.toml with simulated GPIO, SIP switched on through
the API, and a reader of /api/events that waits for events in a bounded time."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from tests.harness import Station, free_sip_port
from tests.sip_peers import rtp_base, wait_until

TOPIC_STATE = "tnsaxis:Call/State"
TOPIC_STATE_CHANGE = "tnsaxis:Call/StateChange"
TOPIC_DTMF = "tnsaxis:Call/DTMF"
TOPIC_RELAY = "doorstation:Relay"
TOPIC_BUTTON = "doorstation:Button"


def hardware_toml(recipient: str = "VMS_CALL", pulse_ms: int = 200) -> str:
    """Simulated GPIO (no chip needed); the relay pulse is short so tests see it end."""
    return f"""
[gpio]
simulated = true
[gpio.call_button]
line = "CALL_BUTTON"
active_low = true
debounce_ms = 10
[gpio.call_led]
line = "CALL_LED"
[gpio.door_relay]
line = "DOOR_LOCK"
pulse_ms = {pulse_ms}
[button]
recipient = "{recipient}"
while_calling = "hangup"
while_active = "hangup"
"""


def start_station(state_dir: Path, hardware: str | None = None) -> Station:
    state_dir.mkdir(parents=True, exist_ok=True)
    if hardware is not None:
        (state_dir / "hardware.toml").write_text(hardware)
    return Station(state_dir).start()


def enable_sip(st: Station, allow_incoming: bool = True, sip_port: int | None = None) -> int:
    """SIP on through axcall:SetSIPConfiguration on free loopback ports; returns the SIP port."""
    port = sip_port or free_sip_port()
    tls_port = free_sip_port()   # the TLS listener too: parallel stations must not share 5061
    while tls_port == port:
        tls_port = free_sip_port()
    st.ok("SetSIPConfiguration", {"SIPConfiguration": {
        "SIPEnabled": True, "SIPPort": port, "SIPTLSPort": tls_port, "AllowIncomingCalls": allow_incoming,
        "RTPStartPort": rtp_base(), "CallingTimeout": 15}})
    wait_applied(st)
    return port


def wait_applied(st: Station, timeout: float = 15.0) -> dict:
    """A configuration write is answered at once and applied in the background: wait until the
    station says it is in force (a raw peer's first packet would otherwise find no listener)."""
    from daemon.control.client import ControlClient
    client = ControlClient(str(st.state_dir / "run" / "control.sock"), timeout=10)
    try:
        applied = wait_until(lambda: (s := client.request("status")["SIPConfiguration"])["State"]
                             in ("Applied", "Failed") and s, timeout, "the SIP configuration to be applied",
                             step=0.02)
    finally:
        client.close()
    assert applied["State"] == "Applied", applied
    return applied


def open_door_dtmf(st: Station, account_id: str = "peer-to-peer", sip_info: bool = False) -> tuple[str, str]:
    """The spec's DTMF workflow: event OpenDoorEvent, trigger #1234#, a configuration with RFC 2833
    (and SIP INFO, RFC 2976, if asked), bound to the account. Returns (DTMFEventId, DTMFConfigurationId)."""
    event_id = st.ok("SetDTMFEvent", {"DTMFEvent": {"Name": "OpenDoorEvent"}})["DTMFEventId"]
    trigger_id = st.ok("SetDTMFTrigger", {"DTMFTrigger": {"DTMFSequence": "#1234#",
                                                          "DTMFEventId": event_id}})["DTMFTriggerId"]
    config_id = st.ok("SetDTMFConfiguration", {"DTMFConfiguration": {
        "Name": "Door", "DTMFTriggerId": [trigger_id], "RFC2833": True, "RFC2976": sip_info}})["DTMFConfigurationId"]
    st.ok("SetSIPAccount", {"SIPAccount": {"Id": account_id, "DTMFConfigurationId": config_id}})
    return event_id, config_id


def account_status(st: Station, account_id: str) -> dict:
    return st.ok("GetSIPAccountStatus", {"SIPAccountId": account_id})["SIPAccountStatus"]


def wait_account_status(st: Station, account_id: str, code: int, timeout: float = 10.0) -> dict:
    return wait_until(lambda: (s := account_status(st, account_id))["Status"] == code and s,
                      timeout, f"{account_id} registration status {code}", step=0.1)


def call_status(st: Station, call_id: str) -> dict:
    return st.ok("GetCallStatus", {"CallId": call_id})["CallStatus"]


def wait_call_state(st: Station, call_id: str, state: str, timeout: float = 10.0) -> dict:
    return wait_until(lambda: (s := call_status(st, call_id))["CallState"] == state and s,
                      timeout, f"call {call_id} to reach {state}", step=0.05)


def event_key(e: dict) -> tuple[str, str]:
    """(topic, the value that tells events of a topic apart) for readable assertions."""
    d = e["data"]
    return e["topic"], d.get("Reason") or d.get("CallState") or d.get("State") or d.get("Action") or ""


class EventTail:
    """Reads /api/events from a position on; every wait is bounded."""

    def __init__(self, st: Station, after: int | None = None):
        self.st = st
        self.session = st.session()
        self.events: list[dict] = []
        self.after = self._last_seq() if after is None else after

    def _last_seq(self) -> int:
        return self._page(0, 0)["next"]

    def _page(self, after: int, wait: float) -> dict:
        r = self.session.get(f"{self.st.url}/api/events?after={after}&wait={wait:g}", timeout=wait + 10)
        assert r.status_code == 200, r.text
        return r.json()

    def poll(self, wait: float = 0) -> list[dict]:
        page = self._page(self.after, wait)
        self.events += page["events"]
        self.after = page["next"]
        return page["events"]

    def wait_for(self, pred: Callable[[dict], bool], timeout: float = 10.0, what: str = "event") -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events:
                if pred(e):
                    return e
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}; got {[event_key(e) for e in self.events]}")
            self.poll(wait=min(1.0, left))

    def of_call(self, call_id: str) -> list[dict]:
        return [e for e in self.events if e["data"].get("CallId") == call_id]
