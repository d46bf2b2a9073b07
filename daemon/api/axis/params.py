"""GET|POST /axis-cgi/param.cgi: VAPIX parameter management, the groups Axis clients read.

    action=list[&group=G[,G...]]   viewer   text/plain lines `root.Group.Key=value`
    action=update&Group.Key=value  admin    `OK`, or `# Error: Error setting 'root.Group.Key' to 'value'!`

Groups: root.Brand, root.Properties, root.IOPort, root.Input, root.Output. A group (or parameter)
the station does not have is answered the way Axis devices answer it, with HTTP 200 and a line
`# Error: Error -1 getting param in group 'NAME'`, while the other groups of the request still come
back. The writable parameters are the port names, `IOPort.I<id>.Input.Name` (inputs) and
`IOPort.I<id>.Output.Name` (outputs), stored by the supervisor; every other parameter is read-only
(the identity is the board's, the rest of the ports hardware.toml's) and an update of it is
answered with Axis's error line, changing nothing of the request.

The arguments may come in the query string or in the body, whatever the body's Content-Type
(PyPI `axis` sends form data labelled text/plain).
"""
from __future__ import annotations

import re
from typing import Callable
from urllib.parse import parse_qsl

import falcon

from daemon.api.axis.identity import DeviceIdentity
from daemon.api.axis.jsonapi import ApiError, read_body, require_role
from daemon.api.axis.ports import PortError, StationPorts
from daemon.device import valid_name
from daemon.faults import VapixFault

MAX_ARGS = 32
MAX_QUERY = 8192
MAX_GROUPS = 16
IO_GROUPS = ("IOPort", "Input", "Output")
_NAME_PARAM = re.compile(r"root\.IOPort\.I(\d{1,3})\.(Input|Output)\.Name")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def brand_group(identity: DeviceIdentity) -> dict[str, str]:
    info = identity.basic_device_info()
    return {f"Brand.{k}": info[k] for k in ("Brand", "ProdFullName", "ProdNbr", "ProdShortName",
                                            "ProdType", "ProdVariant", "WebURL")}


def properties_group(identity: DeviceIdentity) -> dict[str, str]:
    return {
        "Properties.API.HTTP.AdminPath": "/",
        "Properties.API.HTTP.Version": "3",
        # No metadata (event) stream yet: "no" until the RTSP event stream exists.
        "Properties.API.Metadata.Metadata": "no",
        "Properties.API.Metadata.Version": "1.0",
        # The VAPIX Call service (/vapix/call) is identified by these two.
        "Properties.API.SIP.SIP": "yes",
        "Properties.API.SIP.Version": "2.0",
        "Properties.Firmware.BuildDate": identity.build_date,
        "Properties.Firmware.BuildNumber": identity.build_number,
        "Properties.Firmware.Version": identity.version,
        "Properties.System.Architecture": identity.architecture,
        "Properties.System.HardwareID": identity.hardware_id,
        "Properties.System.Language": "English",
        "Properties.System.LanguageType": "default",
        "Properties.System.SerialNumber": identity.serial_number,
        "Properties.System.Soc": identity.soc,
    }


def io_groups(ports: StationPorts, pulse_ms: Callable[[], int]) -> dict[str, str]:
    """root.IOPort (one I<id> per port, as param.cgi numbers them), root.Input, root.Output."""
    params: dict[str, str] = {}
    layout = [s.port for s in ports.states()]
    for port in layout:
        p = f"IOPort.I{port.id}"
        params[f"{p}.Configurable"] = "no"
        params[f"{p}.Direction"] = port.direction
        params[f"{p}.Usage"] = port.usage
        if port.direction == "input":
            params[f"{p}.Input.Name"] = port.name
            params[f"{p}.Input.Trig"] = "closed"
        else:
            params[f"{p}.Output.Name"] = port.name
            params[f"{p}.Output.Active"] = "closed"
            params[f"{p}.Output.Button"] = "none"
            params[f"{p}.Output.DelayTime"] = "0"
            params[f"{p}.Output.Mode"] = "pulse" if port.role == "door_relay" else "bistable"
            params[f"{p}.Output.PulseTime"] = str(pulse_ms()) if port.role == "door_relay" else "0"
    params["Input.NbrOfInputs"] = str(sum(p.direction == "input" for p in layout))
    params["Output.NbrOfOutputs"] = str(sum(p.direction == "output" for p in layout))
    return params


