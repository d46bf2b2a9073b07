"""HTTP -> HTTPS redirect (`doorstation run --https ... --http-redirect`): every plain-HTTP request
is answered 308 with the same path and query on the HTTPS port, before authentication (credentials
sent over HTTP are not even looked at). 308 keeps the method and body (a POST stays a POST)."""
from __future__ import annotations

import json
import re
from urllib.parse import quote

import falcon

from daemon.faults import VapixFault

# A Host header we are willing to echo into Location: a DNS name, IPv4 or [IPv6], optional port.
_HOST_RE = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,253})(?::\d{1,5})?")


class HttpsRedirect:
    def __init__(self, https_port: int):
        self.https_port = https_port

    def location(self, req: falcon.Request) -> str | None:
        m = _HOST_RE.fullmatch(req.get_header("Host") or "")
        if m is None:
            return None
        port = "" if self.https_port == 443 else f":{self.https_port}"
        # The path as WSGI gives it (decoded) quoted back; the query string is raw already.
        target = quote(req.path, safe="/:@!$&'()*+,;=-._~")
        if req.query_string:
            target += "?" + quote(req.query_string, safe="/:@!$&'()*+,;=-._~?%")
        return f"https://{m.group('host')}{port}{target}"

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.scheme == "https":
            return
        location = self.location(req)
        resp.content_type = falcon.MEDIA_JSON
        if location is None:
            fault = VapixFault("env:Sender", "ter:InvalidArgs", "ter:MalformedRequest",
                               "This address serves HTTPS only; the Host header is missing or invalid")
            resp.status = 400
            resp.text = json.dumps(fault.to_dict())
        else:
            fault = VapixFault("env:Sender", "ter:NotSupported", "ter:UseHTTPS",
                               f"Use HTTPS: {location}", http_status=308)
            resp.status = 308
            resp.location = location
            resp.text = json.dumps(fault.to_dict())
        resp.complete = True
