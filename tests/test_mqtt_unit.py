"""The MQTT pieces without a station: configuration validation, the Axis rendering, Home Assistant
states, and the link's outage rules (queue bound, expiry) against a real Mosquitto."""
from __future__ import annotations

import json
import logging
import time

import pytest

from daemon.axis_events import CHANGED, INITIALIZED, AxisEventModel, call_state, io_port, relay
from daemon.mqtt import config as cfg
from daemon.mqtt.homeassistant import HaIdentity, HomeAssistant
from daemon.mqtt.link import LinkSettings, MqttLink
from daemon.mqtt.render import EventRenderer, Outgoing, mqtt_topic_name
from tests.mqtt_broker import Mosquitto, Observer

SERIAL = "B827EB000001"


def test_client_defaults_and_secrets():
    doc = cfg.validate_client({"server": {"host": "broker.lan"}}, SERIAL)
    assert doc["server"] == {"host": "broker.lan", "port": 1883, "protocol": "tcp"}
    assert doc["clientId"] == f"doorstation-{SERIAL}" and doc["deviceTopicPrefix"] == f"axis/{SERIAL}"
    assert cfg.validate_client({"server": {"host": "h", "protocol": "ssl"}}, SERIAL)["server"]["port"] == 8883
    assert cfg.validate_client({"server": {"host": "h", "protocol": "ws"}}, SERIAL)["server"]["basepath"] == "/mqtt"
    stored = cfg.validate_client({"server": {"host": "h"}, "password": "pw"}, SERIAL)
    kept = cfg.validate_client({"server": {"host": "h"}, "keepExistingPassword": True}, SERIAL, stored)
    assert kept["password"] == "pw"
    assert cfg.validate_client({"server": {"host": "h"}}, SERIAL, stored)["password"] == ""
    public = cfg.public_client(stored)
    assert "password" not in public and public["passwordSet"] is True
    messages = cfg.connection_messages(doc, SERIAL)
    assert messages["lastWillTestament"] == {"topic": f"doorstation/{SERIAL.lower()}/availability",
                                             "message": "offline",
                                             "retain": True, "qos": 1}
    custom = cfg.validate_client({"server": {"host": "h"}, "lastWillTestament": {"useDefault": False}}, SERIAL)
    assert cfg.connection_messages(custom, SERIAL)["lastWillTestament"] is None


def test_event_publication_keeps_what_is_left_out():
    doc = cfg.validate_events({"eventFilterList": [{"topicFilter": "//."}]})
    assert doc["eventFilterList"] == [{"topicFilter": "//.", "qos": 0, "retain": "none"}]
    again = cfg.validate_events({"includeSerialNumberInPayload": True}, doc)
    assert again["eventFilterList"] == doc["eventFilterList"] and again["includeSerialNumberInPayload"] is True
    with pytest.raises(cfg.ConfigError, match="customTopicPrefix"):
        cfg.validate_events({"topicPrefix": "custom"})


def test_rendering_topics_payloads_and_retain_policies():
    assert mqtt_topic_name("tns1:Device/tnsaxis:IO/Port") == "onvif:Device/axis:IO/Port"
    assert mqtt_topic_name("tns1:Device/tnsaxis:IO/Port", namespaces=False) == "Device/IO/Port"
    events = cfg.validate_events({"eventFilterList": [
        {"topicFilter": "axis:Call/State", "qos": 2, "retain": "property"},
        {"topicFilter": "onvif:Device//.", "qos": 1, "retain": "all"}]})
    r = EventRenderer(events, f"axis/{SERIAL}", SERIAL)
    m = r.render(call_state("Calling", CHANGED, 1700000000.5))
    assert m is not None and m.topic == f"axis/{SERIAL}/event/axis:Call/State" and m.qos == 2 and m.retain
    assert json.loads(m.payload) == {"timestamp": 1700000000500, "topic": "axis:Call/State",
                                     "message": {"source": {"Source": "DoorStation"}, "key": {},
                                                 "data": {"CallState": "Calling"}}}
    relay_msg = r.render(relay(1, True, CHANGED, 1.0))
    assert relay_msg is not None and relay_msg.retain and relay_msg.qos == 1
    none = EventRenderer(cfg.validate_events({"eventFilterList": [{"topicFilter": "//.", "retain": "property"}],
                                              "appendEventTopic": False}), "p", SERIAL)
    stateless = AxisEventModel().apply({"topic": "tnsaxis:Call/StateChange", "source": {"Source": "DoorStation"},
                                        "data": {"Reason": "Initiated", "CallId": "c"}, "time": 1.0})[0]
    rendered = none.render(stateless)
    assert rendered is not None and rendered.topic == "p/event" and not rendered.retain
    assert EventRenderer(cfg.validate_events({}), "p", SERIAL).render(stateless) is None   # no filter: nothing


