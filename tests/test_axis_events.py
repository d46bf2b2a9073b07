"""The Axis event model (daemon.axis_events): rendering of logged events, property state with
Initialized/Changed, topic filters, and the two renderings (ONVIF metadata XML, websocket
events:notify). Pure logic: no station needed. The XML is also parsed the way axis v60 parses it
(axis v60's own decoder, run from .venv-axis)."""
import json
import subprocess
import xml.etree.ElementTree as ET

import pytest

from daemon.axis_events import (
    CHANGED,
    INITIALIZED,
    TOPIC_CALL_DTMF,
    TOPIC_CALL_STATE,
    TOPIC_CALL_STATE_CHANGE,
    TOPIC_IO_PORT,
    TOPIC_RELAY,
    AxisEventModel,
    Notification,
    TopicFilter,
    metadata_xml,
    ws_notify,
)
from tests.harness import REPO

STATUS = {"CallState": "Idle", "Hardware": {"Relay": "Locked", "ButtonPressed": False}}
PORTS = {"Ports": [
    {"Id": 0, "Role": "call_button", "Direction": "input", "Active": False},
    {"Id": 1, "Role": "door_relay", "Direction": "output", "Active": False},
    {"Id": 2, "Role": "door_contact", "Direction": "input", "Active": True},
    {"Id": 3, "Role": "light", "Direction": "output", "Active": False},
]}


def ev(topic, data, source=None, at=1000.0):
    return {"seq": 1, "time": at, "topic": topic, "source": source or {"Source": "DoorStation"}, "data": data}


def short(n: Notification):
    return n.topic, dict(n.source), dict(n.data), n.operation


@pytest.fixture
def model():
    return AxisEventModel.from_snapshot(STATUS, PORTS, utc=999.0)


def test_initial_states_cover_every_port_and_the_call_state(model):
    assert sorted((short(n) for n in model.initialized()), key=repr) == sorted([
        (TOPIC_IO_PORT, {"port": "0"}, {"state": "0"}, INITIALIZED),
        (TOPIC_IO_PORT, {"port": "2"}, {"state": "1"}, INITIALIZED),
        (TOPIC_RELAY, {"RelayToken": "1"}, {"LogicalState": "inactive"}, INITIALIZED),
        (TOPIC_RELAY, {"RelayToken": "3"}, {"LogicalState": "inactive"}, INITIALIZED),
        (TOPIC_CALL_STATE, {"Source": "DoorStation"}, {"CallState": "Idle"}, INITIALIZED),
    ], key=repr)


def test_no_hardware_still_has_the_call_state():
    model = AxisEventModel.from_snapshot({"CallState": "Active", "Hardware": None}, None, utc=1.0)
    assert [short(n) for n in model.initialized()] == [
        (TOPIC_CALL_STATE, {"Source": "DoorStation"}, {"CallState": "Active"}, INITIALIZED)]


def test_relay_pulse_is_changed_active_then_inactive(model):
    out = model.apply(ev("doorstation:Relay", {"State": "Unlocked", "Cause": "User", "PulseMs": 2000}))
    out += model.apply(ev("doorstation:Relay", {"State": "Locked", "Cause": "PulseEnded"}))
    assert [short(n) for n in out] == [
        (TOPIC_RELAY, {"RelayToken": "1"}, {"LogicalState": "active"}, CHANGED),
        (TOPIC_RELAY, {"RelayToken": "1"}, {"LogicalState": "inactive"}, CHANGED)]
    # the new value is what a later subscriber is initialized with
    assert (TOPIC_RELAY, {"RelayToken": "1"}, {"LogicalState": "inactive"}, INITIALIZED) in \
        [short(n) for n in model.initialized()]


def test_unchanged_property_sends_nothing(model):
    assert model.apply(ev("doorstation:Relay", {"State": "Locked", "Cause": "Startup"})) == []
    assert model.apply(ev(TOPIC_CALL_STATE, {"CallState": "Idle"})) == []


