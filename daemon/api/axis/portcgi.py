"""GET|POST /axis-cgi/io/port.cgi: the legacy VAPIX I/O port API.

    action=<n>:<a>[<wait><a>...]   drive output n (1-based: port id + 1); a is / (active) or \\ (inactive),
                                  e.g. 2:/ opens the door (port 1 = the relay), 3:/500\\ pulses an extra output
    checkactive=<n>[,<n>...]      answers port<n>=active|inactive per line

Roles: checkactive viewer, action operator. Answers are text/plain; errors are `# Error: ...`
lines with HTTP 200 as Axis devices answer them (403 for a missing role).
"""
from __future__ import annotations

import re
from urllib.parse import parse_qs

import falcon

from daemon.api.axis.jsonapi import ApiError, read_body, require_role
from daemon.api.axis.ports import PortError, StationPorts
from daemon.device import MAX_SEQUENCE_STEPS, MAX_STEP_MS
from daemon.faults import VapixFault

_ACTION_RE = re.compile(r"^(\d{1,3}):((?:[/\\]\d{0,5}){1,%d})$" % MAX_SEQUENCE_STEPS)
_STEP_RE = re.compile(r"([/\\])(\d{0,5})")
MAX_QUERY = 2048


def parse_action(text: str) -> tuple[int, list[tuple[bool, int]]]:
    """"2:/300\\" -> (port id 1, [(True, 300), (False, 0)])."""
    m = _ACTION_RE.match(text)
    if m is None:
        raise ValueError("action must look like 2:/ or 2:/300\\")
    number = int(m.group(1))
    if number < 1:
        raise ValueError("port numbers start at 1")
    steps = [(a == "/", int(ms or 0)) for a, ms in _STEP_RE.findall(m.group(2))]
    if any(ms > MAX_STEP_MS for _, ms in steps):
        raise ValueError(f"waits are at most {MAX_STEP_MS} ms")
    return number - 1, steps


class PortCgiResource:
    def __init__(self, ports: StationPorts):
        self.ports = ports

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._handle(req, resp, req.query_string or "")

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            body = read_body(req, MAX_QUERY).decode("latin-1")
        except ApiError as e:
            self._text(resp, f"# Error: {e.message}", e.http_status)
            return
        self._handle(req, resp, "&".join(x for x in (req.query_string or "", body) if x))

    def _handle(self, req: falcon.Request, resp: falcon.Response, query: str) -> None:
        if len(query) > MAX_QUERY:
            self._text(resp, "# Error: request too long", 413)
            return
        args = parse_qs(query, keep_blank_values=True, max_num_fields=8)
        user = req.context.get("user")
        try:
            if "checkactive" in args:
                require_role(user, "viewer")
                self._text(resp, self._check(args["checkactive"][0]))
            elif "action" in args:
                require_role(user, "operator")
                self._text(resp, self._act(args["action"][0], getattr(user, "name", "unknown")))
            else:
                self._text(resp, "# Error: action or checkactive is required")
        except ApiError as e:
            self._text(resp, f"# Error: {e.message}", e.http_status)
        except VapixFault as fault:
            self._text(resp, f"# Error: {str(fault.reason)[:200]}", 503 if fault.http_status == 503 else 200)
        except ValueError as e:   # also the max_num_fields guard of parse_qs
            self._text(resp, f"# Error: {e}")

    def _check(self, numbers: str) -> str:
        states = {s.port.id: s.active for s in self.ports.states()}
        lines = []
        for n in numbers.split(",")[:32]:
            if not n.strip().isdigit() or int(n) - 1 not in states:
                raise ValueError(f"no port {n.strip()[:8]!r}")
            lines.append(f"port{int(n)}={'active' if states[int(n) - 1] else 'inactive'}")
        return "\r\n".join(lines)

    def _act(self, action: str, user: str) -> str:
        port_id, steps = parse_action(action)
        try:
            port = self.ports.find(port_id)
            self.ports.activate(port, steps[0][0], user, steps)
        except PortError as e:
            raise ValueError(str(e)) from None
        return "OK"

    @staticmethod
    def _text(resp: falcon.Response, text: str, status: int = 200) -> None:
        resp.status = status
        resp.content_type = "text/plain"
        resp.text = text + "\r\n"
