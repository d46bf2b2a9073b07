"""The whole stack over real sockets: auth with curl and requests, styles of real clients, the
supervisor going away, events long-poll, and a hypothesis fuzz over both request formats."""
import json
import os
import signal
import subprocess
import time

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from requests.auth import HTTPBasicAuth, HTTPDigestAuth

from tests.harness import ADMIN, VIEWER, Station, doorstation

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shared_station(tmp_path_factory):
    station = Station(tmp_path_factory.mktemp("stack") / "state").start()
    yield station
    station.stop()


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", *args],
                          capture_output=True, text=True, timeout=30)


def test_curl_digest_basic_and_failures(shared_station):
    url = f"{shared_station.url}/vapix/call"
    ok = curl("--digest", "-u", f"{ADMIN[0]}:{ADMIN[1]}", "-d", '{"axcall:GetSIPConfiguration":{}}', url)
    body, code = ok.stdout.rsplit("\n", 1)
    assert code == "200" and json.loads(body)["SIPConfiguration"]["SIPPort"] == 5060
    anyauth = curl("--anyauth", "-u", f"{ADMIN[0]}:{ADMIN[1]}",
                   f"{url}?format=simple&action=axcall:GetSIPConfiguration")
    assert anyauth.stdout.endswith("200") and "SIPConfiguration_SIPEnabled=false" in anyauth.stdout
    wrong = curl("--digest", "-u", f"{ADMIN[0]}:not-the-password", "-d", '{"axcall:GetSIPAccounts":{}}', url)
    assert wrong.stdout.endswith("401")
    missing = curl("-d", '{"axcall:GetSIPAccounts":{}}', url)
    assert missing.stdout.endswith("401")
    r = requests.post(url, json={"axcall:GetSIPAccounts": {}}, auth=HTTPBasicAuth(*ADMIN), timeout=10)
    assert r.status_code == 200
    r = requests.post(url, json={"axcall:GetSIPAccounts": {}}, auth=HTTPDigestAuth(*VIEWER), timeout=10)
    assert r.status_code == 200
    r = requests.post(url, json={"axcall:RemoveSIPAccounts": {}}, auth=HTTPDigestAuth(*VIEWER), timeout=10)
    assert r.status_code == 403


def test_other_request_styles(shared_station):
    s = shared_station.session()
    base = f"{shared_station.url}/vapix/call"
    r = s.post(base, json={"GetServiceCapabilities": {}}, timeout=10)
    assert r.status_code == 200 and r.json()["Capabilities"]["SIP"] is True
    r = s.post(f"{base}/GetSIPAccounts", json={}, timeout=10)
    assert r.status_code == 200 and "SIPAccount" in r.json()
    r = s.post(base, json={"apiVersion": "1.0", "context": "c1", "method": "GetVMSCallConfiguration", "params": {}},
               timeout=10)
    assert r.json()["context"] == "c1" and r.json()["data"]["VMSCallConfiguration"]["Timeout"] >= 1
    r = s.post(base, json={"jsonrpc": "2.0", "method": "axcall:GetDTMFEvent", "params": {"DTMFEventId": "nope"},
                           "id": 7}, timeout=10)
    assert r.json()["id"] == 7 and r.json()["error"]["code"] == -32602
    r = s.post(base, json={"axcall:SetSIPAccounts": {"SIPAccounts": {"SIPAccount": [{"UserId": "wrapped"}]}}},
               timeout=10)
    assert r.status_code == 200 and len(r.json()["SIPAccountId"]) == 1


def test_events_long_poll(shared_station):
    from tests.stack_sip import wait_applied
    # the module's earlier writes are applied in the background and log an event when done: wait
    # for that, or it lands in the long-poll that must stay empty (a fresh-clone run hit it)
    wait_applied(shared_station)
    s = shared_station.session()
    first = s.get(f"{shared_station.url}/api/events?after=0&wait=0", timeout=10).json()
    after = first["next"]
    t0 = time.monotonic()
    empty = s.get(f"{shared_station.url}/api/events?after={after}&wait=1", timeout=10).json()
    assert empty["events"] == [] and empty["next"] == after and time.monotonic() - t0 >= 0.9
    call_id = shared_station.ok("Call", {"To": "VMS_CALL"})["CallId"]
    got = s.get(f"{shared_station.url}/api/events?after={after}&wait=5", timeout=10).json()
    change = next(e for e in got["events"] if e["topic"] == "tnsaxis:Call/StateChange")
    assert change["data"]["CallId"] == call_id and change["data"]["Reason"] == "Initiated"
    shared_station.ok("TerminateCall", {"CallId": call_id})
    got = s.get(f"{shared_station.url}/api/events?after={got['next']}&wait=5", timeout=10).json()
    topics = [(e["topic"], e["data"]) for e in got["events"]]
    assert topics[0] == ("tnsaxis:Call/StateChange", {"Reason": "Terminated", "CallId": call_id,
                                                      "RemoteURI": "VMS_CALL", "DeviceURI": ""})
    assert topics[1] == ("tnsaxis:Call/State", {"CallState": "Idle"})
    assert requests.get(f"{shared_station.url}/api/events", timeout=10).status_code == 401


