"""GET /api/events?after=<seq>&wait=<seconds>: long-poll on the supervisor's event log.

Answers at once when events newer than `after` are queued, otherwise after at most `wait` seconds
(capped at 30) with an empty list. `next` is the seq to pass as `after` on the following request.
`after` is 0..2**63-1, `wait` 0..30 (decimal, e.g. 0.5), `limit` 1..1000; anything else is a 400
invalid-argument fault.
"""
from __future__ import annotations

import json

import falcon

from daemon.api import jsonbody
from daemon.faults import VapixFault

MAX_WAIT = 30.0
MAX_LIMIT = 1000


class EventsResource:
    def __init__(self, control):
        self.control = control

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            # Strict digits within 64 bits: the supervisor keeps seqs in SQLite integers.
            after = jsonbody.query_uint(req.get_param("after"), "after", 0)
            wait = jsonbody.query_number(req.get_param("wait"), "wait", 0.0, 0.0, MAX_WAIT)
            limit = jsonbody.query_uint(req.get_param("limit"), "limit", 100, 1, MAX_LIMIT)
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