class ParamCgiResource:
    def __init__(self, identity: Callable[[], DeviceIdentity], ports: StationPorts,
                 pulse_ms: Callable[[], int]):
        self.identity = identity
        self.ports = ports
        self.pulse_ms = pulse_ms

    def all_params(self, with_io: bool = True) -> dict[str, str]:
        """Every parameter; the I/O groups (which ask the supervisor) only when `with_io`."""
        identity = self.identity()
        return {**brand_group(identity), **(io_groups(self.ports, self.pulse_ms) if with_io else {}),
                **properties_group(identity)}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._handle(req, resp, req.query_string or "")

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            body = read_body(req, MAX_QUERY).decode("latin-1")
        except ApiError as e:
            self._text(resp, [f"# Error: {e.message}"], e.http_status)
            return
        self._handle(req, resp, "&".join(x for x in (req.query_string or "", body.strip()) if x))

    def _handle(self, req: falcon.Request, resp: falcon.Response, query: str) -> None:
        if len(query) > MAX_QUERY:
            self._text(resp, ["# Error: request too long"], 413)
            return
        try:
            args = parse_qsl(query, keep_blank_values=True, max_num_fields=MAX_ARGS)
        except ValueError:
            self._text(resp, [f"# Error: at most {MAX_ARGS} arguments"])
            return
        action = next((v for k, v in args if k == "action"), "")
        user = req.context.get("user")
        try:
            if action == "list":
                require_role(user, "viewer")
                groups = ",".join(v for k, v in args if k == "group")
                self._text(resp, self._list(groups))
            elif action == "update":
                require_role(user, "admin")
                self._text(resp, self._update([(k, v) for k, v in args if k not in ("action", "usergroup")]))
            else:
                self._text(resp, [f"# Error: action must be list or update, not '{action[:32]}'"])
        except ApiError as e:
            self._text(resp, [f"# Error: {e.message}"], e.http_status)
        except VapixFault as fault:
            self._text(resp, [f"# Error: {str(fault.reason)[:200]}"], 503 if fault.http_status == 503 else 200)

    def _list(self, groups: str) -> list[str]:
        wanted = [g.strip() for g in groups.split(",") if g.strip()][:MAX_GROUPS] if groups else [""]
        names = [g[5:] if g.startswith("root.") else ("" if g == "root" else g) for g in wanted]
        params = self.all_params(with_io=any(not n or n.split(".")[0] in IO_GROUPS for n in names))
        lines: list[str] = []
        for group, name in zip(wanted, names, strict=True):
            hits = [k for k in params if not name or k == name or k.startswith(name + ".")]
            if not hits:
                lines.append(f"# Error: Error -1 getting param in group '{_clean(group)}'")
            lines += [f"root.{k}={params[k]}" for k in hits]
        return lines

    def _update(self, pairs: list[tuple[str, str]]) -> list[str]:
        """Port names only; the whole request is refused at its first parameter that is not one."""
        if not pairs:
            return ["# Error: no parameter to update"]
        layout = {p.id: p for p in self.ports.layout()}
        names: dict[int, str] = {}
        for name, value in pairs:
            full = name if name.startswith("root.") else "root." + name
            m = _NAME_PARAM.fullmatch(full)
            port = layout.get(int(m.group(1))) if m else None
            try:
                if m is None or port is None or port.direction != m.group(2).lower():
                    raise ValueError(full)
                names[port.id] = valid_name(value)
            except (ValueError, VapixFault):
                return [f"# Error: Error setting '{_clean(full)}' to '{_clean(value)}'!"]
        try:
            self.ports.rename(names)
        except PortError as e:
            return [f"# Error: {e}"]
        return ["OK"]

    @staticmethod
    def _text(resp: falcon.Response, lines: list[str], status: int = 200) -> None:
        resp.status = status
        resp.content_type = "text/plain"
        resp.text = "".join(line + "\r\n" for line in lines)


def _clean(text: str, limit: int = 128) -> str:
    """Echo client text on one line only, bounded."""
    return "".join(c for c in text if c.isprintable())[:limit]
