"""The station's events as an Axis device sends them: one model, several transports.

Pure logic (no I/O). The supervisor's event log (daemon.events; topics listed in docs/events.md)
is rendered into Axis notifications:

    tnsaxis:Call/State         property  source Source      data CallState (Idle|Calling|Active)
    tnsaxis:Call/StateChange   event     source Source      data Reason, CallId, RemoteURI, DeviceURI
    tnsaxis:Call/DTMF          event     source DTMFEventId data CallId
    tns1:Device/tnsaxis:IO/Port property source port (id)  data state "1"|"0"    (inputs)
    tns1:Device/Trigger/Relay  property  source RelayToken (id) data LogicalState active|inactive (outputs)

Port ids are daemon.device's (0 call button, 1 door relay, extra inputs, extra outputs).

Property events carry a PropertyOperation: a subscriber first gets every property's current value
as `Initialized` (`AxisEventModel.initialized()`), then `Changed` when a value really changes.
`AxisEventModel` keeps those values; it is fed the control socket's "status" and "device.ports"
answers once (`from_snapshot`) and then every logged event (`apply`), in seq order. Property
values are absolute, so an event that the snapshot already reflects changes nothing.

Transports render a notification their own way: `metadata_xml` (ONVIF tt:MetadataStream, the RTSP
event stream, one document per RTP packet) and `ws_notify` (the websocket `events:notify` message).
`TopicFilter` matches topic expressions the way Axis devices do (`tns1:Device/tnsaxis:IO//.`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterable
from xml.sax.saxutils import quoteattr

from daemon.faults import VapixFault

TOPIC_CALL_STATE = "tnsaxis:Call/State"
TOPIC_CALL_STATE_CHANGE = "tnsaxis:Call/StateChange"
TOPIC_CALL_DTMF = "tnsaxis:Call/DTMF"
TOPIC_IO_PORT = "tns1:Device/tnsaxis:IO/Port"
TOPIC_RELAY = "tns1:Device/Trigger/Relay"

INITIALIZED, CHANGED = "Initialized", "Changed"

# Internal topics (the event log) this model reads.
LOG_CALL_STATE, LOG_CALL_STATE_CHANGE, LOG_CALL_DTMF = TOPIC_CALL_STATE, TOPIC_CALL_STATE_CHANGE, TOPIC_CALL_DTMF
LOG_RELAY = "doorstation:Relay"
LOG_BUTTON = "doorstation:Button"
LOG_INPUT = "doorstation:Input"
LOG_OUTPUT = "doorstation:Output"

CALL_BUTTON_PORT, DOOR_RELAY_PORT = 0, 1
CALL_BUTTON_ROLE = "call_button"
DEFAULT_SOURCE = "DoorStation"
MAX_VALUE = 256          # every rendered value is cut to this (remote URIs come from the network)

# Namespace prefixes: Axis writes tns1/tnsaxis in websocket and ONVIF documents, onvif/axis in
# RTSP `eventtopic=` and MQTT filters; both name the same namespaces.
NAMESPACES = {"tns1": "http://www.onvif.org/ver10/topics",
              "tnsaxis": "http://www.axis.com/2009/event/topics"}
_PREFIX_ALIASES = {"onvif": "tns1", "axis": "tnsaxis"}


@dataclass(frozen=True)
class Notification:
    """One Axis event: topic, source/key/data items (name -> value, in order), PropertyOperation
    (None for a plain event) and its time (UTC seconds)."""
    topic: str
    source: tuple[tuple[str, str], ...]
    data: tuple[tuple[str, str], ...]
    operation: str | None
    utc: float
    key: tuple[tuple[str, str], ...] = ()

    @property
    def is_property(self) -> bool:
        return self.operation is not None


def _items(pairs: Iterable[tuple[str, object]]) -> tuple[tuple[str, str], ...]:
    return tuple((name, str(value)[:MAX_VALUE]) for name, value in pairs)


def io_port(port_id: int, active: bool, operation: str, utc: float) -> Notification:
    return Notification(TOPIC_IO_PORT, _items([("port", port_id)]), _items([("state", "1" if active else "0")]),
                        operation, utc)


def relay(port_id: int, active: bool, operation: str, utc: float) -> Notification:
    return Notification(TOPIC_RELAY, _items([("RelayToken", port_id)]),
                        _items([("LogicalState", "active" if active else "inactive")]), operation, utc)


def call_state(state: str, operation: str, utc: float, source: str = DEFAULT_SOURCE) -> Notification:
    return Notification(TOPIC_CALL_STATE, _items([("Source", source)]), _items([("CallState", state)]),
                        operation, utc)


# ----------------------------------------------------------------------------- the model
@dataclass
class AxisEventModel:
    """Current property values and the rendering of logged events. `inputs`/`outputs` map a port
    role (hardware.toml) to its port id; the call button and the door relay are always 0 and 1."""
    inputs: dict[str, int] = field(default_factory=lambda: {CALL_BUTTON_ROLE: CALL_BUTTON_PORT})
    outputs: dict[str, int] = field(default_factory=lambda: {"door_relay": DOOR_RELAY_PORT})
    _values: dict[tuple, Notification] = field(default_factory=dict)
    # Until the supervisor logs the call button's own edges (doorstation:Input, role call_button),
    # a logged press (doorstation:Button) stands for a press and a release.
    button_edges_logged: bool = False

    @classmethod
    def from_snapshot(cls, status: dict | None, ports: dict | None, utc: float | None = None) -> "AxisEventModel":
        """Control answers "status" and "device.ports" (either may be None: no hardware)."""
        now = time.time() if utc is None else utc
        model = cls()
        for port in (ports or {}).get("Ports", []):
            pid, role, active = port.get("Id"), str(port.get("Role", "")), bool(port.get("Active"))
            if not isinstance(pid, int) or isinstance(pid, bool):
                continue
            if port.get("Direction") == "input":
                model.inputs[role] = pid
                model._set(io_port(pid, active, INITIALIZED, now))
            elif port.get("Direction") == "output":
                model.outputs[role] = pid
                model._set(relay(pid, active, INITIALIZED, now))
        hardware = (status or {}).get("Hardware")
        if isinstance(hardware, dict):   # the intercom's view wins over the raw line for these two
            model._set(relay(DOOR_RELAY_PORT, hardware.get("Relay") == "Unlocked", INITIALIZED, now))
            model._set(io_port(CALL_BUTTON_PORT, bool(hardware.get("ButtonPressed")), INITIALIZED, now))
        model._set(call_state(str((status or {}).get("CallState") or "Idle"), INITIALIZED, now))
        return model

    def initialized(self) -> list[Notification]:
        """Every property's current value, as a new subscriber gets it first."""
        return [Notification(n.topic, n.source, n.data, INITIALIZED, n.utc, n.key) for n in self._values.values()]

    def changed_since(self, old: "AxisEventModel") -> list[Notification]:
        """After a new snapshot (a supervisor restart): a Changed notification for each property
        whose value differs from `old`'s."""
        before = {(n.topic, n.source): n.data for n in old.initialized()}
        return [Notification(n.topic, n.source, n.data, CHANGED, n.utc, n.key)
                for n in self.initialized() if before.get((n.topic, n.source)) != n.data]

    def apply(self, event: dict) -> list[Notification]:
        """One event of the log ({"topic", "source", "data", "time"}) -> the notifications it
        causes (none when it changes no property and is not an Axis event)."""
        topic, data = event.get("topic"), event.get("data")
        raw_source = event.get("source")
        source: dict = raw_source if isinstance(raw_source, dict) else {}
        if not isinstance(data, dict):
            return []
        utc = float(event.get("time") or time.time())
        if topic == LOG_CALL_STATE:
            return self._changed(call_state(str(data.get("CallState", "")), CHANGED, utc,
                                            str(source.get("Source", DEFAULT_SOURCE))))
        if topic == LOG_CALL_STATE_CHANGE:
            return [Notification(TOPIC_CALL_STATE_CHANGE, _items([("Source", source.get("Source", DEFAULT_SOURCE))]),
                                 _items((k, data.get(k, "")) for k in ("Reason", "CallId", "RemoteURI", "DeviceURI")),
                                 None, utc)]
        if topic == LOG_CALL_DTMF:
            return [Notification(TOPIC_CALL_DTMF, _items([("DTMFEventId", source.get("DTMFEventId", ""))]),
                                 _items([("CallId", data.get("CallId", ""))]), None, utc)]
        if topic == LOG_RELAY and data.get("State") in ("Unlocked", "Locked"):
            return self._changed(relay(DOOR_RELAY_PORT, data["State"] == "Unlocked", CHANGED, utc))
        if topic == LOG_OUTPUT and data.get("Output") in self.outputs:
            return self._changed(relay(self.outputs[data["Output"]], bool(data.get("Active")), CHANGED, utc))
        if topic == LOG_INPUT and data.get("Input") in self.inputs:
            if data["Input"] == CALL_BUTTON_ROLE:
                self.button_edges_logged = True
            return self._changed(io_port(self.inputs[data["Input"]], bool(data.get("Active")), CHANGED, utc))
        if topic == LOG_BUTTON and not self.button_edges_logged:
            return (self._changed(io_port(CALL_BUTTON_PORT, True, CHANGED, utc))
                    + self._changed(io_port(CALL_BUTTON_PORT, False, CHANGED, utc)))
        return []

    def _set(self, n: Notification) -> None:
        self._values[(n.topic, n.source)] = n

    def _changed(self, n: Notification) -> list[Notification]:
        old = self._values.get((n.topic, n.source))
        if old is not None and old.data == n.data:
            return []
        self._set(n)
        return [n]


