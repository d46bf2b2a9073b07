"""The door relay over HTTP (not part of VAPIX's Call service):

    POST /api/door/open                 operator  pulse the relay (recorded with the user's name)
    GET  /api/door/bindings             viewer    DTMF events that open the door
    PUT  /api/door/bindings             admin     {"DTMFEventIds": [...]} replaces the API's bindings
"""
from __future__ import annotations

import json

import falcon

from daemon.commands import role_allows
from daemon.faults import VapixFault, invalid_arg, not_authorized


def _reply(resp: falcon.Response, data=None, fault: VapixFault | None = None) -> None:
    resp.content_type = falcon.MEDIA_JSON
    if fault is not None:
        resp.status = fault.http_status
        resp.text = json.dumps(fault.to_dict())
    else:
        resp.text = json.dumps(data)


def _user(req: falcon.Request, needed: str):
    user = req.context.get("user")
    if user is None or not role_allows(getattr(user, "role", "viewer"), needed):
        raise not_authorized(f"This needs the {needed} role")
    return user


class DoorOpenResource:
    def __init__(self, control):
        self.control = control

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            user = _user(req, "operator")  # operators run the door day to day (docs/auth.md)
            _reply(resp, self.control.request("door.open", {"user": user.name}))
        except VapixFault as fault:
            _reply(resp, fault=fault)


class DoorBindingsResource:
    def __init__(self, control):
        self.control = control

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            _user(req, "viewer")
            _reply(resp, self.control.request("door.bindings", {}))
        except VapixFault as fault:
            _reply(resp, fault=fault)

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            _user(req, "admin")
            raw = req.bounded_stream.read(65536)
            try:
                body = json.loads(raw or b"{}")
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise invalid_arg("The body must be JSON: {\"DTMFEventIds\": [...]}") from None
            ids = body.get("DTMFEventIds") if isinstance(body, dict) else None
            _reply(resp, self.control.request("door.bindings.set", {"DTMFEventIds": ids}))
        except VapixFault as fault:
            _reply(resp, fault=fault)
