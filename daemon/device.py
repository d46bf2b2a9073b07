"""The station's I/O ports as an Axis device numbers them, and the supervisor's control commands
that read and drive them.

Port ids are small integers, stable for a given hardware.toml, used by every Axis-facing surface
(portmanagement.cgi, port.cgi, param.cgi's IOPort group, and the I/O events that will follow):

    0            the call button (input)
    1            the door relay (output)
    2 ..         extra inputs ([gpio.inputs.NAME]), in the file's order
    then         extra outputs ([gpio.outputs.NAME]), in the file's order

The call LED is not a port: the intercom drives it, a client toggling it would fight the call flow.
Adding a line at the end of its table keeps every existing id; adding an input moves the extra
outputs up by one (docs/axis.md says so).

Port names default to "Call button", "Door relay" and the hardware.toml key of an extra line;
an admin may rename a port (param.cgi / portmanagement.cgi). Names are stored in SQLite by the
line's role, so they follow the line if its id moves.

Supervisor side: `control_handlers(runtime, store)` returns the handlers for the control socket
("device.ports", "device.output.set", "device.port.names.set"); they run on the supervisor's loop
thread like every command (the store's single writer).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from daemon.faults import action_failed, invalid_arg, not_found
from daemon.hwconfig import GpioConfig

INPUT, OUTPUT = "input", "output"
CALL_BUTTON, DOOR_RELAY = "call_button", "door_relay"
TOPIC_OUTPUT = "doorstation:Output"

# Nice names for the two fixed lines; extra lines are named after their hardware.toml key.
_FIXED_NAMES = {CALL_BUTTON: "Call button", DOOR_RELAY: "Door relay"}
_FIXED_USAGE = {CALL_BUTTON: "Doorbell", DOOR_RELAY: "Door lock"}

MAX_SEQUENCE_STEPS = 16
MAX_STEP_MS = 60_000
PORT_NAMES_KEY = "device_port_names"
MAX_NAME = 64


@dataclass(frozen=True)
class Port:
    id: int
    role: str          # the line's role in hardware.toml (call_button, door_relay, or NAME)
    direction: str     # input | output
    name: str
    usage: str


def port_layout(gpio: GpioConfig) -> list[Port]:
    """Every port with its id, in id order."""
    ports = [Port(0, CALL_BUTTON, INPUT, _FIXED_NAMES[CALL_BUTTON], _FIXED_USAGE[CALL_BUTTON]),
             Port(1, DOOR_RELAY, OUTPUT, _FIXED_NAMES[DOOR_RELAY], _FIXED_USAGE[DOOR_RELAY])]
    for role in gpio.inputs:
        ports.append(Port(len(ports), role, INPUT, role, ""))
    for role in gpio.outputs:
        ports.append(Port(len(ports), role, OUTPUT, role, ""))
    return ports


def port_to_wire(port: Port, active: bool | None) -> dict[str, Any]:
    """The control socket's form of one port (what "device.ports" answers)."""
    return {"Id": port.id, "Role": port.role, "Direction": port.direction, "Name": port.name,
            "Usage": port.usage, "Active": active}


def valid_name(name) -> str:
    """A port name as param.cgi can show it on one `key=value` line: 1..64 printable characters,
    no '='. Raises the VapixFault invalid_arg otherwise."""
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME \
            or not name.isprintable() or "=" in name:
        raise invalid_arg(f"A port name is 1 to {MAX_NAME} printable characters without '='")
    return name.strip()


def parse_sequence(steps) -> list[tuple[bool, int]]:
    """[{"Active": bool, "Ms": int}, ...] -> [(active, ms)], bounded in count and duration."""
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_SEQUENCE_STEPS:
        raise invalid_arg(f"Sequence must be a list of 1 to {MAX_SEQUENCE_STEPS} steps")
    out = []
    for step in steps:
        active, ms = (step.get("Active"), step.get("Ms")) if isinstance(step, dict) else (None, None)
        if not isinstance(active, bool) or isinstance(ms, bool) or not isinstance(ms, int) \
                or not 0 <= ms <= MAX_STEP_MS:
            raise invalid_arg(f"Each step needs Active (true/false) and Ms (0..{MAX_STEP_MS})")
        out.append((active, ms))
    return out