# ----------------------------------------------------------------------------- topic filters
def _canonical(topic: str) -> list[str]:
    out = []
    for part in topic.strip().split("/"):
        prefix, sep, name = part.partition(":")
        out.append(f"{_PREFIX_ALIASES.get(prefix, prefix)}:{name}" if sep else part)
    return out


class TopicFilter:
    """An Axis/ONVIF topic expression: alternatives joined by `|`; each is a topic path whose
    last step may be `//.` (this topic and every topic below it); a step `*` matches any one
    step. `onvif:`/`axis:` are accepted for `tns1:`/`tnsaxis:`. An empty filter matches all."""

    MAX_LENGTH = 1024
    MAX_ALTERNATIVES = 32

    def __init__(self, expression: str = ""):
        if len(expression) > self.MAX_LENGTH:
            raise ValueError(f"a topic filter is at most {self.MAX_LENGTH} characters")
        self.expression = expression
        alternatives = [a.strip() for a in expression.split("|") if a.strip()]
        if len(alternatives) > self.MAX_ALTERNATIVES:
            raise ValueError(f"a topic filter has at most {self.MAX_ALTERNATIVES} alternatives")
        self._patterns: list[tuple[list[str], bool]] = []
        for alt in alternatives:
            deep = alt.endswith("//.")
            path = alt[:-3] if deep else alt
            steps = _canonical(path)
            if not path or any(not s for s in steps):
                raise ValueError(f"not a topic expression: {alt[:80]!r}")
            self._patterns.append((steps, deep))

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def matches(self, topic: str) -> bool:
        if not self._patterns:
            return True
        steps = _canonical(topic)
        for pattern, deep in self._patterns:
            if len(steps) < len(pattern) or (not deep and len(steps) != len(pattern)):
                continue
            if all(p == "*" or p == s for p, s in zip(pattern, steps, strict=False)):
                return True
        return False


