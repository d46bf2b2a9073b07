"""Axis's JSON API style, shared by apidiscovery.cgi, basicdeviceinfo.cgi and portmanagement.cgi:

    request  {"apiVersion": "1.0", "context": "...", "method": "getPorts", "params": {...}}
    success  {"apiVersion": "1.0", "context": "...", "method": "getPorts", "data": {...}}
    error    {"apiVersion": "1.0", "context": "...", "method": "getPorts", "error": {"code": N, "message": "..."}}

Errors are answered with HTTP 200 except where noted, as Axis devices do; codes are those of
Axis's JSON APIs (one table for every API here, docs/axis.md lists them).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import falcon

from daemon.api import jsonbody
from daemon.commands import role_allows
from daemon.faults import VapixFault

MAX_BODY = 65536
MAX_CONTEXT = 256

# error codes (Axis JSON APIs)
INTERNAL_ERROR = 1100
VERSION_NOT_SUPPORTED = 2100
INVALID_JSON = 2101
METHOD_NOT_SUPPORTED = 2102
MISSING_PARAMETER = 2103
INVALID_PARAMETER = 2104
NOT_AUTHORIZED = 2105
HTTP_METHOD_NOT_SUPPORTED = 2106


class ApiError(Exception):
    def __init__(self, code: int, message: str, http_status: int = 200):
        super().__init__(message)
        self.code, self.message, self.http_status = code, message, http_status


@dataclass(frozen=True)
class JsonRequest:
    api_version: str | None
    context: str | None
    method: str
    params: Any


Handler = Callable[[JsonRequest, Any], Any]   # (request, user) -> data


def read_body(req: falcon.Request, limit: int = MAX_BODY) -> bytes:
    """The request body, at most `limit` bytes (a longer one is refused, not truncated)."""
    length = req.content_length
    if length is not None and length > limit:
        raise ApiError(INVALID_PARAMETER, f"The body is larger than {limit} bytes", 413)
    data = req.bounded_stream.read(limit + 1)
    if len(data) > limit:
        raise ApiError(INVALID_PARAMETER, f"The body is larger than {limit} bytes", 413)
    return data


def parse(body: bytes) -> JsonRequest:
    try:
        # the API's one strict reader: bounded depth, 64-bit integers, finite numbers, no duplicates
        doc = jsonbody.parse(body, max_body=MAX_BODY)
    except VapixFault as e:
        raise ApiError(INVALID_JSON, f"The body is not valid JSON ({e.reason[:120]})") from None
    if not isinstance(doc, dict):
        raise ApiError(INVALID_JSON, "The body must be a JSON object")
    version, context, method = doc.get("apiVersion"), doc.get("context"), doc.get("method")
    if version is not None and not isinstance(version, str):
        raise ApiError(INVALID_PARAMETER, "apiVersion must be a string")
    if context is not None and (not isinstance(context, str) or len(context) > MAX_CONTEXT):
        raise ApiError(INVALID_PARAMETER, f"context must be a string of at most {MAX_CONTEXT} characters")
    if not isinstance(method, str) or not method:
        raise ApiError(MISSING_PARAMETER, "method is missing")
    return JsonRequest(version, context, method, doc.get("params"))


def require_role(user, needed: str) -> None:
    role = getattr(user, "role", None)
    if role is None or not role_allows(role, needed):
        raise ApiError(NOT_AUTHORIZED, f"This needs the {needed} role", 403)


def major(version: str) -> str:
    return version.split(".", 1)[0]


class JsonApiResource:
    """One CGI of the JSON API style: POST only; methods are looked up in `methods`
    ({name: (minimum role, handler)}); `versions` lists the API versions served (newest last).
    getSupportedVersions is answered here for every API."""

    def __init__(self, versions: list[str], methods: dict[str, tuple[str, Handler]]):
        self.versions = versions
        self.methods = methods

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        parsed: JsonRequest | None = None
        try:
            parsed = parse(read_body(req))
            user = req.context.get("user")
            if parsed.method == "getSupportedVersions":
                require_role(user, "viewer")
                self._reply(resp, parsed, data={"apiVersions": list(self.versions)})
                return
            entry = self.methods.get(parsed.method)
            if entry is None:
                raise ApiError(METHOD_NOT_SUPPORTED, f"Method not supported: {parsed.method[:64]}")
            if parsed.api_version is None:
                raise ApiError(MISSING_PARAMETER, "apiVersion is missing")
            if not any(major(v) == major(parsed.api_version) for v in self.versions):
                raise ApiError(VERSION_NOT_SUPPORTED,
                               f"API version {parsed.api_version[:16]} is not supported")
            role, handler = entry
            require_role(user, role)
            self._reply(resp, parsed, data=handler(parsed, user))
        except ApiError as e:
            self._reply(resp, parsed, error=e)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._reply(resp, None, error=ApiError(HTTP_METHOD_NOT_SUPPORTED,
                                               "HTTP request type not supported. Only POST is supported", 405))

    def _reply(self, resp: falcon.Response, parsed: JsonRequest | None, data: Any = None,
               error: ApiError | None = None) -> None:
        version = self.versions[-1]
        if parsed is not None and parsed.api_version in self.versions:
            version = parsed.api_version
        doc: dict[str, Any] = {"apiVersion": version}
        if parsed is not None and parsed.context is not None:
            doc["context"] = parsed.context
        if parsed is not None:
            doc["method"] = parsed.method[:64]
        if error is not None:
            resp.status = error.http_status
            doc["error"] = {"code": error.code, "message": error.message}
        else:
            doc["data"] = data
        resp.content_type = falcon.MEDIA_JSON
        resp.text = json.dumps(doc)
