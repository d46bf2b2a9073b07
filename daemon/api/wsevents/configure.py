"""The client side of Axis's event streaming over WebSocket, as pure logic: parse one
`events:configure` request into filters, build its answer, and tell which notifications a set of
filters lets through.

Each entry of `eventFilterList` is its own subscription (Axis: a notification that matches two
entries is sent twice). An entry has a `topicFilter` (daemon.axis_events.TopicFilter), a
`contentFilter`, or both. Content filters take the form Axis documents:
`boolean(//SimpleItem[@Name="port" and @Value="1"])`, several joined by `and`; the SimpleItems are
the notification's source, key and data items. Any other XPath is refused (2104), not guessed.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from daemon.api.axis import jsonapi
from daemon.axis_events import Notification, TopicFilter

METHOD = "events:configure"
VERSIONS = ["1.0"]
MAX_FILTERS = 32
MAX_CONTENT_FILTER = 512
MAX_CONTENT_TERMS = 16
REQUEST_TOO_LARGE = 2107       # Axis's general code; here: more filters than MAX_FILTERS

_TERM = re.compile(r"""\s*boolean\(\s*//SimpleItem\[\s*@Name\s*=\s*(?P<q1>["'])(?P<name>[^"']{1,64})(?P=q1)"""
                   r"""\s+and\s+@Value\s*=\s*(?P<q2>["'])(?P<value>[^"']{0,256})(?P=q2)\s*\]\s*\)\s*""")
_AND = re.compile(r"\s*and\s*")


class ConfigureError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message
        self.method = METHOD                 # echoed in the answer, as is the context
        self.context: str | None = None


class ContentFilter:
    """A conjunction of SimpleItem name/value tests; empty matches everything."""

    def __init__(self, expression: str = ""):
        if len(expression) > MAX_CONTENT_FILTER:
            raise ValueError(f"a content filter is at most {MAX_CONTENT_FILTER} characters")
        self.expression = expression
        self.terms: list[tuple[str, str]] = []
        pos, text = 0, expression.strip()
        while pos < len(text):
            if self.terms:
                joined = _AND.match(text, pos)
                if not joined or joined.end() == pos:
                    raise ValueError("content filter terms are joined by 'and'")
                pos = joined.end()
            term = _TERM.match(text, pos)
            if term is None:
                raise ValueError('a content filter is boolean(//SimpleItem[@Name="N" and @Value="V"]) '
                                 "joined by 'and'")
            self.terms.append((term["name"], term["value"]))
            if len(self.terms) > MAX_CONTENT_TERMS:
                raise ValueError(f"a content filter has at most {MAX_CONTENT_TERMS} terms")
            pos = term.end()

    def matches(self, n: Notification) -> bool:
        if not self.terms:
            return True
        items = set(n.source) | set(n.key) | set(n.data)
        return all(term in items for term in self.terms)


@dataclass(frozen=True)
class EventFilter:
    topic: TopicFilter
    content: ContentFilter

    def matches(self, n: Notification) -> bool:
        return self.topic.matches(n.topic) and self.content.matches(n)


@dataclass(frozen=True)
class Configure:
    api_version: str
    context: str | None
    filters: tuple[EventFilter, ...]


def copies(filters: tuple[EventFilter, ...], n: Notification) -> int:
    """How many times `n` is sent to a stream with these filters (once per matching entry)."""
    return sum(1 for f in filters if f.matches(n))


def parse(message: str) -> Configure:
    """One text message from the client -> Configure, or ConfigureError (with what to answer)."""
    try:
        request = jsonapi.parse(message.encode("utf-8"))
    except jsonapi.ApiError as e:
        raise ConfigureError(e.code, e.message) from None
    except UnicodeEncodeError:
        raise ConfigureError(jsonapi.INVALID_JSON, "The message is not valid UTF-8") from None
    context = request.context
    if request.method != METHOD:
        raise _with(ConfigureError(jsonapi.METHOD_NOT_SUPPORTED,
                                   f"Method not supported: {request.method[:64]}"), request.method, context)
    if request.api_version is None:
        raise _with(ConfigureError(jsonapi.MISSING_PARAMETER, "apiVersion is missing"), METHOD, context)
    if jsonapi.major(request.api_version) not in {jsonapi.major(v) for v in VERSIONS}:
        raise _with(ConfigureError(jsonapi.VERSION_NOT_SUPPORTED,
                                   f"API version {request.api_version[:16]} is not supported"), METHOD, context)
    try:
        filters = _filters(request.params)
    except ConfigureError as e:
        raise _with(e, METHOD, context) from None
    return Configure(request.api_version, context, filters)


def _with(error: ConfigureError, method: str, context: str | None) -> ConfigureError:
    error.method, error.context = method[:64], context
    return error


def _filters(params: Any) -> tuple[EventFilter, ...]:
    if not isinstance(params, dict):
        raise ConfigureError(jsonapi.MISSING_PARAMETER, "params is missing")
    entries = params.get("eventFilterList")
    if entries is None:
        raise ConfigureError(jsonapi.MISSING_PARAMETER, "params.eventFilterList is missing")
    if not isinstance(entries, list):
        raise ConfigureError(jsonapi.INVALID_PARAMETER, "params.eventFilterList must be a list")
    if len(entries) > MAX_FILTERS:
        raise ConfigureError(REQUEST_TOO_LARGE, f"At most {MAX_FILTERS} event filters")
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigureError(jsonapi.INVALID_PARAMETER, f"eventFilterList[{i}] must be an object")
        topic, content = entry.get("topicFilter"), entry.get("contentFilter")
        if topic is None and content is None:
            raise ConfigureError(jsonapi.MISSING_PARAMETER,
                                 f"eventFilterList[{i}] needs a topicFilter or a contentFilter")
        if not isinstance(topic, (str, type(None))) or not isinstance(content, (str, type(None))):
            raise ConfigureError(jsonapi.INVALID_PARAMETER, f"eventFilterList[{i}]: filters are strings")
        try:
            out.append(EventFilter(TopicFilter(topic or ""), ContentFilter(content or "")))
        except ValueError as e:
            raise ConfigureError(jsonapi.INVALID_PARAMETER, f"eventFilterList[{i}]: {e}") from None
    return tuple(out)


def answer(request: Configure) -> str:
    doc: dict[str, Any] = {"apiVersion": request.api_version}
    if request.context is not None:
        doc["context"] = request.context
    doc.update({"method": METHOD, "data": {}})
    return json.dumps(doc)


def error_answer(error: ConfigureError) -> str:
    doc: dict[str, Any] = {"apiVersion": VERSIONS[-1]}
    if error.context is not None:
        doc["context"] = error.context
    doc["method"] = error.method
    doc["error"] = {"code": error.code, "message": error.message}
    return json.dumps(doc)
