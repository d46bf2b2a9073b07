"""The whole chain a newcomer uses: HTTP (Digest) against a real `doorstation run`, SIP to real
peers on loopback (kamailio as registrar/proxy, baresip as the phone, the pjsua2 agent where baresip
cannot do it), simulated GPIO from hardware.toml. Every port is random, every wait is bounded."""
from __future__ import annotations

import pytest

from tests.harness import doorstation
from tests.sip_peers import agent_factory, baresip_factory, kamailio_factory, wait_until  # noqa: F401  (fixtures)
from tests.stack_sip import (
    TOPIC_BUTTON,
    TOPIC_DTMF,
    TOPIC_RELAY,
    TOPIC_STATE,
    TOPIC_STATE_CHANGE,
    EventTail,
    call_status,
    enable_sip,
    event_key,
    hardware_toml,
    open_door_dtmf,
    start_station,
    wait_account_status,
    wait_call_state,
)

pytestmark = [pytest.mark.integration, pytest.mark.sip]


@pytest.fixture
def stations(tmp_path):
    """Starts stations on demand (hardware.toml optional); all are stopped at teardown."""
    started = []

    def make(hardware: str | None = None, name: str = "state"):
        st = start_station(tmp_path / name, hardware)
        started.append(st)
        return st

    yield make
    for st in started:
        st.stop()


def registered_bob(baresip_factory, kport: int):  # noqa: F811
    bob = baresip_factory(accounts_line=lambda b: (
        f'<sip:bob@127.0.0.1>;auth_pass=bob-secret;outbound="sip:127.0.0.1:{kport}";regint=60;'
        "answermode=auto;audio_codecs=PCMU/8000/1,PCMA/8000/1"))
    # baresip registers before its control socket is up: poll its registration table
    wait_until(lambda: "OK" in bob.command("reginfo")["data"], 10.0, "baresip to register", step=0.2)
    return bob


def call_flow(tail: EventTail, call_id: str) -> list[tuple[str, str]]:
    """The call's StateChange events and the aggregate State events, in log order (one call at a time)."""
    return [event_key(e) for e in tail.events
            if (e["topic"] == TOPIC_STATE_CHANGE and e["data"].get("CallId") == call_id) or e["topic"] == TOPIC_STATE]


# ---- a) registrar, outgoing call, events, history across a restart -------------------------------------
def test_registration_status_through_the_api(stations, kamailio_factory):  # noqa: F811
    k = kamailio_factory()
    st = stations()
    enable_sip(st)
    good = st.ok("SetSIPAccount", {"SIPAccount": {"UserId": "door", "Password": "door-secret",
                                                  "Registrar": f"127.0.0.1:{k.port}", "IsDefault": True}})
    bad = st.ok("SetSIPAccount", {"SIPAccount": {"UserId": "door", "Password": "wrong",
                                                 "Registrar": f"127.0.0.1:{k.port}", "IsDefault": False}})
    ok = wait_account_status(st, good["SIPAccountId"], 200)
    assert ok["StatusText"] == "OK" and ok["RegURI"] == f"127.0.0.1:{k.port}"
    assert ok["SIPURI"] == f"sip:door@127.0.0.1:{k.port}" and ok["IsDefault"] is True
    refused = wait_account_status(st, bad["SIPAccountId"], 401)
    assert refused["StatusText"] == "Unauthorized" and refused["IsDefault"] is False


def test_call_through_registrar_events_and_persisted_history(stations, kamailio_factory, baresip_factory):  # noqa: F811
    k = kamailio_factory()
    bob = registered_bob(baresip_factory, k.port)
    st = stations()
    enable_sip(st)
    acc = st.ok("SetSIPAccount", {"SIPAccount": {"UserId": "door", "Password": "door-secret",
                                                 "Registrar": f"127.0.0.1:{k.port}", "IsDefault": True}})
    wait_account_status(st, acc["SIPAccountId"], 200)
    tail = EventTail(st)
    to = f"sip:bob@127.0.0.1:{k.port}"
    call_id = st.ok("Call", {"To": to})["CallId"]
    seen = []    # states observed by polling GetCallStatus until Active
    active = wait_until(lambda: (s := call_status(st, call_id), seen.append(s["CallState"]))[0]["CallState"]
                        == "Active" and s, 10.0, "Active")
    assert set(seen) <= {"Calling", "Active"} and seen == sorted(seen, key=["Calling", "Active"].index)
    assert active["CallStateReason"] == "AcceptedByRemote" and active["Direction"] == "Outgoing"
    assert active["SIPAccountId"] == acc["SIPAccountId"] and active["RemoteURI"] == to
    assert active["AudioCodec"] in ("PCMU", "PCMA")
    bob.wait_event("CALL_ESTABLISHED")
    tail.wait_for(lambda e: event_key(e) == (TOPIC_STATE, "Active"), what="State Active")
    st.ok("TerminateCall", {"CallId": call_id})
    done = wait_call_state(st, call_id, "Terminated")
    assert done["CallStateReason"] == "Terminated" and done["StopTime"]
    tail.wait_for(lambda e: event_key(e) == (TOPIC_STATE, "Idle"), what="State Idle")
    assert call_flow(tail, call_id) == [
        (TOPIC_STATE_CHANGE, "Initiated"), (TOPIC_STATE, "Calling"),
        (TOPIC_STATE_CHANGE, "AcceptedByRemote"), (TOPIC_STATE, "Active"),
        (TOPIC_STATE_CHANGE, "Terminated"), (TOPIC_STATE, "Idle")]
    bob.wait_event("CALL_CLOSED")
    listed = {s["CallId"]: s for s in st.ok("GetCallStatuses")["CallStatus"]}
    assert listed[call_id] == done
    st.stop()
    st.start()
    after_restart = {s["CallId"]: s for s in st.ok("GetCallStatuses")["CallStatus"]}
    assert after_restart[call_id] == done
    assert call_status(st, call_id) == done


