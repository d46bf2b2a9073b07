"""The MQTT configuration as stored in the settings table, and its validation.

Two documents, each one setting (no schema change needed):

    mqtt_client   configureClient's parameters (validated, defaults filled in), plus `active`
    mqtt_events   configureEventPublication's parameters

Pure: the API validates with these functions before forwarding, the supervisor validates again
before it stores (the control socket has other clients). Errors are `ConfigError` with a message
that names the parameter.

Secrets: the broker password and the client's private key are stored (the supervisor needs them to
connect; the state directory and the database are 0700/0600) and never returned: `public_client()`
says only whether one is set.
"""
from __future__ import annotations

import re
from typing import Any

from daemon.axis_events import TopicFilter

CLIENT_KEY = "mqtt_client"
EVENTS_KEY = "mqtt_events"

PROTOCOLS = {"tcp": 1883, "ssl": 8883, "ws": 80, "wss": 443}
RETAIN_POLICIES = ("none", "property", "all")
LOCK_ROLES = ("operator", "admin", "none")
MAX_HOST = 253
MAX_TOPIC = 200
MAX_PAYLOAD = 1024
MAX_USERNAME = 128
MAX_PASSWORD = 256
MAX_CLIENT_ID = 64
MAX_PEM = 16384
MAX_FILTERS = 32

_HOST_RE = re.compile(r"^[A-Za-z0-9._:\-\[\]]+$")
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9._\-]+$")


class ConfigError(ValueError):
    """A parameter is missing or invalid (the message names it)."""


def _bool(params: dict, key: str, default: bool) -> bool:
    value = params.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false")
    return value


def _int(params: dict, key: str, default: int, low: int, high: int) -> int:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{key} must be an integer from {low} to {high}")
    return value


def _text(params: dict, key: str, default: str, limit: int, pattern: re.Pattern | None = None,
          allow_empty: bool = True) -> str:
    value = params.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, str) or len(value) > limit or not value.isprintable() \
            or (not allow_empty and not value) or (value and pattern is not None and not pattern.match(value)):
        raise ConfigError(f"{key} must be a string of at most {limit} allowed characters")
    return value


def valid_topic(topic: Any, key: str, wildcards: bool = False) -> str:
    """A topic we publish to: 1..MAX_TOPIC printable characters, no NUL, no + or # (those are
    subscription wildcards), not starting with $ (broker-internal topics)."""
    if not isinstance(topic, str) or not 1 <= len(topic) <= MAX_TOPIC or not topic.isprintable() \
            or topic.startswith("$") or (not wildcards and ("+" in topic or "#" in topic)):
        raise ConfigError(f"{key} must be an MQTT topic of 1 to {MAX_TOPIC} printable characters "
                          "without + or # and not starting with $")
    return topic


def default_prefix(serial: str) -> str:
    return f"axis/{serial}"


def _message(params: dict, key: str) -> dict:
    """lastWillTestament / connectMessage / disconnectMessage: {useDefault, topic, message, retain, qos}."""
    raw = params.get(key, {"useDefault": True})
    if not isinstance(raw, dict):
        raise ConfigError(f"{key} must be an object")
    use_default = _bool(raw, "useDefault", True)
    if use_default:
        return {"useDefault": True}
    out: dict[str, Any] = {"useDefault": False}
    if "topic" in raw and raw["topic"] not in (None, ""):
        out["topic"] = valid_topic(raw["topic"], f"{key}.topic")
        out["message"] = _text(raw, "message", "", MAX_PAYLOAD)
        out["retain"] = _bool(raw, "retain", True)
        out["qos"] = _int(raw, "qos", 1, 0, 2)
    return out     # useDefault false without a topic: no such message


