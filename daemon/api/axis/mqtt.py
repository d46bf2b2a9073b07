"""POST /axis-cgi/mqtt/client.cgi (Axis MQTT client API 1.0) and /axis-cgi/mqtt/event.cgi (MQTT
event bridge, "event-mqtt-bridge"). The API process validates and forwards over the control socket;
the supervisor stores the configuration and owns the broker connection (daemon/mqtt/).

    client.cgi  configureClient            admin    broker, credentials, client id, keep-alive,
                                                    connect/disconnect/last-will messages, TLS,
                                                    homeAssistant {discovery, discoveryPrefix,
                                                    lockCommandRole} (a doorstation extension)
                activateClient / deactivateClient  admin
                getClientStatus            viewer   data.config (no password) + data.status
    event.cgi   configureEventPublication  admin    topicPrefix, customTopicPrefix, appendEventTopic,
                                                    includeTopicNamespaces, includeSerialNumberInPayload,
                                                    eventFilterList [{topicFilter, qos, retain}]
                getEventPublicationConfig  viewer
"""
from __future__ import annotations

from daemon.api.axis.jsonapi import INTERNAL_ERROR, INVALID_PARAMETER, ApiError, JsonApiResource, JsonRequest
from daemon.faults import VapixFault
from daemon.mqtt import config as cfg

VERSIONS = ["1.0"]
PLACEHOLDER_SERIAL = "000000000000"      # the API only checks; the supervisor fills in defaults


def _forward(control, command: str, args: dict) -> dict:
    try:
        return control.request(command, args)
    except VapixFault as fault:
        code = INVALID_PARAMETER if fault.fault == "env:Sender" else INTERNAL_ERROR
        raise ApiError(code, str(fault.reason)[:300], 503 if fault.http_status == 503 else 200) from None


def _checked(validate, params) -> None:
    try:
        validate(params)
    except cfg.ConfigError as e:
        raise ApiError(INVALID_PARAMETER, str(e)) from None


def client_resource(control) -> JsonApiResource:
    def configure(request: JsonRequest, user) -> dict:
        _checked(lambda p: cfg.validate_client(p, PLACEHOLDER_SERIAL, {"password": "x"}), request.params)
        _forward(control, "mqtt.client.configure", {"params": request.params})
        return {}

    def activate(request: JsonRequest, user) -> dict:
        _forward(control, "mqtt.client.activate", {})
        return {}

    def deactivate(request: JsonRequest, user) -> dict:
        _forward(control, "mqtt.client.deactivate", {})
        return {}

    def status(request: JsonRequest, user) -> dict:
        return _forward(control, "mqtt.client.status", {})

    return JsonApiResource(VERSIONS, {"configureClient": ("admin", configure),
                                      "activateClient": ("admin", activate),
                                      "deactivateClient": ("admin", deactivate),
                                      "getClientStatus": ("viewer", status)})


def event_resource(control) -> JsonApiResource:
    def configure(request: JsonRequest, user) -> dict:
        _checked(cfg.validate_events, request.params)
        _forward(control, "mqtt.events.configure", {"params": request.params})
        return {}

    def get(request: JsonRequest, user) -> dict:
        return _forward(control, "mqtt.events.get", {})

    return JsonApiResource(VERSIONS, {"configureEventPublication": ("admin", configure),
                                      "getEventPublicationConfig": ("viewer", get)})
