"""The station's I/O ports for the Axis endpoints (API side): what they are, their states, and
driving the outputs.

Ids come from daemon.device.port_layout (hardware.toml). States and names come from the
supervisor: its "device.ports" command when it has one, otherwise "status" (which knows the
button and the relay; the extra lines then read as inactive, names are the defaults).

Driving:
- the door relay: activating it ("closed") is a door opening through the door policy, exactly as
  POST /api/door/open: the control command "door.open" pulses the relay for its configured time
  and records the user in the event log. Deactivating it ("open") is accepted and does nothing:
  a door strike re-locks by itself when the pulse ends, and nothing here can hold a door open.
- extra outputs: "device.output.set" on the supervisor (with the user, for the event log).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from daemon.control.client import ControlError
from daemon.device import DOOR_RELAY, OUTPUT, Port, port_layout
from daemon.hwconfig import GpioConfig

OPEN, CLOSED = "open", "closed"     # Axis circuit states; "closed" = active for every port here


class PortError(Exception):
    """A request the ports cannot do (message fit for the client)."""

    def __init__(self, message: str, not_found: bool = False):
        super().__init__(message)
        self.not_found = not_found


@dataclass(frozen=True)
class PortState:
    port: Port
    active: bool | None      # None: unknown


class StationPorts:
    def __init__(self, control, gpio_config: Callable[[], GpioConfig]):
        """`gpio_config()` returns the GPIO section of hardware.toml (re-read by the caller as it
        sees fit); `control` is the supervisor's control client."""
        self.control = control
        self._gpio_config = gpio_config

    def layout(self) -> list[Port]:
        return port_layout(self._gpio_config())

    def find(self, port_id) -> Port:
        for port in self.layout():
            if str(port.id) == str(port_id):
                return port
        raise PortError(f"There is no port {str(port_id)[:16]!r}", not_found=True)

    def states(self) -> list[PortState]:
        """Every port with its state; raises VapixFault when the supervisor is unreachable."""
        layout = self.layout()
        try:
            data = self.control.request("device.ports", {})
        except ControlError:
            return self._states_from_status(layout)
        reported = {p.get("Id"): p for p in (data or {}).get("Ports", []) if isinstance(p, dict)}
        states = []
        for port in layout:
            r = reported.get(port.id, {})
            given = r.get("Name")
            name = given if isinstance(given, str) and given else port.name
            states.append(PortState(replace(port, name=name),
                                    r.get("Active") if isinstance(r.get("Active"), bool) else None))
        return states

    def _states_from_status(self, layout: list[Port]) -> list[PortState]:
        hardware = (self.control.request("status", {}) or {}).get("Hardware") or {}
        known = {"call_button": hardware.get("ButtonPressed"),
                 DOOR_RELAY: hardware.get("Relay") == "Unlocked" if "Relay" in hardware else None}
        return [PortState(p, known.get(p.role) if isinstance(known.get(p.role), bool) else None)
                for p in layout]

    def rename(self, names: dict[int, str]) -> None:
        """Store port names ({id: name}) in the supervisor, all or nothing."""
        try:
            self.control.request("device.port.names.set", {"Names": {str(i): n for i, n in names.items()}})
        except ControlError:
            raise PortError("This supervisor cannot store port names yet") from None

    def activate(self, port: Port, active: bool, user: str, sequence_ms: list[tuple[bool, int]] | None = None) -> dict:
        """Drive an output. The relay opens the door when asked to be active (see module doc)."""
        if port.direction != OUTPUT:
            raise PortError(f"Port {port.id} ({port.name}) is an input")
        if port.role == DOOR_RELAY:
            steps = sequence_ms or [(active, 0)]
            if any(a for a, _ in steps):
                return self.control.request("door.open", {"user": user})
            return {"Relay": "Locked", "Note": "the relay locks by itself"}
        steps = sequence_ms or [(active, 0)]
        try:
            return self.control.request("device.output.set", {
                "Id": port.id, "User": user,
                "Sequence": [{"Active": a, "Ms": ms} for a, ms in steps]})
        except ControlError:
            raise PortError("This supervisor cannot drive extra outputs yet") from None


def circuit(active: bool | None) -> str:
    """Axis state of a port (normally open: active = closed circuit); unknown reads as the rest state."""
    return CLOSED if active else OPEN