def test_press_without_logged_edges_is_a_press_and_a_release(model):
    out = model.apply(ev("doorstation:Button", {"Action": "Call", "To": "sip:x@y"}))
    assert [short(n) for n in out] == [
        (TOPIC_IO_PORT, {"port": "0"}, {"state": "1"}, CHANGED),
        (TOPIC_IO_PORT, {"port": "0"}, {"state": "0"}, CHANGED)]


def test_logged_call_button_edges_replace_the_derived_pulse(model):
    down = model.apply(ev("doorstation:Input", {"Input": "call_button", "Active": True}))
    action = model.apply(ev("doorstation:Button", {"Action": "Call", "To": "sip:x@y"}))
    up = model.apply(ev("doorstation:Input", {"Input": "call_button", "Active": False}))
    assert [short(n) for n in down + action + up] == [
        (TOPIC_IO_PORT, {"port": "0"}, {"state": "1"}, CHANGED),
        (TOPIC_IO_PORT, {"port": "0"}, {"state": "0"}, CHANGED)]


def test_extra_input_and_output_use_their_port_ids(model):
    out = model.apply(ev("doorstation:Input", {"Input": "door_contact", "Active": False}))
    out += model.apply(ev("doorstation:Output", {"Output": "light", "Port": 3, "Active": True, "User": "op"}))
    assert [short(n) for n in out] == [
        (TOPIC_IO_PORT, {"port": "2"}, {"state": "0"}, CHANGED),
        (TOPIC_RELAY, {"RelayToken": "3"}, {"LogicalState": "active"}, CHANGED)]
    assert model.apply(ev("doorstation:Input", {"Input": "unknown_line", "Active": True})) == []


def test_call_events(model):
    out = model.apply(ev(TOPIC_CALL_STATE_CHANGE, {"Reason": "Initiated", "CallId": "c1", "RemoteURI": "sip:a@b",
                                                   "DeviceURI": "sip:d@e"}))
    out += model.apply(ev(TOPIC_CALL_STATE, {"CallState": "Calling"}))
    out += model.apply(ev(TOPIC_CALL_DTMF, {"CallId": "c1"}, source={"DTMFEventId": "open", "Name": "Open door"}))
    assert [short(n) for n in out] == [
        (TOPIC_CALL_STATE_CHANGE, {"Source": "DoorStation"},
         {"Reason": "Initiated", "CallId": "c1", "RemoteURI": "sip:a@b", "DeviceURI": "sip:d@e"}, None),
        (TOPIC_CALL_STATE, {"Source": "DoorStation"}, {"CallState": "Calling"}, CHANGED),
        (TOPIC_CALL_DTMF, {"DTMFEventId": "open"}, {"CallId": "c1"}, None)]


def test_other_and_malformed_events_render_nothing(model):
    assert model.apply(ev("doorstation:SIP/Applied", {"State": "Applied"})) == []
    assert model.apply({"topic": "doorstation:Relay", "data": "x"}) == []
    assert model.apply(ev("doorstation:Relay", {"State": "Sideways"})) == []


@pytest.mark.parametrize("expression, topic, expected", [
    ("tns1:Device/tnsaxis:IO//.", TOPIC_IO_PORT, True),
    ("tns1:Device/tnsaxis:IO//.", TOPIC_RELAY, False),
    ("tns1:Device//.", TOPIC_RELAY, True),
    ("onvif:Device/axis:IO/Port", TOPIC_IO_PORT, True),
    ("tns1:Device/tnsaxis:IO", TOPIC_IO_PORT, False),
    ("tnsaxis:Call/State", TOPIC_CALL_STATE_CHANGE, False),
    ("tnsaxis:Call/State|tnsaxis:Call/StateChange", TOPIC_CALL_STATE_CHANGE, True),
    ("tnsaxis:Call//.", TOPIC_CALL_DTMF, True),
    ("tns1:Device/*/Port", TOPIC_IO_PORT, True),
    ("", TOPIC_CALL_DTMF, True),
])
def test_topic_filters(expression, topic, expected):
    assert TopicFilter(expression).matches(topic) is expected