class DevicePorts:
    """The supervisor's side: reads every port's line and drives the extra outputs.

    The door relay is not driven here: it goes through the intercom's door policy ("door.open").
    An output sequence runs on the loop's scheduler; a new request for the same output cancels
    the rest of the previous one, so the last request wins and nothing piles up."""

    def __init__(self, gpio: GpioConfig, lines, scheduler, emit: Callable[[str, dict], None], store=None):
        self.ports = port_layout(gpio)
        self._by_id = {p.id: p for p in self.ports}
        self._lines = lines
        self._scheduler = scheduler
        self._emit = emit
        self._store = store
        self._pending: dict[str, list] = {}   # role -> timer handles of a running sequence

    def _names(self) -> dict[str, str]:
        stored = (self._store.get_setting(PORT_NAMES_KEY) if self._store is not None else None) or {}
        return {role: name for role, name in stored.items() if isinstance(name, str)}

    def read(self) -> dict:
        names = self._names()
        return {"Ports": [{**port_to_wire(p, bool(self._lines.get_value(p.role))),
                           "Name": names.get(p.role, p.name)} for p in self.ports]}

    def set_names(self, args: dict) -> dict:
        """{"Names": {"<port id>": "name" or null (back to the default)}}; all or nothing."""
        names = args.get("Names")
        if not isinstance(names, dict) or not 1 <= len(names) <= len(self.ports):
            raise invalid_arg("Names must map port ids to names")
        if self._store is None:
            raise action_failed("Port names cannot be stored")
        stored = self._names()
        for key, name in names.items():
            port = self._by_id.get(int(key)) if isinstance(key, str) and key.isdigit() and len(key) < 5 else None
            if port is None:
                raise not_found(f"There is no port {str(key)[:8]!r}")
            if name is None:
                stored.pop(port.role, None)
            else:
                stored[port.role] = valid_name(name)
        with self._store.transaction() as tx:
            tx.put_setting(PORT_NAMES_KEY, stored)
        return self.read()

    def set_output(self, args: dict) -> dict:
        port = self._output(args.get("Id"))
        user = str(args.get("User") or "unknown")[:64]
        sequence = parse_sequence(args.get("Sequence"))
        self._cancel(port.role)
        handles: list = []
        self._pending[port.role] = handles
        delay_ms = 0
        for i, (active, ms) in enumerate(sequence):
            if i == 0:
                self._drive(port, active, user)
            else:
                handles.append(self._scheduler.call_later(
                    delay_ms / 1000, lambda a=active: self._drive(port, a, user)))
            delay_ms += ms
        return {"Id": port.id, "Steps": len(sequence)}

    def _output(self, port_id) -> Port:
        if isinstance(port_id, bool) or not isinstance(port_id, int) or port_id not in self._by_id:
            raise not_found(f"There is no port {port_id!r}")
        port = self._by_id[port_id]
        if port.direction != OUTPUT:
            raise invalid_arg(f"Port {port.id} ({port.name}) is an input")
        if port.role == DOOR_RELAY:
            raise invalid_arg("The door relay opens through door.open (the door policy)")
        return port

    def _drive(self, port: Port, active: bool, user: str) -> None:
        self._lines.set_value(port.role, active)
        self._emit(TOPIC_OUTPUT, {"Output": port.role, "Port": port.id, "Active": active, "User": user})

    def _cancel(self, role: str) -> None:
        for handle in self._pending.pop(role, []):
            handle.cancel()


def control_handlers(runtime, store=None) -> dict[str, Callable[[dict], Any]]:
    """Handlers to register on the supervisor's control socket. `runtime` is the StationRuntime
    (its hardware, or None without hardware); `store` keeps the port names."""
    hardware = getattr(runtime, "hardware", None)
    if hardware is None:
        def no_hardware(args: dict) -> dict:
            raise action_failed("No hardware is configured")
        return {"device.ports": no_hardware, "device.output.set": no_hardware,
                "device.port.names.set": no_hardware}
    from hw.timers import AsyncioScheduler
    ports = DevicePorts(hardware.gpio_config, hardware.lines, AsyncioScheduler(runtime.loop),
                        runtime.emit_hardware_event, store)
    return {"device.ports": lambda args: ports.read(), "device.output.set": ports.set_output,
            "device.port.names.set": ports.set_names}
