"""PyPI `axis` v60 (the library Home Assistant's Axis integration uses, written by nobody here)
against a real `doorstation run`: what `vapix.initialize()` learns, and its setPorts on the relay
pulsing the door through the door policy (status, event log with the user, roles).

The library runs in its own venv (.venv-axis, made by scripts/test) as a subprocess."""
import json
import re
import subprocess
import time
from importlib import metadata
from pathlib import Path

import pytest

from tests.harness import ADMIN, OPERATOR, REPO, VIEWER, Station, axis_hardware_toml, doorstation

pytestmark = pytest.mark.integration

AXIS_PYTHON = REPO / ".venv-axis" / "bin" / "python"
PULSE_MS = 2000
HARDWARE = axis_hardware_toml(PULSE_MS)


def axis(station: Station, user: tuple[str, str], *action: str) -> dict:
    # -P: the script's directory (tests/) must not shadow the library's package name
    done = subprocess.run([str(AXIS_PYTHON), "-P", str(REPO / "tests" / "axis_client.py"), "127.0.0.1",
                           str(station.http_port), user[0], user[1], *action],
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def relay_events(station: Station) -> list[dict]:
    r = station.session(ADMIN).get(f"{station.url}/api/events", params={"after": 0, "limit": 1000}, timeout=30)
    assert r.status_code == 200, r.text
    return [e for e in r.json()["events"] if e["topic"] == "doorstation:Relay"]


def status(station: Station) -> dict:
    done = doorstation("status", state_dir=station.state_dir)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    assert AXIS_PYTHON.exists(), "no .venv-axis: run scripts/test once (it installs axis==60 there)"
    state = tmp_path_factory.mktemp("axis") / "state"
    state.mkdir()
    (state / "hardware.toml").write_text(HARDWARE)
    st = Station(state).start()
    yield st
    st.stop()


def test_initialize_shows_identity_and_ports(station):
    learnt = axis(station, ADMIN, "initialize")
    info = station.session(ADMIN).post(
        f"{station.url}/axis-cgi/basicdeviceinfo.cgi",
        json={"apiVersion": "1.1", "context": "t", "method": "getAllProperties"}, timeout=30).json()
    props = info["data"]["propertyList"]
    assert re.fullmatch(r"[0-9A-F]{12}", learnt["serial_number"]), learnt
    assert learnt["serial_number"] == props["SerialNumber"]
    eth0 = Path("/sys/class/net/eth0/address")
    if eth0.exists():   # the station reads the same host's interface: its MAC is the serial
        assert learnt["serial_number"] == eth0.read_text().strip().replace(":", "").upper()
    assert learnt["product_number"] == "doorstation" == props["ProdNbr"]
    assert learnt["product_type"] == props["ProdType"]
    assert learnt["firmware_version"] == metadata.version("doorstation")
    assert learnt["http_api_version"] == 3
    assert {"api-discovery", "basic-device-info", "io-port-management"} <= set(learnt["apis"])
    assert learnt["port_api"] == "IoPortManagement"
    assert learnt["ports"] == [
        {"id": "0", "name": "Call button", "direction": "input", "state": "open"},
        {"id": "1", "name": "Door relay", "direction": "output", "state": "open"},
        {"id": "2", "name": "door_contact", "direction": "input", "state": "open"},
        {"id": "3", "name": "light", "direction": "output", "state": "open"},
    ]
    assert learnt["access_rights"] == "viewer:operator:admin"


def test_rights_follow_roles(station):
    assert axis(station, VIEWER, "initialize")["access_rights"] == "viewer"
    assert axis(station, OPERATOR, "initialize")["access_rights"] == "viewer:operator"


def test_set_ports_on_relay_pulses_the_door(station):
    before = len(relay_events(station))
    assert axis(station, OPERATOR, "close", "1") == {"done": "close", "port": "1"}
    assert status(station)["Hardware"]["Relay"] == "Unlocked"
    opened = [e for e in relay_events(station)[before:] if e["data"].get("State") == "Unlocked"]
    assert len(opened) == 1, opened
    assert opened[0]["data"]["Cause"] == "User" and opened[0]["data"]["User"] == OPERATOR[0]
    assert opened[0]["data"]["PulseMs"] == PULSE_MS
    deadline = time.monotonic() + PULSE_MS / 1000 + 10
    while time.monotonic() < deadline and status(station)["Hardware"]["Relay"] != "Locked":
        time.sleep(0.2)
    assert status(station)["Hardware"]["Relay"] == "Locked"
    assert any(e["data"].get("Cause") == "PulseEnded" for e in relay_events(station)[before:])


def test_viewer_cannot_open_the_door(station):
    before = len(relay_events(station))
    assert axis(station, VIEWER, "close", "1")["error"] == "Forbidden"
    time.sleep(0.3)
    assert status(station)["Hardware"]["Relay"] == "Locked"
    assert relay_events(station)[before:] == []


def test_open_on_relay_changes_nothing(station):
    before = len(relay_events(station))
    assert axis(station, OPERATOR, "open", "1") == {"done": "open", "port": "1"}
    assert status(station)["Hardware"]["Relay"] == "Locked"
    assert relay_events(station)[before:] == []


def test_extra_output_through_axis(station):
    assert axis(station, OPERATOR, "close", "3") == {"done": "close", "port": "3"}
    ports = axis(station, VIEWER, "initialize")["ports"]
    assert [p["state"] for p in ports] == ["open", "open", "open", "closed"]
    r = station.session(ADMIN).get(f"{station.url}/api/events", params={"after": 0, "limit": 1000}, timeout=30)
    outputs = [e["data"] for e in r.json()["events"] if e["topic"] == "doorstation:Output"]
    assert outputs[-1] == {"Output": "light", "Port": 3, "Active": True, "User": OPERATOR[0]}
    assert axis(station, OPERATOR, "open", "3") == {"done": "open", "port": "3"}
    assert [p["state"] for p in axis(station, VIEWER, "initialize")["ports"]][3] == "open"


def test_port_names_set_by_an_admin(station):
    r = station.session(ADMIN).get(f"{station.url}/axis-cgi/param.cgi",
                                   params={"action": "update", "IOPort.I2.Input.Name": "Door contact"}, timeout=30)
    assert r.text == "OK\r\n"
    assert axis(station, VIEWER, "initialize")["ports"][2]["name"] == "Door contact"
    r = station.session(OPERATOR).get(f"{station.url}/axis-cgi/param.cgi",
                                      params={"action": "update", "IOPort.I2.Input.Name": "x"}, timeout=30)
    assert r.status_code == 403


def test_users_managed_through_pwdgrp(station):
    """axis's `vapix.users` (pwdgrp.cgi): list, create, modify, delete; its access rights then come
    from pwdgrp's listing (an admin here)."""
    learnt = axis(station, ADMIN, "users", "frontdesk", "frontdesk-pw-1")
    base = {"admin": "viewer:operator:admin", "oper": "viewer:operator", "viewer": "viewer"}
    assert "before" in learnt, learnt
    assert learnt["before"] == base, learnt
    assert learnt["created"] == {**base, "frontdesk": "viewer"}
    assert learnt["modified"] == {**base, "frontdesk": "viewer:operator"}
    assert learnt["rights"] == "viewer:operator:admin"
    assert learnt["after"] == base


def test_pwdgrp_refuses_a_viewer_and_axis_falls_back_to_usergroup(station):
    learnt = axis(station, VIEWER, "users", "sneaky", "sneaky-pw-1")
    assert learnt.get("error") == "Forbidden", learnt
    r = station.session(ADMIN).post(f"{station.url}/axis-cgi/pwdgrp.cgi", data={"action": "get"}, timeout=30)
    assert "sneaky" not in r.text
    learnt = axis(station, VIEWER, "initialize")
    assert learnt["access_rights"] == "viewer"


def test_wrong_password_learns_nothing(station):
    # last in this module: the failed logins get 127.0.0.1 rate-limited for a while
    learnt = axis(station, (ADMIN[0], "not-the-password"), "initialize")
    # api discovery answers 401, which axis v60 treats as "not supported": it learns nothing
    assert learnt.get("serial_number") in ("", None), learnt
