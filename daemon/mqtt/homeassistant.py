"""Home Assistant MQTT discovery: the documents that make the station appear as one device, and the
entity states that follow the event model (pure).

Entities (discovery topic `<discoveryPrefix>/<component>/doorstation_<serial>/<object>/config`,
retained; states under `doorstation/<serial>/`, outside the Axis device prefix so Home
Assistant's Axis integration, which reads `<deviceTopicPrefix>/#` as Axis events, never sees them):

    event         doorbell     event_types [press], device_class doorbell; {"event_type": "press"}
    lock          door         UNLOCK -> a door pulse (docs/mqtt.md: role, rate); LOCKED/UNLOCKED
                               from the relay's events (unlocked while the pulse lasts)
    binary_sensor call_active  ON while a call is Active (connected)
    binary_sensor input_<role> every extra input of hardware.toml; device_class door when the
                               role names a door (door_contact), else none
    sensor        call_state   Idle | Calling | Active (device_class enum)
    sensor        last_dtmf    the last DTMF event's name; its id and CallId as attributes

Availability: the client's connect message and last will (by default retained `online`/`offline`
on `doorstation/<serial>/availability`), so an unplugged station shows as unavailable.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from daemon.axis_events import (
    CALL_BUTTON_PORT,
    DOOR_RELAY_PORT,
    TOPIC_CALL_DTMF,
    TOPIC_CALL_STATE,
    TOPIC_IO_PORT,
    TOPIC_RELAY,
    Notification,
)
from daemon.mqtt.render import Outgoing

LOCK, UNLOCK = "LOCK", "UNLOCK"
LOCKED, UNLOCKED = "LOCKED", "UNLOCKED"
ON, OFF = "ON", "OFF"
CALL_STATES = ["Idle", "Calling", "Active"]
MAX_STATE = 255       # Home Assistant's limit on a sensor state


@dataclass(frozen=True)
class HaIdentity:
    serial: str
    version: str
    board: str
    model: str = "doorstation"
    manufacturer: str = "doorstation"


def safe_id(text: str) -> str:
    """A topic level and id part: lower-case letters, digits, _ and -."""
    return re.sub(r"[^a-z0-9_-]", "_", text.lower())[:64] or "_"


def _mac(serial: str) -> str | None:
    """The serial is the interface MAC unless the station made one up (locally administered bit)."""
    if not re.fullmatch(r"[0-9A-Fa-f]{12}", serial) or int(serial[:2], 16) & 0x02:
        return None
    return ":".join(serial[i:i + 2] for i in range(0, 12, 2)).lower()


class HomeAssistant:
    def __init__(self, identity: HaIdentity, discovery_prefix: str, availability: dict | None,
                 inputs: dict[str, int]):
        """`availability`: {topic, online, offline} or None; `inputs`: extra input role -> port id."""
        self.identity = identity
        self.node = f"doorstation_{safe_id(identity.serial)}"
        self.base = f"doorstation/{safe_id(identity.serial)}"
        self.discovery_prefix = discovery_prefix
        self.availability = availability
        self.inputs = {role: pid for role, pid in inputs.items()
                       if pid not in (CALL_BUTTON_PORT, DOOR_RELAY_PORT)}
        self._input_by_port = {pid: role for role, pid in self.inputs.items()}

    @property
    def command_topic(self) -> str:
        return f"{self.base}/door/set"

    # -- discovery ------------------------------------------------------------------------------
    def _device(self) -> dict:
        ident = self.identity
        device: dict[str, object] = {
                  "identifiers": [self.node], "name": "Door station", "manufacturer": ident.manufacturer,
                  "model": ident.model, "sw_version": ident.version, "hw_version": ident.board,
                  "serial_number": ident.serial}
        mac = _mac(ident.serial)
        if mac:
            device["connections"] = [["mac", mac]]
        return device

    def entities(self) -> list[tuple[str, str, dict]]:
        """(component, object id, component-specific fields) for every entity."""
        b = self.base
        out: list[tuple[str, str, dict]] = [
            ("event", "doorbell", {"name": "Doorbell", "state_topic": f"{b}/doorbell",
                                   "event_types": ["press"], "device_class": "doorbell"}),
            ("lock", "door", {"name": "Door", "state_topic": f"{b}/door/state", "command_topic": self.command_topic,
                              "payload_lock": LOCK, "payload_unlock": UNLOCK, "state_locked": LOCKED,
                              "state_unlocked": UNLOCKED, "optimistic": False, "qos": 1}),
            ("binary_sensor", "call_active", {"name": "Call active", "state_topic": f"{b}/call/active",
                                              "payload_on": ON, "payload_off": OFF}),
            ("sensor", "call_state", {"name": "Call state", "state_topic": f"{b}/call/state",
                                      "device_class": "enum", "options": list(CALL_STATES)}),
            ("sensor", "last_dtmf", {"name": "Last DTMF event", "state_topic": f"{b}/dtmf/last",
                                     "json_attributes_topic": f"{b}/dtmf/last/attributes"}),
        ]
        for role in self.inputs:
            fields = {"name": role.replace("_", " ").capitalize(), "state_topic": f"{b}/input/{safe_id(role)}",
                      "payload_on": ON, "payload_off": OFF}
            if "door" in role.lower():
                fields["device_class"] = "door"
            out.append(("binary_sensor", f"input_{safe_id(role)}", fields))
        return out

    def config_topic(self, component: str, object_id: str) -> str:
        return f"{self.discovery_prefix}/{component}/{self.node}/{object_id}/config"

    def discovery(self) -> list[Outgoing]:
        docs = []
        for component, object_id, fields in self.entities():
            doc = {**fields, "unique_id": f"{self.node}_{object_id}",
                   "device": self._device(),
                   "origin": {"name": "doorstation", "sw_version": self.identity.version}}
            if self.availability is not None:
                doc["availability"] = [{"topic": self.availability["topic"],
                                        "payload_available": self.availability["online"],
                                        "payload_not_available": self.availability["offline"]}]
            docs.append(Outgoing(self.config_topic(component, object_id),
                                 json.dumps(doc, separators=(",", ":")).encode(), 1, True, "discovery"))
        return docs

    def removal(self) -> list[Outgoing]:
        """Empty retained configs: Home Assistant removes the entities (discovery switched off)."""
        return [Outgoing(self.config_topic(c, o), b"", 1, True, "discovery") for c, o, _ in self.entities()]

    # -- states ---------------------------------------------------------------------------------
    def _state(self, suffix: str, value: str) -> Outgoing:
        return Outgoing(f"{self.base}/{suffix}", value[:MAX_STATE].encode(), 1, True, "state")

    def on_notification(self, n: Notification, raw_source: dict | None = None) -> list[Outgoing]:
        """The entity messages one notification causes (an Initialized one never rings)."""
        data = dict(n.data)
        source = dict(n.source)
        if n.topic == TOPIC_CALL_STATE:
            state = data.get("CallState", "Idle")
            return [self._state("call/state", state), self._state("call/active", ON if state == "Active" else OFF)]
        if n.topic == TOPIC_RELAY and source.get("RelayToken") == str(DOOR_RELAY_PORT):
            return [self._state("door/state", UNLOCKED if data.get("LogicalState") == "active" else LOCKED)]
        if n.topic == TOPIC_IO_PORT:
            port = int(source.get("port", "-1")) if str(source.get("port", "")).isdigit() else -1
            active = data.get("state") == "1"
            if port == CALL_BUTTON_PORT:
                if active and n.operation != "Initialized":
                    return [Outgoing(f"{self.base}/doorbell", b'{"event_type":"press"}', 1, False, "event")]
                return []
            role = self._input_by_port.get(port)
            if role is not None:
                return [self._state(f"input/{safe_id(role)}", ON if active else OFF)]
            return []
        if n.topic == TOPIC_CALL_DTMF:
            raw = raw_source or {}
            event_id = source.get("DTMFEventId", "")
            name = str(raw.get("Name") or event_id)
            attributes = json.dumps({"DTMFEventId": event_id, "CallId": data.get("CallId", "")})
            return [self._state("dtmf/last", name), self._state("dtmf/last/attributes", attributes)]
        return []