# ---- b) DTMF through the API configuration to the door relay --------------------------------------------
def configure_door_dtmf(st) -> tuple[str, str]:
    """The spec's workflow: event, trigger #1234#, configuration, bound to the peer-to-peer account;
    the event bound to the relay. Returns (DTMFEventId, DTMFConfigurationId)."""
    event_id, config_id = open_door_dtmf(st, sip_info=True)
    r = st.session().put(f"{st.url}/api/door/bindings", json={"DTMFEventIds": [event_id]}, timeout=10)
    assert r.status_code == 200 and r.json()["Effective"] == [event_id]
    return event_id, config_id


def active_call_to(st, bob) -> str:
    call_id = st.ok("Call", {"To": bob.aor})["CallId"]
    wait_call_state(st, call_id, "Active")
    bob.wait_event("CALL_ESTABLISHED")
    return call_id


def hang_up(st, tail: EventTail, call_id: str) -> None:
    st.ok("TerminateCall", {"CallId": call_id})
    tail.wait_for(lambda e: e["data"].get("CallId") == call_id and e["data"].get("Reason") == "Terminated",
                  what="Terminated")


def test_rfc2833_dtmf_opens_the_door_once_and_not_when_disabled(stations, baresip_factory):  # noqa: F811
    st = stations(hardware_toml(pulse_ms=150))
    enable_sip(st)
    event_id, config_id = configure_door_dtmf(st)
    bob = baresip_factory()
    tail = EventTail(st)
    call_id = active_call_to(st, bob)
    assert bob.command("sndcode", "#1234#")["ok"]
    tail.wait_for(lambda e: e["topic"] == TOPIC_RELAY and e["data"].get("Cause") == "PulseEnded",
                  what="relay locked again")
    hang_up(st, tail, call_id)
    dtmf = [e for e in tail.events if e["topic"] == TOPIC_DTMF]
    assert len(dtmf) == 1
    assert dtmf[0]["source"]["DTMFEventId"] == event_id and dtmf[0]["data"]["CallId"] == call_id
    assert dtmf[0]["source"]["Name"] == "OpenDoorEvent"
    door = [e for e in tail.events if e["topic"] in (TOPIC_DTMF, TOPIC_RELAY)]
    assert [event_key(e) for e in door] == [(TOPIC_DTMF, ""), (TOPIC_RELAY, "Unlocked"), (TOPIC_RELAY, "Locked")]
    assert door[1]["data"]["Cause"] == "DTMF" and door[1]["data"]["DTMFEventId"] == event_id
    assert door[1]["data"]["CallId"] == call_id and door[1]["seq"] > dtmf[0]["seq"]
    assert door[2]["data"]["Cause"] == "PulseEnded"

    # RFC 2833 switched off in the DTMF configuration: the same digits open nothing.
    st.ok("SetDTMFConfiguration", {"DTMFConfiguration": {"Id": config_id, "RFC2833": False}})
    assert st.ok("GetDTMFConfiguration", {"DTMFConfigurationId": config_id})["DTMFConfiguration"]["RFC2833"] is False
    tail = EventTail(st)
    call_id = active_call_to(st, bob)
    mark = len(st.output)
    assert bob.command("sndcode", "#1234#")["ok"]
    # The barrier that the digits did arrive: the supervisor logs each digit it drops.
    wait_until(lambda: sum(f"call {call_id}: DTMF" in line and "ignored (method disabled)" in line
                           for line in st.output[mark:]) >= 6, 10.0, "6 digits dropped by the station")
    hang_up(st, tail, call_id)
    assert [e for e in tail.events if e["topic"] in (TOPIC_DTMF, TOPIC_RELAY)] == []