def test_home_assistant_states_from_notifications():
    ha = HomeAssistant(HaIdentity(SERIAL, "1.0", "Pi 4"), "homeassistant", None,
                       {"call_button": 0, "door_contact": 2})
    assert [o for _, o, _ in ha.entities()][-1] == "input_door_contact"
    assert ha.on_notification(io_port(0, True, INITIALIZED, 1.0)) == []            # a snapshot never rings
    assert ha.on_notification(io_port(0, True, CHANGED, 1.0))[0].payload == b'{"event_type":"press"}'
    assert ha.on_notification(io_port(0, False, CHANGED, 1.0)) == []
    assert ha.on_notification(io_port(2, True, CHANGED, 1.0))[0].payload == b"ON"
    assert ha.on_notification(relay(1, True, CHANGED, 1.0))[0].payload == b"UNLOCKED"
    assert ha.on_notification(relay(3, True, CHANGED, 1.0)) == []                  # another output: no lock
    docs = {m.topic: json.loads(m.payload) for m in ha.discovery()}
    assert all("availability" not in d for d in docs.values())                      # no last will: none
    assert all(m.payload == b"" and m.retain for m in ha.removal())


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(tmp_path / "broker")
    yield b
    b.stop()


def link_to(port: int, key_dir, clock, queue_size: int = 4) -> MqttLink:
    settings = LinkSettings(host="127.0.0.1", port=port, protocol="tcp", client_id="unit-link", keepalive=5)
    return MqttLink(settings, lambda t, p: None, logging.getLogger("test"), key_dir, queue_size=queue_size,
                    max_age=60.0, clock=clock)


def test_outage_queue_bound_and_expiry_against_a_real_broker(broker, tmp_path):
    now = [1000.0]
    link = link_to(broker.port, tmp_path, lambda: now[0])
    link.start()                                   # the broker is not running yet
    try:
        assert link.offer(Outgoing("t/old", b"old", 1))
        now[0] += 61                               # waited longer than max_age: expires
        assert link.offer(Outgoing("t/fresh", b"fresh", 1))
        assert link.offer(Outgoing("t/state", b"A", 1, retain=True))
        assert link.offer(Outgoing("t/state", b"B", 1, retain=True))
        assert not link.offer(Outgoing("t/over", b"x", 1))          # queue of 4 is full: dropped, counted
        assert link.status()["dropped"] == 1 and link.status()["queued"] == 4
        broker.start()
        obs = Observer(broker.port, ("t/#",))
        deadline = time.monotonic() + 30
        while link.status()["connectionStatus"] != "connected" or link.status()["queued"]:
            assert time.monotonic() < deadline, link.status()
            time.sleep(0.05)
        obs.wait_for(lambda m: m.topic == "t/fresh", what="the fresh message")
        obs.wait_for(lambda m: m.topic == "t/state" and m.payload == b"B", what="the newest state")
        time.sleep(0.3)
        assert not obs.on("t/old") and not obs.on("t/over")
        assert link.status()["expired"] == 1
        obs.close()
    finally:
        link.stop()


def test_a_command_flood_is_bounded_before_it_reaches_the_loop(broker, tmp_path):
    broker.start()
    handed: list[bytes] = []
    settings = LinkSettings(host="127.0.0.1", port=broker.port, protocol="tcp", client_id="unit-cmd", keepalive=5,
                            subscriptions=["cmd/door"])
    link = MqttLink(settings, lambda t, p: handed.append(p), logging.getLogger("test"), tmp_path)
    link.start()
    obs = Observer(broker.port, ("none",))
    try:
        deadline = time.monotonic() + 10
        while link.status()["connectionStatus"] != "connected":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.2)                              # the subscription is in place
        obs.publish("cmd/door", "X" * 65)            # too large: counted, never handed over
        for _ in range(200):
            obs.client.publish("cmd/door", "UNLOCK", qos=0)
        obs.publish("cmd/door", "UNLOCK")
        deadline = time.monotonic() + 10
        while link.status()["commands"] + link.status()["commandsFlooded"] < 201:
            assert time.monotonic() < deadline, link.status()
            time.sleep(0.05)
        assert link.status()["commandsTooLarge"] == 1
        assert 1 <= len(handed) <= 2 * 10 and link.status()["commandsFlooded"] >= 180
    finally:
        obs.close()
        link.stop()