def _pem(value: Any, key: str, marker: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_PEM or marker not in value:
        raise ConfigError(f"{key} must be PEM text ({marker}...) of at most {MAX_PEM} characters")
    return value


def _ssl(params: dict, stored: dict) -> dict:
    raw = params.get("ssl", {})
    if not isinstance(raw, dict):
        raise ConfigError("ssl must be an object")
    old = stored.get("ssl", {}) if isinstance(stored.get("ssl"), dict) else {}
    out: dict[str, Any] = {"validateServerCert": _bool(raw, "validateServerCert", True)}
    # Axis names certificates of its certificate store by id (CACertID, clientCertID); this
    # station has no such store, so the PEM text comes in the request (docs/mqtt.md).
    if raw.get("caCertificate"):
        out["caCertificate"] = _pem(raw["caCertificate"], "ssl.caCertificate", "-----BEGIN CERTIFICATE-----")
    elif raw.get("keepExistingCertificates") and old.get("caCertificate"):
        out["caCertificate"] = old["caCertificate"]
    if raw.get("clientCertificate") or raw.get("clientKey"):
        out["clientCertificate"] = _pem(raw.get("clientCertificate"), "ssl.clientCertificate",
                                        "-----BEGIN CERTIFICATE-----")
        out["clientKey"] = _pem(raw.get("clientKey"), "ssl.clientKey", "PRIVATE KEY-----")
    elif raw.get("keepExistingCertificates") and old.get("clientCertificate"):
        out["clientCertificate"], out["clientKey"] = old["clientCertificate"], old.get("clientKey", "")
    return out


def _home_assistant(params: dict) -> dict:
    raw = params.get("homeAssistant", {})
    if not isinstance(raw, dict):
        raise ConfigError("homeAssistant must be an object")
    role = raw.get("lockCommandRole", "operator")
    if role not in LOCK_ROLES:
        raise ConfigError(f"homeAssistant.lockCommandRole must be one of {', '.join(LOCK_ROLES)}")
    prefix = valid_topic(raw.get("discoveryPrefix", "homeassistant"), "homeAssistant.discoveryPrefix")
    return {"discovery": _bool(raw, "discovery", True), "discoveryPrefix": prefix, "lockCommandRole": role}


def validate_client(params: Any, serial: str, stored: dict | None = None) -> dict:
    """configureClient's params -> the document to store (every field present). `stored` is the
    current document (for keepExistingPassword / keepExistingCertificates)."""
    if not isinstance(params, dict):
        raise ConfigError("params must be an object")
    stored = stored or {}
    server = params.get("server")
    if not isinstance(server, dict):
        raise ConfigError("server is required: {host, port, protocol}")
    protocol = server.get("protocol", "tcp")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"server.protocol must be one of {', '.join(PROTOCOLS)}")
    host = _text(server, "host", "", MAX_HOST, _HOST_RE, allow_empty=False)
    out_server: dict[str, Any] = {"host": host, "port": _int(server, "port", PROTOCOLS[protocol], 1, 65535),
                                  "protocol": protocol}
    if protocol in ("ws", "wss"):
        out_server["basepath"] = _text(server, "basepath", "/mqtt", MAX_TOPIC) or "/mqtt"
    password = params.get("password")
    if params.get("keepExistingPassword") is True and password in (None, ""):
        password = stored.get("password", "")
    password = _text({"password": password}, "password", "", MAX_PASSWORD)
    doc = {
        "server": out_server,
        "username": _text(params, "username", "", MAX_USERNAME),
        "password": password,
        "clientId": _text(params, "clientId", "", MAX_CLIENT_ID, _CLIENT_ID_RE) or f"doorstation-{serial}",
        "keepAliveInterval": _int(params, "keepAliveInterval", 60, 5, 3600),
        "connectTimeout": _int(params, "connectTimeout", 60, 1, 300),
        "cleanSession": _bool(params, "cleanSession", True),
        "autoReconnect": _bool(params, "autoReconnect", True),
        "activateOnReboot": _bool(params, "activateOnReboot", True),
        "deviceTopicPrefix": valid_topic(params.get("deviceTopicPrefix") or default_prefix(serial),
                                         "deviceTopicPrefix").rstrip("/") or default_prefix(serial),
        "lastWillTestament": _message(params, "lastWillTestament"),
        "connectMessage": _message(params, "connectMessage"),
        "disconnectMessage": _message(params, "disconnectMessage"),
        "ssl": _ssl(params, stored),
        "homeAssistant": _home_assistant(params),
        "active": bool(stored.get("active", False)),
    }
    return doc


