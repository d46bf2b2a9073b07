"""GET /api/events?after=<seq>&wait=<seconds>: long-poll on the supervisor's event log.

Answers at once when events newer than `after` are queued, otherwise after at most `wait` seconds
(capped at 30) with an empty list. `next` is the seq to pass as `after` on the following request.
"""
from __future__ import annotations

import json

import falcon

from daemon.faults import VapixFault, invalid_arg

MAX_WAIT = 30.0


class EventsResource:
    def __init__(self, control):
        self.control = control

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            after = int(req.get_param("after", default="0"))
            wait = float(req.get_param("wait", default="0"))
            limit = int(req.get_param("limit", default="100"))
        except ValueError:
            raise_fault(resp, invalid_arg("after and limit must be integers, wait a number of seconds"))
            return
        if after < 0 or not 0 <= wait <= MAX_WAIT or not 1 <= limit <= 1000:
            raise_fault(resp, invalid_arg(f"after >= 0, 0 <= wait <= {MAX_WAIT:g}, 1 <= limit <= 1000"))
            return
        try:
            data = self.control.request("events.wait", {"after": after, "wait": wait, "limit": limit},
                                        timeout=wait + 5.0)
        except VapixFault as fault:
            raise_fault(resp, fault)
            return
        resp.content_type = falcon.MEDIA_JSON
        resp.text = json.dumps(data)


def raise_fault(resp: falcon.Response, fault: VapixFault) -> None:
    resp.status = fault.http_status
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps(fault.to_dict())