# ----------------------------------------------------------------------------- renderings
def _utc_text(utc: float) -> str:
    return datetime.fromtimestamp(utc, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _simple_items(items: tuple[tuple[str, str], ...]) -> str:
    return "".join(f"<tt:SimpleItem Name={quoteattr(k)} Value={quoteattr(v)}/>" for k, v in items)


def metadata_xml(n: Notification) -> bytes:
    """One ONVIF tt:MetadataStream document holding one notification (what an Axis device puts in
    each RTP packet of its event stream)."""
    operation = f" PropertyOperation={quoteattr(n.operation)}" if n.operation else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema">'
        '<tt:Event><wsnt:NotificationMessage xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"'
        f' xmlns:tns1="{NAMESPACES["tns1"]}" xmlns:tnsaxis="{NAMESPACES["tnsaxis"]}">'
        '<wsnt:Topic Dialect="http://docs.oasis-open.org/wsn/t-1/TopicExpression/Simple">'
        f"{n.topic}</wsnt:Topic>"
        f'<wsnt:Message><tt:Message UtcTime="{_utc_text(n.utc)}"{operation}>'
        f"<tt:Source>{_simple_items(n.source)}</tt:Source>"
        f"<tt:Key>{_simple_items(n.key)}</tt:Key>"
        f"<tt:Data>{_simple_items(n.data)}</tt:Data>"
        "</tt:Message></wsnt:Message></wsnt:NotificationMessage></tt:Event></tt:MetadataStream>"
    ).encode("utf-8")


def ws_notify(n: Notification) -> dict:
    """The websocket transport's `events:notify` message for one notification (JSON-ready), in
    the documented shape: timestamp (ms), topic, message {source, key, data}. It carries no
    PropertyOperation; a client takes the first message of a topic+source as its initial value
    (what axis does for MQTT and websocket events), which is why Initialized ones come first."""
    message = {"source": dict(n.source), "key": dict(n.key), "data": dict(n.data)}
    return {"apiVersion": "1.0", "method": "events:notify",
            "params": {"notification": {"timestamp": int(round(n.utc * 1000)), "topic": n.topic,
                                        "message": message}}}


def sync_from_supervisor(request: Callable[[str, dict], dict], after: int | None) -> tuple[int, AxisEventModel]:
    """What a stream process (WebSocket hub, RTSP server) needs to follow the supervisor's events:
    the log position to read from and the current state. At start (`after` None) the position is
    the log's end; after a supervisor restart it stays the last one seen, so what was logged
    meanwhile (a press, a call) still reaches the streams (the log is in SQLite and outlives the
    supervisor; replayed property values change nothing twice). `request` is a control client's."""
    if after is None:
        # one query, not pages: under a flood of calls, paging to the end chases a moving target
        after = int(request("events.end", {})["next"])
    status = request("status", {})
    try:
        ports = request("device.ports", {})
    except VapixFault:
        ports = None                      # no hardware configured
    return after, AxisEventModel.from_snapshot(status, ports)
