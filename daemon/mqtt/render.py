"""Axis MQTT event bridge messages for one notification (pure).

Topic: `<prefix>` where prefix is `<deviceTopicPrefix>/event` (topicPrefix default) or
customTopicPrefix; with appendEventTopic the event's topic follows, with its namespaces
(`onvif:Device/axis:IO/Port`) or without them (`Device/IO/Port`).

Payload (JSON): {"timestamp": ms, "topic": "onvif:Device/axis:IO/Port",
"message": {"source": {...}, "key": {...}, "data": {...}}} plus "serialNumber" when asked. The
payload's topic always carries the namespaces, spelled onvif/axis as Axis devices do over MQTT
(Home Assistant's Axis integration maps them back to tns1/tnsaxis).

The first matching filter of eventFilterList decides QoS and retain: `none` never retains,
`property` retains property events (state), `all` retains every event.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from daemon.axis_events import Notification
from daemon.mqtt.config import topic_filter

_MQTT_NAMES = {"tns1": "onvif", "tnsaxis": "axis"}


@dataclass(frozen=True)
class Outgoing:
    """One message to publish."""
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    kind: str = "event"           # event | state | discovery | connection (status counters)


def mqtt_topic_name(topic: str, namespaces: bool = True) -> str:
    steps = []
    for step in topic.split("/"):
        prefix, sep, name = step.partition(":")
        steps.append((f"{_MQTT_NAMES.get(prefix, prefix)}:{name}" if namespaces else name) if sep else step)
    return "/".join(steps)


class EventRenderer:
    """Built from the stored event publication document, the device topic prefix and the serial."""

    def __init__(self, events: dict, device_prefix: str, serial: str):
        self._events = events
        self._serial = serial
        self._filters = [(topic_filter(f["topicFilter"]), int(f.get("qos", 0)), str(f.get("retain", "none")))
                         for f in events.get("eventFilterList", [])]
        self._base = str(events.get("customTopicPrefix") if events.get("topicPrefix") == "custom"
                         else f"{device_prefix}/event")

    def render(self, n: Notification) -> Outgoing | None:
        """The message for this notification, or None when no filter matches."""
        chosen = next(((qos, retain) for match, qos, retain in self._filters if match.matches(n.topic)), None)
        if chosen is None:
            return None
        qos, retain = chosen
        topic = self._base
        if self._events.get("appendEventTopic", True):
            topic = f"{topic}/{mqtt_topic_name(n.topic, bool(self._events.get('includeTopicNamespaces', True)))}"
        payload: dict = {"timestamp": int(round(n.utc * 1000)), "topic": mqtt_topic_name(n.topic),
                         "message": {"source": dict(n.source), "key": dict(n.key), "data": dict(n.data)}}
        if self._events.get("includeSerialNumberInPayload"):
            payload["serialNumber"] = self._serial
        keep = retain == "all" or (retain == "property" and n.is_property)
        return Outgoing(topic, json.dumps(payload, separators=(",", ":")).encode(), qos, keep, "event")
