"""The door relay over HTTP (not part of VAPIX's Call service):

    POST /api/door/open                 operator  pulse the relay (recorded with the user's name)
    GET  /api/door/bindings             viewer    DTMF events that open the door
    PUT  /api/door/bindings             admin     {"DTMFEventIds": [...]} replaces the API's bindings
"""
from __future__ import annotations

import json

import falcon

from daemon.api import jsonbody
from daemon.commands import role_allows
from daemon.commands.validate import MAX_ID
from daemon.faults import VapixFault, invalid_arg, not_authorized

MAX_BINDINGS = 100   # the spec's recommended bound on entities of one type


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


def event_ids(body) -> list[str]:
    """{"DTMFEventIds": [...]}: at most MAX_BINDINGS ids, each an id string as the spec bounds them."""
    ids = body.get("DTMFEventIds") if isinstance(body, dict) else None
    if not isinstance(ids, list):
        raise invalid_arg('The body must be {"DTMFEventIds": [<DTMFEventId>, ...]}')
    if len(ids) > MAX_BINDINGS:
        raise invalid_arg(f"At most {MAX_BINDINGS} DTMFEventIds")
    for ident in ids:
        if not isinstance(ident, str) or not 0 < len(ident) <= MAX_ID or not ident.isprintable():
            raise invalid_arg(f"DTMFEventIds must hold DTMF event ids (1..{MAX_ID} printable characters)")
    return ids


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
            body = jsonbody.read(req.bounded_stream, empty={})
            _reply(resp, self.control.request("door.bindings.set", {"DTMFEventIds": event_ids(body)}))
        except VapixFault as fault:
            _reply(resp, fault=fault)
