"""MQTT against a real Mosquitto: the Axis event bridge configured through client.cgi/event.cgi,
Home Assistant discovery (field by field), the lock command, broker restarts, TLS with client
certificates and passwords, and a broker that never answers. The station is a real `doorstation
run` with simulated GPIO; paho-mqtt is the observing client."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from tests.harness import ADMIN, OPERATOR, VIEWER, Station, axis_hardware_toml, doorstation
from tests.mqtt_broker import Certificates, Mosquitto, Observer
from tests.sip_peers import baresip_factory  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration

HARDWARE = axis_hardware_toml(pulse_ms=600) + '[button]\nrecipient = "VMS_CALL"\nwhile_calling = "hangup"\n'


def api(st: Station, cgi: str, method: str, params=None, user=ADMIN) -> dict:
    body = {"apiVersion": "1.0", "context": "test", "method": method}
    if params is not None:
        body["params"] = params
    r = st.session(user).post(f"{st.url}/axis-cgi/mqtt/{cgi}", json=body, timeout=15)
    return {"http": r.status_code, **r.json()}


def ok(st: Station, cgi: str, method: str, params=None) -> dict:
    answer = api(st, cgi, method, params)
    assert answer["http"] == 200 and "error" not in answer, answer
    return answer.get("data") or {}


def serial_of(st: Station) -> str:
    r = st.session().post(f"{st.url}/axis-cgi/basicdeviceinfo.cgi",
                          json={"apiVersion": "1.1", "method": "getAllProperties"}, timeout=10)
    return r.json()["data"]["propertyList"]["SerialNumber"]


def wait_status(st: Station, connection: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = ok(st, "client.cgi", "getClientStatus")["status"]
        if status["connectionStatus"] == connection:
            return status
        assert time.monotonic() < deadline, f"connectionStatus {connection} not reached: {status}"
        time.sleep(0.1)


def relay_events(st: Station, after: int = 0) -> list[dict]:
    page = st.session().get(f"{st.url}/api/events?after={after}&limit=1000", timeout=10).json()
    return [e for e in page["events"] if e["topic"] == "doorstation:Relay"]


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture
def station(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "hardware.toml").write_text(HARDWARE)
    st = Station(state).start()
    yield st
    st.stop()


@pytest.fixture
def observers():
    made: list[Observer] = []

    def make(port: int, *topics: str, **kw) -> Observer:
        o = Observer(port, topics or ("#",), **kw)
        made.append(o)
        return o
    yield make
    for o in made:
        o.close()


def connect(st: Station, port: int, **extra) -> None:
    ok(st, "client.cgi", "configureClient", {"server": {"host": "127.0.0.1", "port": port, "protocol": "tcp"},
                                             "keepAliveInterval": 10, **extra})
    ok(st, "client.cgi", "activateClient")


# ---- the Axis event bridge ------------------------------------------------------------------------
def test_bridge_publishes_press_and_call_state_with_custom_prefix_and_filters(station, broker, observers):
    st = station
    serial = serial_of(st)
    ok(st, "event.cgi", "configureEventPublication", {
        "topicPrefix": "custom", "customTopicPrefix": "site/door1", "appendEventTopic": True,
        "includeTopicNamespaces": True, "includeSerialNumberInPayload": True,
        "eventFilterList": [{"topicFilter": "onvif:Device/axis:IO//.", "qos": 1, "retain": "property"},
                            {"topicFilter": "axis:Call/StateChange|axis:Call/State", "qos": 0, "retain": "none"}]})
    obs = observers(broker.port)
    connect(st, broker.port)
    status = wait_status(st, "connected")
    assert status["state"] == "active"
    io_topic = "site/door1/onvif:Device/axis:IO/Port"
    # the current values first (Initialized), retained for the IO filter
    initial = obs.wait_for(lambda m: m.topic == io_topic and m.json()["message"]["source"] == {"port": "0"},
                           what="button port's initial value")
    assert initial.json()["message"]["data"] == {"state": "0"}
    idle = obs.wait_for(lambda m: m.topic == "site/door1/axis:Call/State", what="call state's initial value")
    assert idle.json()["message"]["data"] == {"CallState": "Idle"}
    mark = obs.mark()
    assert doorstation("press", state_dir=st.state_dir).returncode == 0
    pressed = obs.wait_for(lambda m: m.topic == io_topic and m.json()["message"]["data"] == {"state": "1"},
                           since=mark, what="press")
    doc = pressed.json()
    assert set(doc) == {"timestamp", "topic", "message", "serialNumber"}
    assert doc["topic"] == "onvif:Device/axis:IO/Port" and doc["serialNumber"] == serial
    assert doc["message"] == {"source": {"port": "0"}, "key": {}, "data": {"state": "1"}}
    assert isinstance(doc["timestamp"], int) and abs(doc["timestamp"] / 1000 - time.time()) < 30
    assert pressed.qos == 1 and not pressed.retain      # live delivery: the retain flag is for late subscribers
    obs.wait_for(lambda m: m.topic == io_topic and m.json()["message"]["data"] == {"state": "0"}, since=mark,
                 what="release")
    change = obs.wait_for(lambda m: m.topic == "site/door1/axis:Call/StateChange", since=mark, what="StateChange")
    assert change.json()["message"]["data"]["Reason"] == "Initiated"
    assert change.json()["message"]["source"] == {"Source": "DoorStation"}
    state = obs.wait_for(lambda m: m.topic == "site/door1/axis:Call/State", since=mark, what="Call/State")
    assert state.json()["message"]["data"] == {"CallState": "Calling"}
    # the relay is not in the filters: a door pulse publishes nothing on the bridge's prefix
    mark = obs.mark()
    r = st.session(OPERATOR).post(f"{st.url}/api/door/open", timeout=10)
    assert r.status_code == 200
    obs.wait_for(lambda m: m.topic.endswith("/door/state") and m.payload == b"UNLOCKED", since=mark,
                 what="HA door state")
    assert not [m for m in obs.messages[mark:] if "Trigger/Relay" in m.topic]
    # a late subscriber gets the retained IO values (retain property), not the call events (retain none)
    late = observers(broker.port, "site/door1/#")
    got = late.wait_for(lambda m: m.topic == io_topic, what="retained IO/Port")
    assert got.retain
    time.sleep(0.5)
    assert not [m for m in late.messages if "Call" in m.topic]


def test_topic_without_namespaces_default_prefix_and_config_round_trip(station, broker, observers):
    st = station
    serial = serial_of(st)
    ok(st, "event.cgi", "configureEventPublication", {
        "topicPrefix": "default", "appendEventTopic": True, "includeTopicNamespaces": False,
        "eventFilterList": [{"topicFilter": "onvif:Device/axis:IO/Port", "qos": 0}]})
    got = ok(st, "event.cgi", "getEventPublicationConfig")["eventPublicationConfig"]
    assert got == {"topicPrefix": "default", "customTopicPrefix": "", "appendEventTopic": True,
                   "includeTopicNamespaces": False, "includeSerialNumberInPayload": False,
                   "eventFilterList": [{"topicFilter": "onvif:Device/axis:IO/Port", "qos": 0, "retain": "none"}]}
    obs = observers(broker.port)
    connect(st, broker.port, username="", password="")
    wait_status(st, "connected")
    mark = obs.mark()
    doorstation("press", state_dir=st.state_dir)
    m = obs.wait_for(lambda m: m.topic == f"axis/{serial}/event/Device/IO/Port" and b'"state":"1"' in m.payload,
                     since=mark, what="press without namespaces")
    assert m.json()["topic"] == "onvif:Device/axis:IO/Port" and "serialNumber" not in m.json()
    status = ok(st, "client.cgi", "getClientStatus")
    assert status["config"]["deviceTopicPrefix"] == f"axis/{serial}"
    # only the filtered events under the device prefix (Home Assistant's Axis integration reads it all)
    assert {m.topic for m in obs.messages if m.topic.startswith("axis/")} == {f"axis/{serial}/event/Device/IO/Port"}
    assert status["config"]["server"] == {"host": "127.0.0.1", "port": broker.port, "protocol": "tcp"}
    assert "password" not in json.dumps(status["config"]).replace("passwordSet", "")


# ---- Home Assistant discovery -------------------------------------------------------------------
def discovery_docs(obs: Observer, node: str, count: int) -> dict[str, dict]:
    deadline = time.monotonic() + 10
    while True:
        docs = {m.topic: m for m in obs.messages if m.topic.startswith("homeassistant/") and f"/{node}/" in m.topic}
        if len(docs) >= count or time.monotonic() > deadline:
            return {t: m.json() for t, m in docs.items() if m.payload}
        time.sleep(0.05)


def test_home_assistant_discovery_documents_field_by_field(station, broker, observers):
    st = station
    serial = serial_of(st)
    node = f"doorstation_{serial.lower()}"
    base = f"doorstation/{serial.lower()}"
    obs = observers(broker.port)
    connect(st, broker.port)
    wait_status(st, "connected")
    docs = discovery_docs(obs, node, 6)
    assert set(docs) == {f"homeassistant/{c}/{node}/{o}/config" for c, o in (
        ("event", "doorbell"), ("lock", "door"), ("binary_sensor", "call_active"), ("sensor", "call_state"),
        ("sensor", "last_dtmf"), ("binary_sensor", "input_door_contact"))}
    # retained (a late subscriber gets them with the retain flag; live copies never carry it)
    late = observers(broker.port, "homeassistant/#")
    for topic in docs:
        m = late.wait_for(lambda m, t=topic: m.topic == t, what=topic)
        assert m.retain and m.qos == 1 and m.json() == docs[topic], topic
    info = st.session().post(f"{st.url}/axis-cgi/basicdeviceinfo.cgi",
                             json={"apiVersion": "1.1", "method": "getAllProperties"}, timeout=10).json()
    props = info["data"]["propertyList"]
    device = {"identifiers": [node], "name": "Door station", "manufacturer": "doorstation", "model": "doorstation",
              "sw_version": props["Version"], "hw_version": props["ProdVariant"], "serial_number": serial}
    availability = [{"topic": f"{base}/availability", "payload_available": "online",
                     "payload_not_available": "offline"}]
    common = {"availability": availability,
              "origin": {"name": "doorstation", "sw_version": props["Version"]}}

    def check(component: str, object_id: str, expected: dict) -> None:
        doc = dict(docs[f"homeassistant/{component}/{node}/{object_id}/config"])
        dev = doc.pop("device")
        connections = dev.pop("connections", None)
        assert dev == device
        if connections is not None:      # a real interface MAC: Home Assistant links the device by it
            assert connections == [["mac", ":".join(serial[i:i + 2] for i in range(0, 12, 2)).lower()]]
        assert doc == {**common, "unique_id": f"{node}_{object_id}", **expected}

    check("event", "doorbell", {"name": "Doorbell", "state_topic": f"{base}/doorbell", "event_types": ["press"],
                                "device_class": "doorbell"})
    check("lock", "door", {"name": "Door", "state_topic": f"{base}/door/state", "command_topic": f"{base}/door/set",
                           "payload_lock": "LOCK", "payload_unlock": "UNLOCK", "state_locked": "LOCKED",
                           "state_unlocked": "UNLOCKED", "optimistic": False, "qos": 1})
    check("binary_sensor", "call_active", {"name": "Call active", "state_topic": f"{base}/call/active",
                                           "payload_on": "ON", "payload_off": "OFF"})
    check("sensor", "call_state", {"name": "Call state", "state_topic": f"{base}/call/state",
                                   "device_class": "enum", "options": ["Idle", "Calling", "Active"]})
    check("sensor", "last_dtmf", {"name": "Last DTMF event", "state_topic": f"{base}/dtmf/last",
                                  "json_attributes_topic": f"{base}/dtmf/last/attributes"})
    check("binary_sensor", "input_door_contact", {"name": "Door contact", "state_topic": f"{base}/input/door_contact",
                                                  "payload_on": "ON", "payload_off": "OFF", "device_class": "door"})
    # states: retained, current values
    late = observers(broker.port, f"{base}/#")
    for topic, value in ((f"{base}/door/state", b"LOCKED"), (f"{base}/call/state", b"Idle"),
                         (f"{base}/call/active", b"OFF"), (f"{base}/input/door_contact", b"OFF"),
                         (f"{base}/availability", b"online")):
        m = late.wait_for(lambda m, t=topic: m.topic == t, what=topic)
        assert m.payload == value and m.retain, topic
    # the doorbell fires on a press (not retained: Home Assistant must not ring again when it restarts)
    mark = obs.mark()
    doorstation("press", state_dir=st.state_dir)
    ring = obs.wait_for(lambda m: m.topic == f"{base}/doorbell", since=mark, what="doorbell event")
    assert ring.json() == {"event_type": "press"} and not ring.retain
    obs.wait_for(lambda m: m.topic == f"{base}/call/state" and m.payload == b"Calling", since=mark, what="Calling")
    # discovery switched off: the entities are removed (empty retained configs)
    mark = obs.mark()
    ok(st, "client.cgi", "configureClient", {"server": {"host": "127.0.0.1", "port": broker.port},
                                             "homeAssistant": {"discovery": False}})
    obs.wait_for(lambda m: m.topic == f"homeassistant/lock/{node}/door/config" and m.payload == b"", since=mark,
                 what="lock config removed")


def test_lock_command_pulses_the_relay_and_the_state_follows(station, broker, observers):
    st = station
    serial = serial_of(st)
    base = f"doorstation/{serial.lower()}"
    obs = observers(broker.port)
    connect(st, broker.port)
    wait_status(st, "connected")
    obs.wait_for(lambda m: m.topic == f"{base}/door/state" and m.payload == b"LOCKED", what="LOCKED")
    before = len(relay_events(st))
    mark = obs.mark()
    obs.publish(f"{base}/door/set", "UNLOCK")
    obs.wait_for(lambda m: m.topic == f"{base}/door/state" and m.payload == b"UNLOCKED", since=mark, what="UNLOCKED")
    unlocked_seen = time.monotonic()
    obs.wait_for(lambda m: m.topic == f"{base}/door/state" and m.payload == b"LOCKED", since=mark, what="re-locked")
    assert time.monotonic() - unlocked_seen > 0.3      # the pulse (600 ms) lasts; LOCKED comes when it ends
    relays = relay_events(st)[before:]
    assert [e["data"]["State"] for e in relays] == ["Unlocked", "Locked"]
    assert relays[0]["data"]["Cause"] == "User" and relays[0]["data"]["User"] == "mqtt"
    assert relays[1]["data"]["Cause"] == "PulseEnded"
    counters = ok(st, "client.cgi", "getClientStatus")["status"]["homeAssistantCommands"]
    assert counters["unlock"] == 1
    # two commands closer than 1 s: one pulse, the other ignored
    time.sleep(1.1)
    before = len(relay_events(st))
    obs.publish(f"{base}/door/set", "UNLOCK")
    obs.publish(f"{base}/door/set", "UNLOCK")
    deadline = time.monotonic() + 5
    while ok(st, "client.cgi", "getClientStatus")["status"]["homeAssistantCommands"]["ignored"] < 1:
        assert time.monotonic() < deadline, "the second command was not ignored"
        time.sleep(0.1)
    time.sleep(1.0)
    assert [e["data"]["State"] for e in relay_events(st)[before:]] == ["Unlocked", "Locked"]
    # lockCommandRole none: commands are refused, nothing pulses
    ok(st, "client.cgi", "configureClient", {"server": {"host": "127.0.0.1", "port": broker.port},
                                             "homeAssistant": {"lockCommandRole": "none"}})
    wait_status(st, "connected")
    time.sleep(0.5)
    before = len(relay_events(st))
    obs.publish(f"{base}/door/set", "UNLOCK")
    deadline = time.monotonic() + 5
    while ok(st, "client.cgi", "getClientStatus")["status"]["homeAssistantCommands"]["refused"] < 1:
        assert time.monotonic() < deadline, "the refused command was not counted"
        time.sleep(0.1)
    assert len(relay_events(st)) == before


# ---- behaviour when the broker goes away ----------------------------------------------------------
def test_broker_killed_and_restarted_reconnects_republishes_and_delivers_the_outage_press(station, broker,
                                                                                           observers):
    """Decision (docs/mqtt.md): a press while the broker is away waits in the bounded queue and is
    delivered after the reconnect, with its original timestamp, if the outage was shorter than 60 s."""
    st = station
    serial = serial_of(st)
    base = f"doorstation/{serial.lower()}"
    ok(st, "event.cgi", "configureEventPublication", {"eventFilterList": [
        {"topicFilter": "onvif:Device/axis:IO/Port", "qos": 1, "retain": "property"}]})
    # the press starts a VMS call: keep it Calling for the whole test, however slow the machine
    st.ok("SetVMSCallConfiguration", {"VMSCallConfiguration": {"Timeout": 300}})
    connect(st, broker.port, keepAliveInterval=5)
    wait_status(st, "connected")
    broker.kill()
    wait_status(st, "connecting")
    pressed_at = time.time()
    assert doorstation("press", state_dir=st.state_dir).returncode == 0
    r = st.session(OPERATOR).post(f"{st.url}/api/door/open", timeout=10)     # the door works without a broker
    assert r.status_code == 200
    time.sleep(1.0)          # the pulse (600 ms) ends during the outage too
    status = ok(st, "client.cgi", "getClientStatus")["status"]
    assert status["queued"] >= 3 and status["dropped"] == 0
    broker.start()                                   # same port, no persistence: every retained message is gone
    obs = observers(broker.port)
    status = wait_status(st, "connected", timeout=90)       # backoff doubles from 1 s: a few attempts
    assert status["connects"] == 2 and status["disconnects"] == 1
    io_topic = f"axis/{serial}/event/onvif:Device/axis:IO/Port"
    press = obs.wait_for(lambda m: m.topic == io_topic and m.json()["message"]["data"] == {"state": "1"},
                         what="the press made during the outage")
    assert abs(press.json()["timestamp"] / 1000 - pressed_at) < 2.0     # when it happened, not when it arrived
    obs.wait_for(lambda m: m.topic == f"{base}/doorbell", what="the doorbell event of the outage press")
    # retained state is back on the restarted broker: republished (seen live), then a new subscriber gets it
    obs.wait_for(lambda m: m.topic.startswith("homeassistant/lock/"), what="discovery republished")
    obs.wait_for(lambda m: m.topic == f"{base}/call/active", what="states republished")
    late = observers(broker.port, "homeassistant/#", f"{base}/#", f"axis/{serial}/#")
    for topic, value in ((f"{base}/door/state", b"LOCKED"), (f"{base}/call/state", b"Calling"),
                         (f"{base}/availability", b"online")):
        m = late.wait_for(lambda m, t=topic: m.topic == t and m.retain, what=f"retained {topic}")
        assert m.payload == value, topic
    late.wait_for(lambda m: m.topic.startswith("homeassistant/lock/") and m.retain, what="retained discovery")
    retained_io = late.wait_for(lambda m: m.topic == io_topic and m.retain, what="retained IO/Port")
    assert retained_io.json()["message"]["data"] == {"state": "0"}, (      # the last value: released
        [(m.json()["message"]["data"], m.retain, m.at) for m in obs.on(io_topic)],
        [(m.json()["message"]["data"], m.retain, m.at) for m in late.on(io_topic)])
    status = ok(st, "client.cgi", "getClientStatus")["status"]
    assert status["expired"] == 0 and status["dropped"] == 0 and status["queued"] == 0
    cli = json.loads(doorstation("status", state_dir=st.state_dir).stdout)["MQTT"]
    assert cli["connectionStatus"] == "connected" and cli["dropped"] == 0
    assert cli["Broker"] == f"127.0.0.1:{broker.port}"


def test_last_will_marks_the_station_offline_when_it_dies(station, broker, observers):
    st = station
    base = f"doorstation/{serial_of(st).lower()}"
    obs = observers(broker.port, f"{base}/availability")
    connect(st, broker.port, keepAliveInterval=5)
    wait_status(st, "connected")
    obs.wait_for(lambda m: m.payload == b"online", what="online")
    mark = obs.mark()
    st.kill()                                         # kill -9: the broker sends the last will
    obs.wait_for(lambda m: m.payload == b"offline", since=mark, timeout=20, what="offline (last will)")
    st.start()                                        # activateOnReboot: connects again by itself
    obs.wait_for(lambda m: m.payload == b"online", since=mark, timeout=30, what="online after restart")


def test_tls_with_ca_client_certificate_and_password(station, tmp_path, observers):
    certs = Certificates(tmp_path / "certs").make()
    broker = Mosquitto(tmp_path / "tls-broker", users={"door": "door-secret-1"}, certs=certs).start()
    try:
        st = station
        serial = serial_of(st)
        tls = {"ca": certs.ca, "cert": certs.dir / "client.crt", "key": certs.dir / "client.key",
               "username": "door", "password": "door-secret-1"}
        obs = observers(broker.port, f"doorstation/{serial.lower()}/#", **tls)
        ssl_params = {"validateServerCert": True, "caCertificate": certs.text("ca.crt"),
                      "clientCertificate": certs.text("client.crt"), "clientKey": certs.text("client.key")}
        # wrong password: refused by the broker, said so in the status, retried
        ok(st, "client.cgi", "configureClient", {
            "server": {"host": "127.0.0.1", "port": broker.port, "protocol": "ssl"},
            "username": "door", "password": "wrong", "ssl": ssl_params})
        ok(st, "client.cgi", "activateClient")
        deadline = time.monotonic() + 15
        while not (s := ok(st, "client.cgi", "getClientStatus")["status"]).get("lastError"):
            assert time.monotonic() < deadline, s
            time.sleep(0.1)
        assert s["connectionStatus"] != "connected" and "refused" in s["lastError"]
        # the right password; certificates kept from the previous configuration
        ok(st, "client.cgi", "configureClient", {
            "server": {"host": "127.0.0.1", "port": broker.port, "protocol": "ssl"},
            "username": "door", "password": "door-secret-1", "ssl": {"keepExistingCertificates": True}})
        wait_status(st, "connected")
        obs.wait_for(lambda m: m.topic.endswith("/door/state") and m.payload == b"LOCKED", what="state over TLS")
        config = ok(st, "client.cgi", "getClientStatus")["config"]
        assert config["ssl"] == {"validateServerCert": True, "caCertificateSet": True, "clientCertificateSet": True}
        assert config["passwordSet"] is True and config["username"] == "door"
        text = json.dumps(config)
        assert "door-secret-1" not in text and "PRIVATE KEY" not in text and "BEGIN CERTIFICATE" not in text
        # keepExistingPassword: a new keep-alive, the same password
        ok(st, "client.cgi", "configureClient", {
            "server": {"host": "127.0.0.1", "port": broker.port, "protocol": "ssl"}, "keepAliveInterval": 30,
            "username": "door", "keepExistingPassword": True, "ssl": {"keepExistingCertificates": True}})
        time.sleep(0.5)
        assert wait_status(st, "connected")["connects"] >= 1
        # no client certificate: the broker (require_certificate) refuses the handshake
        ok(st, "client.cgi", "configureClient", {
            "server": {"host": "127.0.0.1", "port": broker.port, "protocol": "ssl"},
            "username": "door", "keepExistingPassword": True, "ssl": {"caCertificate": certs.text("ca.crt")}})
        time.sleep(3)
        assert ok(st, "client.cgi", "getClientStatus")["status"]["connectionStatus"] != "connected"
    finally:
        broker.stop()


def test_a_broker_that_never_answers_slows_neither_the_door_nor_the_calls(station, tmp_path):
    """A TCP listener that accepts and never says a word (no CONNACK, no TLS handshake)."""
    st = station
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(silent.accept()[0])
            except OSError:
                continue
    threading.Thread(target=accept, daemon=True).start()
    try:
        ok(st, "event.cgi", "configureEventPublication", {"eventFilterList": [{"topicFilter": "//.", "qos": 1}]})
        connect(st, silent.getsockname()[1], keepAliveInterval=5)
        time.sleep(1.0)
        assert accepted, "the station did not even connect"
        s = st.session(OPERATOR)
        worst = 0.0
        for _ in range(10):          # door pulses and call reads while the queue fills with their events
            t0 = time.monotonic()
            assert s.post(f"{st.url}/api/door/open", timeout=10).status_code == 200
            r = s.post(f"{st.url}/vapix/call", json={"axcall:GetCallStatuses": {}}, timeout=10)
            assert r.status_code == 200
            doorstation("press", state_dir=st.state_dir)
            worst = max(worst, time.monotonic() - t0)
        assert worst < 5.0, f"a door open + GetCallStatuses round took {worst:.2f} s"
        status = ok(st, "client.cgi", "getClientStatus")["status"]
        assert status["connectionStatus"] == "connecting" and status["queued"] > 0
        # VMS calls started and ended (8 messages each) until the queue (256) overflows: drops are
        # counted and shown, the calls keep answering at once
        for _ in range(60):
            t0 = time.monotonic()
            call_id = st.ok("Call", {"To": "VMS_CALL"})["CallId"]
            st.ok("TerminateCall", {"CallId": call_id})
            worst = max(worst, time.monotonic() - t0)
        assert worst < 5.0, f"a request took {worst:.2f} s"
        status = ok(st, "client.cgi", "getClientStatus")["status"]
        assert status["dropped"] > 0 and status["queued"] == status["queueSize"] == 256
        cli = json.loads(doorstation("status", state_dir=st.state_dir).stdout)["MQTT"]
        assert cli["dropped"] >= status["dropped"] and cli["connectionStatus"] == "connecting"
        # no CONNACK within the keep-alive (5 s): the attempt is dropped and made again
        deadline = time.monotonic() + 30
        while len(accepted) < 2:
            assert time.monotonic() < deadline, "the silent broker was never given up"
            time.sleep(0.2)
    finally:
        stop.set()
        silent.close()
        for c in accepted:
            c.close()


# ---- the API: roles, bounds, discovery --------------------------------------------------------------
def test_roles_validation_and_api_discovery(station):
    st = station
    apis = st.session(VIEWER).post(f"{st.url}/axis-cgi/apidiscovery.cgi",
                                   json={"apiVersion": "1.0", "method": "getApiList"}, timeout=10).json()
    listed = {a["id"]: a for a in apis["data"]["apiList"]}
    assert listed["mqtt-client"]["version"] == "1.0" and listed["event-mqtt-bridge"]["version"] == "1.0"
    # not configured yet: inactive, defaults, activate refused
    status = api(st, "client.cgi", "getClientStatus", user=VIEWER)
    assert status["data"]["status"] == {"state": "inactive", "connectionStatus": "disconnected",
                                        "homeAssistantCommands": {"unlock": 0, "lock": 0, "refused": 0,
                                                                  "ignored": 0, "failed": 0}}
    assert status["data"]["config"]["server"]["host"] == ""
    failed = api(st, "client.cgi", "activateClient")
    assert failed["error"]["code"] == 1100 and "configureClient" in failed["error"]["message"]
    server = {"host": "127.0.0.1", "port": 1883}
    for user in (VIEWER, OPERATOR):
        for cgi, method, params in (("client.cgi", "configureClient", {"server": server}),
                                    ("client.cgi", "activateClient", None), ("client.cgi", "deactivateClient", None),
                                    ("event.cgi", "configureEventPublication", {"eventFilterList": []})):
            refused = api(st, cgi, method, params, user=user)
            assert refused["http"] == 403 and refused["error"]["code"] == 2105, (user, method)
    assert api(st, "event.cgi", "getEventPublicationConfig", user=VIEWER)["http"] == 200
    bad_client = [
        {}, {"server": "x"}, {"server": {"host": ""}}, {"server": {"host": "a b"}},
        {"server": {"host": "h" * 300}}, {"server": {"host": "h", "port": 0}}, {"server": {"host": "h", "port": 70000}},
        {"server": {"host": "h", "port": "1883"}}, {"server": {"host": "h", "protocol": "udp"}},
        {"server": server, "keepAliveInterval": 0}, {"server": server, "keepAliveInterval": True},
        {"server": server, "clientId": "a/b"}, {"server": server, "clientId": "x" * 65},
        {"server": server, "deviceTopicPrefix": "a/#"}, {"server": server, "deviceTopicPrefix": "$SYS/x"},
        {"server": server, "password": "p" * 257}, {"server": server, "username": 5},
        {"server": server, "lastWillTestament": {"useDefault": False, "topic": "a/+"}},
        {"server": server, "lastWillTestament": {"useDefault": False, "topic": "t", "qos": 3}},
        {"server": server, "ssl": {"caCertificate": "not pem"}},
        {"server": server, "ssl": {"clientCertificate": "-----BEGIN CERTIFICATE-----"}},
        {"server": server, "homeAssistant": {"lockCommandRole": "viewer"}},
        {"server": server, "homeAssistant": {"discoveryPrefix": "ha/#"}},
    ]
    for params in bad_client:
        answer = api(st, "client.cgi", "configureClient", params)
        assert answer["http"] == 200 and answer["error"]["code"] == 2104, params
    bad_events = [
        {"topicPrefix": "other"}, {"topicPrefix": "custom"}, {"customTopicPrefix": "a/#", "topicPrefix": "custom"},
        {"appendEventTopic": "yes"}, {"eventFilterList": {}}, {"eventFilterList": [{"qos": 1}]},
        {"eventFilterList": [{"topicFilter": "onvif:Device", "qos": 5}]},
        {"eventFilterList": [{"topicFilter": "onvif:Device", "retain": "always"}]},
        {"eventFilterList": [{"topicFilter": "x"}] * 33},
        {"eventFilterList": [{"topicFilter": "a|" * 40}]},
    ]
    for params in bad_events:
        answer = api(st, "event.cgi", "configureEventPublication", params)
        assert answer["http"] == 200 and answer["error"]["code"] == 2104, params
    # nothing of that was stored
    assert api(st, "client.cgi", "getClientStatus")["data"]["status"]["state"] == "inactive"
    # stored and shown back without the password; survives a restart
    ok(st, "client.cgi", "configureClient", {"server": server, "username": "u", "password": "secret-pw",
                                             "clientId": "front-door", "activateOnReboot": False})
    ok(st, "client.cgi", "activateClient")
    assert ok(st, "client.cgi", "getClientStatus")["status"]["state"] == "active"
    st.stop()
    st.start()
    answer = ok(st, "client.cgi", "getClientStatus")
    config = answer["config"]
    assert answer["status"]["state"] == "inactive"
    assert config["clientId"] == "front-door" and config["username"] == "u" and config["passwordSet"] is True
    assert "secret-pw" not in json.dumps(config)
    assert config["lastWillTestament"] == {"useDefault": True} and config["keepAliveInterval"] == 60


# ---- DTMF and a real call (baresip answers) ------------------------------------------------------------
@pytest.mark.sip
def test_dtmf_and_call_states_of_a_real_call_reach_the_bridge_and_home_assistant(tmp_path, broker, observers,
                                                                                  baresip_factory):  # noqa: F811
    from tests.stack_sip import enable_sip, hardware_toml, open_door_dtmf, start_station, wait_call_state
    st = start_station(tmp_path / "sip-state", hardware_toml(pulse_ms=150))
    try:
        serial = serial_of(st)
        base = f"doorstation/{serial.lower()}"
        enable_sip(st)
        event_id, _ = open_door_dtmf(st)
        ok(st, "event.cgi", "configureEventPublication", {
            "topicPrefix": "custom", "customTopicPrefix": "door", "includeTopicNamespaces": False,
            "eventFilterList": [{"topicFilter": "tnsaxis:Call//.", "qos": 1}]})
        obs = observers(broker.port)
        connect(st, broker.port)
        wait_status(st, "connected")
        bob = baresip_factory()
        # the initial values first (published on activation), then the call's own messages
        obs.wait_for(lambda m: m.topic == "door/Call/State", what="initial Call/State")
        obs.wait_for(lambda m: m.topic == f"{base}/call/active", what="initial HA call state")
        mark = obs.mark()
        call_id = st.ok("Call", {"To": bob.aor})["CallId"]
        wait_call_state(st, call_id, "Active")
        bob.wait_event("CALL_ESTABLISHED")
        assert bob.command("sndcode", "#1234#")["ok"]
        dtmf = obs.wait_for(lambda m: m.topic == "door/Call/DTMF", since=mark, what="Call/DTMF")
        assert dtmf.json()["topic"] == "axis:Call/DTMF"
        assert dtmf.json()["message"] == {"source": {"DTMFEventId": event_id}, "key": {}, "data": {"CallId": call_id}}
        last = obs.wait_for(lambda m: m.topic == f"{base}/dtmf/last", since=mark, what="HA last DTMF")
        assert last.payload == b"OpenDoorEvent"
        attrs = obs.wait_for(lambda m: m.topic == f"{base}/dtmf/last/attributes", since=mark,
                             what="attributes")
        assert attrs.json() == {"DTMFEventId": event_id, "CallId": call_id}
        st.ok("TerminateCall", {"CallId": call_id})
        obs.wait_for(lambda m: m.topic == "door/Call/State"
                     and m.json()["message"]["data"]["CallState"] == "Idle", since=mark, what="Idle")
        reasons = [m.json()["message"]["data"]["Reason"] for m in obs.messages[mark:]
                   if m.topic == "door/Call/StateChange" and m.json()["message"]["data"]["CallId"] == call_id]
        assert reasons == ["Initiated", "AcceptedByRemote", "Terminated"]
        idle = obs.wait_for(lambda m: m.topic == f"{base}/call/state" and m.payload == b"Idle", since=mark,
                            what="HA Idle")
        obs.wait_for(lambda m: m.topic == f"{base}/call/active", since=obs.messages.index(idle), what="HA inactive")
        states = [m.payload for m in obs.messages[mark:] if m.topic == f"{base}/call/state"]
        assert states == [b"Calling", b"Active", b"Idle"]
        actives = [m.payload for m in obs.messages[mark:] if m.topic == f"{base}/call/active"]
        assert actives == [b"OFF", b"ON", b"OFF"]
    finally:
        st.stop()


def test_websockets_transport(station, tmp_path, observers):
    broker = Mosquitto(tmp_path / "ws-broker", websockets=True).start()
    try:
        st = station
        base = f"doorstation/{serial_of(st).lower()}"
        obs = observers(broker.port, f"{base}/#")
        ok(st, "client.cgi", "configureClient", {"server": {"host": "127.0.0.1", "port": broker.ws_port,
                                                            "protocol": "ws", "basepath": "/mqtt"}})
        ok(st, "client.cgi", "activateClient")
        wait_status(st, "connected")
        assert ok(st, "client.cgi", "getClientStatus")["config"]["server"]["protocol"] == "ws"
        obs.wait_for(lambda m: m.topic == f"{base}/door/state" and m.payload == b"LOCKED", what="state over ws")
    finally:
        broker.stop()
