"""POST /axis-cgi/io/portmanagement.cgi (Axis I/O port management API 1.0):

    getPorts           viewer     every port: port, configurable, usage, name, direction, state, normalState
    setPorts           operator   [{"port": "1", "state": "closed"}] (a bare list, as PyPI `axis`
                                  sends it, or {"ports": [...]}); `state` drives an output, `name`
                                  renames a port (admin); usage, direction and normalState are
                                  fixed by hardware.toml
    setStateSequence   operator   {"port": "1", "sequence": [{"state": "closed", "time": 3000}, ...]}
"""
from __future__ import annotations

from daemon.api.axis import jsonapi
from daemon.api.axis.jsonapi import INVALID_PARAMETER, MISSING_PARAMETER, ApiError, JsonApiResource, JsonRequest
from daemon.api.axis.ports import CLOSED, OPEN, PortError, StationPorts, circuit
from daemon.device import MAX_SEQUENCE_STEPS, MAX_STEP_MS, valid_name
from daemon.faults import VapixFault

VERSIONS = ["1.0"]
MAX_PORTS_PER_REQUEST = 16
PORT_NOT_FOUND = 2200          # port-specific errors of this API (docs/axis.md)
PORT_NOT_SETTABLE = 2201
SERVICE_ERROR = jsonapi.INTERNAL_ERROR


def port_items(ports: StationPorts) -> dict:
    items = [{"port": str(s.port.id), "configurable": False, "readonly": s.port.direction == "input",
              "usage": s.port.usage, "name": s.port.name, "direction": s.port.direction,
              "state": circuit(s.active), "normalState": OPEN}
             for s in ports.states()]
    return {"numberOfPorts": len(items), "items": items}


def _state(value, where: str) -> bool:
    if value not in (OPEN, CLOSED):
        raise ApiError(INVALID_PARAMETER, f"{where}: state must be \"open\" or \"closed\"")
    return value == CLOSED


def _find(ports: StationPorts, port_id):
    if not isinstance(port_id, str) or not port_id.isdigit() or len(port_id) > 4:
        raise ApiError(INVALID_PARAMETER, "port must be a port id such as \"1\"")
    try:
        return ports.find(port_id)
    except PortError as e:
        raise ApiError(PORT_NOT_FOUND, str(e)) from None


def _drive(ports: StationPorts, port, active: bool, user, sequence=None) -> None:
    try:
        ports.activate(port, active, getattr(user, "name", "unknown"), sequence)
    except PortError as e:
        raise ApiError(PORT_NOT_SETTABLE, str(e)) from None
    except VapixFault as fault:
        raise ApiError(SERVICE_ERROR, str(fault.reason)[:200],
                       503 if fault.http_status == 503 else 200) from None


def make_resource(ports: StationPorts) -> JsonApiResource:
    def get_ports(request: JsonRequest, user) -> dict:
        try:
            return port_items(ports)
        except VapixFault as fault:
            raise ApiError(SERVICE_ERROR, str(fault.reason)[:200], fault.http_status) from None

    def set_ports(request: JsonRequest, user) -> dict:
        params = request.params
        entries = params.get("ports") if isinstance(params, dict) else params
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_PORTS_PER_REQUEST:
            raise ApiError(MISSING_PARAMETER, f"params must list 1 to {MAX_PORTS_PER_REQUEST} ports")
        plan, names = [], {}
        for i, entry in enumerate(entries):                # validate everything before acting
            if not isinstance(entry, dict):
                raise ApiError(INVALID_PARAMETER, f"ports[{i}] must be an object")
            port = _find(ports, entry.get("port"))
            for key in ("usage", "direction", "normalState"):
                if key in entry and entry[key] != {"usage": port.usage, "direction": port.direction,
                                                    "normalState": OPEN}[key]:
                    raise ApiError(PORT_NOT_SETTABLE,
                                   f"port {port.id}: {key} is fixed by the hardware configuration")
            if "name" in entry:
                jsonapi.require_role(user, "admin")
                try:
                    names[port.id] = valid_name(entry["name"])
                except VapixFault as fault:
                    raise ApiError(INVALID_PARAMETER, f"ports[{i}]: {fault.reason}") from None
            if "state" in entry:
                if port.direction != "output":
                    raise ApiError(PORT_NOT_SETTABLE, f"port {port.id} ({port.name}) is an input")
                plan.append((port, _state(entry["state"], f"ports[{i}]")))
        if names:
            try:
                ports.rename(names)
            except PortError as e:
                raise ApiError(PORT_NOT_SETTABLE, str(e)) from None
            except VapixFault as fault:
                raise ApiError(SERVICE_ERROR, str(fault.reason)[:200], fault.http_status) from None
        for port, active in plan:
            _drive(ports, port, active, user)
        return {}

    def set_state_sequence(request: JsonRequest, user) -> dict:
        params = request.params
        if not isinstance(params, dict):
            raise ApiError(MISSING_PARAMETER, "params must hold port and sequence")
        port = _find(ports, params.get("port"))
        steps = params.get("sequence")
        if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_SEQUENCE_STEPS:
            raise ApiError(INVALID_PARAMETER, f"sequence must list 1 to {MAX_SEQUENCE_STEPS} steps")
        sequence = []
        for i, step in enumerate(steps):
            t = step.get("time") if isinstance(step, dict) else None
            if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t <= MAX_STEP_MS:
                raise ApiError(INVALID_PARAMETER, f"sequence[{i}].time must be 0..{MAX_STEP_MS} ms")
            sequence.append((_state(step.get("state"), f"sequence[{i}]"), t))
        if port.direction != "output":
            raise ApiError(PORT_NOT_SETTABLE, f"port {port.id} ({port.name}) is an input")
        _drive(ports, port, sequence[0][0], user, sequence)
        return {}

    return JsonApiResource(VERSIONS, {"getPorts": ("viewer", get_ports),
                                      "setPorts": ("operator", set_ports),
                                      "setStateSequence": ("operator", set_state_sequence)})
