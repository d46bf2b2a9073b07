"""POST /axis-cgi/apidiscovery.cgi (Axis API discovery service 1.0), viewer:

    getApiList             every API this station really implements: id, name, version, docLink
    getSupportedVersions   (answered by JsonApiResource for every API)

Only what works is listed. The RTSP event stream has no API id of its own.
"""
from __future__ import annotations

from daemon.api.axis.jsonapi import JsonApiResource, JsonRequest

VERSIONS = ["1.0"]
DOC = "https://developer.axis.com/vapix"

APIS = [
    {"id": "api-discovery", "version": "1.0", "name": "API Discovery Service"},
    {"id": "basic-device-info", "version": "1.1", "name": "Basic Device Information"},
    {"id": "io-port-management", "version": "1.0", "name": "IO Port Management"},
    {"id": "param-cgi", "version": "1.0", "name": "Legacy Parameter Handling"},
    {"id": "user-management", "version": "1.0", "name": "User Management"},   # pwdgrp.cgi
    # The VAPIX Call service at /vapix/call (param.cgi also says so: Properties.API.SIP.*).
    {"id": "sip", "version": "2.0", "name": "Call service"},
    # ws(s)://HOST/vapix/ws-data-stream?sources=events (daemon/api/wsevents/)
    {"id": "event-streaming-over-websocket", "version": "1.0", "name": "Event streaming over WebSocket"},
    {"id": "mqtt-client", "version": "1.0", "name": "MQTT Client API"},
    {"id": "event-mqtt-bridge", "version": "1.0", "name": "MQTT Event Bridge"},
]


def api_list() -> dict:
    return {"apiList": [{**api, "status": "released", "docLink": DOC} for api in APIS]}


def make_resource() -> JsonApiResource:
    def get_api_list(request: JsonRequest, user) -> dict:
        return api_list()

    return JsonApiResource(VERSIONS, {"getApiList": ("viewer", get_api_list)})