def test_supervisor_down_gives_503_within_a_second(tmp_path):
    station = Station(tmp_path / "state").start()
    try:
        from daemon.cli import control_client
        s = station.session()
        # the worker's first request loads the app (over a second on a busy machine): not measured
        assert s.post(f"{station.url}/vapix/call", json={"axcall:GetSIPAccounts": {}}, timeout=10).ok
        pid = control_client(station.state_dir.resolve()).request("ping")["pid"]
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        t0 = time.monotonic()
        r = s.post(f"{station.url}/vapix/call", json={"axcall:GetSIPAccounts": {}}, timeout=10)
        assert time.monotonic() - t0 < 1.0
        assert r.status_code == 503 and r.json()["Fault"] == "env:Receiver"
        r = s.get(f"{station.url}/vapix/call?format=simple&action=axcall:GetSIPAccounts", timeout=10)
        assert r.status_code == 503 and 'Fault="env:Receiver"' in r.text
        # `doorstation run` restarts the supervisor, and the API reconnects by itself
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = s.post(f"{station.url}/vapix/call", json={"axcall:GetSIPAccounts": {}}, timeout=10)
            if r.status_code == 200:
                break
            time.sleep(0.2)
        assert r.status_code == 200
    finally:
        station.kill()


def test_first_run_creates_admin_with_printed_password(tmp_path):
    state = tmp_path / "state"
    station = Station(state)
    # no users added beforehand: `doorstation run` must create admin and print its password once
    station.add_users = lambda: None
    station.start()
    try:
        line = next(out for out in station.output if "Created user 'admin' with password:" in out)
        password = line.rsplit(":", 1)[1].strip()
        r = requests.post(f"{station.url}/vapix/call", json={"axcall:GetSIPAccounts": {}},
                          auth=HTTPDigestAuth("admin", password), timeout=10)
        assert r.status_code == 200
    finally:
        station.stop()
    listed = doorstation("user", "list", state_dir=state)
    assert listed.stdout.split() == ["admin", "admin"]
    station = Station(state, http_port=station.http_port).start()
    try:
        assert not any("Created user" in out for out in station.output)
    finally:
        station.stop()


json_scalars = (st.none() | st.booleans() | st.integers(-2**40, 2**40)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=70))
json_values = st.recursive(json_scalars,
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=20), c, max_size=4),
                           max_leaves=12)
commands = st.sampled_from(["GetSIPAccounts", "SetSIPAccount", "SetSIPConfiguration", "SetDTMFTriggers",
                            "SetDTMFConfiguration", "SetAudioCodecs", "GetCallStatus", "TerminateCall",
                            "RemoveSIPAccounts", "SetVMSCallConfiguration", "Nope"]) | st.text(max_size=30)
fields = st.sampled_from(["SIPAccount", "SIPAccount_0_UserId", "SIPAccount_Transport", "CallId",
                          "DTMFTrigger_0_DTMFSequence", "AudioCodec_0_Name", "SIPConfiguration_SIPPort",
                          "SIPAccountId_0", "x"]) | st.text(max_size=20)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(command=commands, params=json_values, pairs=st.lists(st.tuples(fields, st.text(max_size=30)), max_size=6),
       raw=st.binary(max_size=200))
def test_fuzz_both_formats_never_5xx(shared_station, command, params, pairs, raw):
    s = shared_station.session() if not hasattr(shared_station, "_fuzz_session") else shared_station._fuzz_session
    shared_station._fuzz_session = s
    base = f"{shared_station.url}/vapix/call"
    responses = [
        s.post(base, json={f"axcall:{command}": params}, timeout=30),
        s.post(base, data=json.dumps({f"axcall:{command}": params}).encode()[: max(1, len(raw))], timeout=30),
        s.get(base, params=[("format", "simple"), ("action", f"axcall:{command}"), *pairs], timeout=30),
        s.post(base, data=raw, headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30),
    ]
    for r in responses:
        assert r.status_code < 500, (r.status_code, r.text[:300])
        if r.status_code >= 400:
            assert "Fault" in r.text or "error" in r.text


def test_sip_port_taken_at_start_keeps_the_api_up_to_fix_it(tmp_path):
    import socket as so
    station = Station(tmp_path / "state").start()
    taken = so.socket(so.AF_INET, so.SOCK_DGRAM)
    try:
        port = station.sip_port
        station.ok("SetSIPConfiguration", {"SIPConfiguration": {"SIPEnabled": True, "SIPPort": port}})
        station.stop()
        taken.bind(("127.0.0.1", port))  # another program takes the port meanwhile
        station = Station(tmp_path / "state", http_port=station.http_port).start()
        assert station.ok("GetSIPConfiguration")["SIPConfiguration"]["SIPPort"] == port
        from tests.harness import free_sip_port
        other = free_sip_port()
        assert station.ok("SetSIPConfiguration", {"SIPConfiguration": {"SIPPort": other}}) == {}
        station.ok("SetSIPAccount", {"SIPAccount": {"UserId": "door"}})
        status = station.ok("GetSIPAccountStatus", {"SIPAccountId": "sip_account_0"})["SIPAccountStatus"]
        assert status["SIPURI"].endswith(f":{other}")
    finally:
        taken.close()
        station.stop()