def test_sip_info_opens_the_door_while_rfc2833_is_off(stations, agent_factory):  # noqa: F811
    """The pjsua2 agent sends both ways in one call: RFC 2833 (off, dropped) then SIP INFO (on)."""
    st = stations(hardware_toml(pulse_ms=150))
    enable_sip(st)
    event_id, config_id = configure_door_dtmf(st)
    st.ok("SetDTMFConfiguration", {"DTMFConfiguration": {"Id": config_id, "RFC2833": False, "RFC2976": True}})
    agent = agent_factory()
    tail = EventTail(st)
    call_id = st.ok("Call", {"To": agent.uri()})["CallId"]
    wait_call_state(st, call_id, "Active")
    agent.wait_event("media")
    mark = len(st.output)
    agent.send(cmd="dtmf", digits="#1234#", method="RFC2833")
    wait_until(lambda: sum(f"call {call_id}: DTMF" in line and "ignored (method disabled)" in line
                           for line in st.output[mark:]) >= 6, 10.0, "6 RFC 2833 digits dropped by the station")
    agent.send(cmd="dtmf", digits="#1234#", method="SIP_INFO")
    tail.wait_for(lambda e: e["topic"] == TOPIC_RELAY and e["data"].get("Cause") == "PulseEnded",
                  what="relay locked again")
    hang_up(st, tail, call_id)
    dtmf = [e for e in tail.events if e["topic"] == TOPIC_DTMF]
    assert [(e["source"]["DTMFEventId"], e["data"]["CallId"]) for e in dtmf] == [(event_id, call_id)]
    relay = [e["data"] for e in tail.events if e["topic"] == TOPIC_RELAY]
    assert [(r["State"], r["Cause"]) for r in relay] == [("Unlocked", "DTMF"), ("Locked", "PulseEnded")]


# ---- c) incoming calls -------------------------------------------------------------------------------------
def test_incoming_accepted_then_denied_when_not_allowed(stations, baresip_factory):  # noqa: F811
    st = stations()
    port = enable_sip(st, allow_incoming=True)
    bob = baresip_factory()
    tail = EventTail(st)
    assert bob.command("dial", f"sip:door@127.0.0.1:{port}")["ok"]
    accepted = tail.wait_for(lambda e: e["data"].get("Reason") == "AcceptedByDevice", what="AcceptedByDevice")
    call_id = accepted["data"]["CallId"]
    status = call_status(st, call_id)
    assert status["CallState"] == "Active" and status["Direction"] == "Incoming"
    assert status["RemoteURI"].startswith("sip:bob@127.0.0.1")
    bob.wait_event("CALL_ESTABLISHED")
    assert bob.command("hangup")["ok"]
    assert wait_call_state(st, call_id, "Terminated")["CallStateReason"] == "Terminated"

    st.ok("SetSIPConfiguration", {"SIPConfiguration": {"AllowIncomingCalls": False}})
    mark = bob.mark()
    bob.command("dial", f"sip:door@127.0.0.1:{port}")
    denied = tail.wait_for(lambda e: e["data"].get("Reason") == "Denied", what="Denied")
    closed = bob.wait_event("CALL_CLOSED", since=mark)
    assert "603" in closed.get("param", "")
    listed = {s["CallId"]: s for s in st.ok("GetCallStatuses")["CallStatus"]}
    refused = listed[denied["data"]["CallId"]]
    assert (refused["CallState"], refused["CallStateReason"], refused["Direction"]) == ("Terminated", "Denied",
                                                                                         "Incoming")
    assert listed[call_id]["CallStateReason"] == "Terminated"


# ---- d) the call button ------------------------------------------------------------------------------------
def test_button_press_calls_the_configured_recipient(stations, baresip_factory):  # noqa: F811
    bob = baresip_factory()
    st = stations(hardware_toml(recipient=bob.aor))
    enable_sip(st)
    tail = EventTail(st)
    pressed = doorstation("press", state_dir=st.state_dir, timeout=30)
    assert pressed.returncode == 0, pressed.stderr
    bob.wait_event("CALL_ESTABLISHED", timeout=10.0)
    started = tail.wait_for(lambda e: e["data"].get("Reason") == "AcceptedByRemote", what="AcceptedByRemote")
    call_id = started["data"]["CallId"]
    status = call_status(st, call_id)
    assert status["CallState"] == "Active" and status["RemoteURI"] == bob.aor and status["CallType"] == "SIP"
    button = [e["data"] for e in tail.events if e["topic"] == TOPIC_BUTTON]
    assert button[0]["Action"] == "Call" and button[0]["To"] == bob.aor
    hang_up(st, tail, call_id)
    bob.wait_event("CALL_CLOSED")