def public_client(doc: dict) -> dict:
    """What getClientStatus shows: the stored document without secrets."""
    out = {k: v for k, v in doc.items() if k not in ("password", "ssl", "active")}
    ssl = doc.get("ssl") or {}
    out["ssl"] = {"validateServerCert": bool(ssl.get("validateServerCert", True)),
                  "caCertificateSet": bool(ssl.get("caCertificate")),
                  "clientCertificateSet": bool(ssl.get("clientCertificate"))}
    out["passwordSet"] = bool(doc.get("password"))
    return out


def availability_topic(serial: str) -> str:
    return f"doorstation/{re.sub(r'[^a-z0-9_-]', '_', serial.lower())}/availability"


def connection_messages(doc: dict, serial: str) -> dict[str, dict | None]:
    """The connect, disconnect and last-will messages in force ({topic, message, retain, qos} or
    None). Defaults: retained "online" / "offline" on doorstation/<serial>/availability, Home
    Assistant's availability topic. Not under deviceTopicPrefix: Home Assistant's Axis integration
    stops its RTSP event stream at the first message it sees there (docs/mqtt.md)."""
    topic = availability_topic(serial)
    defaults = {"connectMessage": "online", "disconnectMessage": "offline", "lastWillTestament": "offline"}
    out: dict[str, dict | None] = {}
    for key, payload in defaults.items():
        msg = doc.get(key) or {"useDefault": True}
        if msg.get("useDefault", True):
            out[key] = {"topic": topic, "message": payload, "retain": True, "qos": 1}
        elif msg.get("topic"):
            out[key] = {k: msg[k] for k in ("topic", "message", "retain", "qos")}
        else:
            out[key] = None
    return out


# ----------------------------------------------------------------------------- event publication
def default_events() -> dict:
    return {"topicPrefix": "default", "customTopicPrefix": "", "appendEventTopic": True,
            "includeTopicNamespaces": True, "includeSerialNumberInPayload": False, "eventFilterList": []}


def topic_filter(expression: str) -> TopicFilter:
    """Axis's `//.` alone means every topic (TopicFilter's empty filter)."""
    return TopicFilter("" if expression.strip() in ("//.", "") else expression)


def validate_events(params: Any, stored: dict | None = None) -> dict:
    """configureEventPublication's params -> the stored document. Keys left out keep their value."""
    if not isinstance(params, dict):
        raise ConfigError("params must be an object")
    doc = {**default_events(), **(stored or {})}
    prefix = params.get("topicPrefix", doc["topicPrefix"])
    if prefix not in ("default", "custom"):
        raise ConfigError("topicPrefix must be default or custom")
    doc["topicPrefix"] = prefix
    if "customTopicPrefix" in params:
        custom = params["customTopicPrefix"]
        doc["customTopicPrefix"] = "" if custom in (None, "") else valid_topic(custom, "customTopicPrefix").rstrip("/")
    if prefix == "custom" and not doc["customTopicPrefix"]:
        raise ConfigError("topicPrefix custom needs customTopicPrefix")
    for key in ("appendEventTopic", "includeTopicNamespaces", "includeSerialNumberInPayload"):
        doc[key] = _bool(params, key, doc[key])
    if "eventFilterList" in params:
        filters = params["eventFilterList"]
        if not isinstance(filters, list) or len(filters) > MAX_FILTERS:
            raise ConfigError(f"eventFilterList must be a list of at most {MAX_FILTERS} filters")
        out = []
        for i, f in enumerate(filters):
            if not isinstance(f, dict) or not isinstance(f.get("topicFilter"), str):
                raise ConfigError(f"eventFilterList[{i}] needs topicFilter")
            try:
                topic_filter(f["topicFilter"])
            except ValueError as e:
                raise ConfigError(f"eventFilterList[{i}].topicFilter: {e}") from None
            retain = f.get("retain", "none")
            if retain not in RETAIN_POLICIES:
                raise ConfigError(f"eventFilterList[{i}].retain must be none, property or all")
            out.append({"topicFilter": f["topicFilter"], "qos": _int(f, "qos", 0, 0, 2), "retain": retain})
        doc["eventFilterList"] = out
    return doc