@pytest.mark.parametrize("bad", ["//.", "a//b", "x" * 2000, "|".join(["tns1:A"] * 40)])
def test_bad_topic_filters_are_refused(bad):
    with pytest.raises(ValueError):
        TopicFilter(bad)


def test_metadata_xml_is_one_onvif_document(model):
    n = model.apply(ev("doorstation:Relay", {"State": "Unlocked"}, at=1547538645.206264))[0]
    doc = ET.fromstring(metadata_xml(n))
    ns = {"tt": "http://www.onvif.org/ver10/schema", "wsnt": "http://docs.oasis-open.org/wsn/b-2"}
    topic = doc.find("tt:Event/wsnt:NotificationMessage/wsnt:Topic", ns)
    assert topic.text == TOPIC_RELAY and topic.get("Dialect")
    msg = doc.find("tt:Event/wsnt:NotificationMessage/wsnt:Message/tt:Message", ns)
    assert msg.get("PropertyOperation") == CHANGED
    assert msg.get("UtcTime") == "2019-01-15T07:50:45.206264Z"
    item = msg.find("tt:Source/tt:SimpleItem", ns)
    assert (item.get("Name"), item.get("Value")) == ("RelayToken", "1")
    item = msg.find("tt:Data/tt:SimpleItem", ns)
    assert (item.get("Name"), item.get("Value")) == ("LogicalState", "active")


def test_metadata_xml_escapes_values(model):
    out = model.apply(ev(TOPIC_CALL_STATE_CHANGE, {"Reason": "Initiated", "CallId": "c", "DeviceURI": "",
                                                   "RemoteURI": '"<sip:a@b>"&x'}))
    doc = ET.fromstring(metadata_xml(out[0]))
    values = [e.get("Value") for e in doc.iter("{http://www.onvif.org/ver10/schema}SimpleItem")]
    assert '"<sip:a@b>"&x' in values


def test_metadata_xml_as_axis_v60_decodes_it(model):
    """axis v60's own decoder (axis.models.event.Event.decode), run in .venv-axis."""
    axis_python = REPO / ".venv-axis" / "bin" / "python"
    assert axis_python.exists(), "no .venv-axis: run scripts/test once (it installs axis==60 there)"
    notes = model.apply(ev("doorstation:Button", {"Action": "Call"})) + model.initialized()
    script = ("import sys, json; from axis.models.event import Event\n"
              "for line in sys.stdin:\n"
              "    e = Event.decode(bytes.fromhex(line.strip()))\n"
              "    print(json.dumps([str(e.topic_base), e.id, e.state, str(e.operation), e.is_tripped]))")
    done = subprocess.run([str(axis_python), "-P", "-c", script], capture_output=True, text=True, timeout=60,
                          input="".join(metadata_xml(n).hex() + "\n" for n in notes))
    assert done.returncode == 0, done.stderr[-2000:]
    decoded = [json.loads(line) for line in done.stdout.splitlines()]
    assert decoded[0] == ["tns1:Device/tnsaxis:IO/Port", "0", "1", "Changed", True]
    assert ["tns1:Device/Trigger/Relay", "3", "inactive", "Initialized", False] in decoded
    assert ["tns1:Device/tnsaxis:IO/Port", "2", "1", "Initialized", True] in decoded


def test_ws_notify_rendering(model):
    n = model.apply(ev("doorstation:Input", {"Input": "door_contact", "Active": False}, at=1639385866.198))[0]
    assert ws_notify(n) == {"apiVersion": "1.0", "method": "events:notify", "params": {"notification": {
        "timestamp": 1639385866198, "topic": TOPIC_IO_PORT,
        "message": {"source": {"port": "2"}, "key": {}, "data": {"state": "0"}}}}}
