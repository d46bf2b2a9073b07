"""Request envelopes: every way a VAPIX client phrases a Call service request, and the answer in kind.

Styles accepted (the decoded Request remembers which, so the reply uses the same one):

  vapix    `{"axcall:Command": {...}}` (or without the `axcall:` prefix) POSTed to /vapix/call, or
           the command in the path (`/vapix/call/Command`, `?action=axcall:Command`) with the
           parameters as a JSON object body. Answer: the bare response JSON; a fault is the spec's
           `{"Fault", "FaultCode", "FaultSubCode", "FaultReason", "FaultMsg"}` object.
  simple   `format=simple&action=axcall:Command&Key_Sub=value` as a GET query, a form body, or both
           (POST with the query in the URL and an empty body). Answer: text/plain key=value lines.
           Parameters given as key-values (form body or query without format=simple) are decoded the
           same way and flagged `lenient` (scalars are strings); only `format=simple` changes the
           answer's format.
  google   Axis's newer JSON CGIs: `{"apiVersion": "1.0", "context": ..., "method": "Command",
           "params": {...}}` -> `{"apiVersion", "context" (echoed when given), "method", "data"}`
           or `"error": {"code", "message"}` with Axis's common JSON error codes:
               2101 invalid JSON          the body is not JSON / not UTF-8 / duplicate keys
               2100 API version           apiVersion is not 1.x with x == 0 (we implement 1.0)
               2102 method not supported  unknown command; also ter:ActionNotSupported faults
               2103 required parameter    `method` missing; ter:InvalidArgs faults without subcode
                                          (faults.missing_arg)
               2104 invalid parameter     params not an object, bad method type; ter:InvalidArgVal
                                          faults including ter:NotFound (the message says what
                                          was not found) and other malformed requests
               1100 internal error        env:Receiver faults (action failed, service unavailable)
                                          and not-authorized (HTTP 403 tells them apart)
  jsonrpc  JSON-RPC 2.0 `{"jsonrpc": "2.0", "method", "params", "id"}` -> `{"jsonrpc", "result",
           "id"}` or `"error": {"code", "message", "data": <VAPIX fault object>}` with
               -32700 parse error, -32600 invalid request (also every other malformed request;
               batches are not supported), -32601 method not found (env:Sender
               ter:ActionNotSupported), -32602 invalid params (env:Sender ter:InvalidArgs /
               ter:InvalidArgVal, incl. not found), -32000 server error (env:Receiver faults,
               supervisor unavailable, not authorized). Positional params are not supported
               (-32602). A notification (no "id") is executed and answered with an empty body:
               204 on success, the fault's HTTP status otherwise.

HTTP status is the same in every style: 200 on success, the fault's `http_status` otherwise
(400 sender and receiver faults as the spec's example, 403 not authorized, 413 body too large,
503 supervisor down).

Decode errors raise EnvelopeError carrying the fault and the best style that could be determined
(e.g. unparseable JSON that mentions "jsonrpc" is answered as a JSON-RPC parse error).
"""
from __future__ import annotations

import codecs as _codecs
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from daemon.api import codec, jsonbody
from daemon.faults import VapixFault, malformed, unknown_action

MAX_BODY = jsonbody.MAX_BODY
MAX_JSON_DEPTH = jsonbody.MAX_DEPTH
PREFIX = "axcall:"
API_VERSION = "1.0"

VAPIX, SIMPLE, GOOGLE, JSONRPC = "vapix", "simple", "google", "jsonrpc"

_ACTION = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}\Z")
_API_VERSION = re.compile(r"1(\.0+)?\Z")
_MISSING = object()

# Axis common JSON error codes
GOOGLE_INTERNAL, GOOGLE_VERSION, GOOGLE_JSON, GOOGLE_METHOD, GOOGLE_MISSING, GOOGLE_INVALID = (
    1100, 2100, 2101, 2102, 2103, 2104)
RPC_PARSE, RPC_INVALID_REQUEST, RPC_METHOD, RPC_PARAMS, RPC_SERVER = (
    -32700, -32600, -32601, -32602, -32000)


@dataclass(frozen=True)
class Style:
    kind: str = VAPIX
    api_version: str = API_VERSION        # google
    context: Any = _MISSING               # google: echoed only when the request had one
    method: str | None = None             # google: echoed as sent
    rpc_id: Any = None                    # jsonrpc
    notification: bool = False            # jsonrpc request without "id"


@dataclass(frozen=True)
class Request:
    action: str          # without the axcall: prefix
    params: dict
    lenient: bool        # True when the parameters came as key-values (scalars are strings)
    style: Style = field(default_factory=Style)


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str | None  # None with an empty body (JSON-RPC notifications)
    body: bytes


class EnvelopeError(Exception):
    """The request could not be decoded; answer `fault` in `style` (`code`: style-specific code)."""

    def __init__(self, fault: VapixFault, style: Style, code: int | None = None):
        super().__init__(fault.reason)
        self.fault = fault
        self.style = style
        self.code = code


# -------------------------------------------------------------------------------------- decoding

def action_name(name: Any) -> str:
    """`axcall:GetSIPAccounts` or `GetSIPAccounts` -> `GetSIPAccounts`; anything else is unknown."""
    if not isinstance(name, str):
        raise malformed("The command name must be a string")
    bare = name[len(PREFIX):] if name.startswith(PREFIX) else name
    if not _ACTION.match(bare):
        raise unknown_action(name)
    return bare


def decode(*, path_command: str | None, query: str | bytes, content_type: str | None,
           body: bytes) -> Request:
    """Decode one HTTP request into a Request, or raise EnvelopeError."""
    url_style = Style(SIMPLE) if _mentions_simple(query) else Style(VAPIX)
    try:
        qpairs = codec.parse_query(query)
        qformat, qaction, qparams = _split_control(qpairs)
        url_style = Style(SIMPLE) if qformat == "simple" else Style(VAPIX)
        url_action = _agree(action_name(path_command) if path_command else None,
                            action_name(qaction) if qaction is not None else None)
        if len(body) > MAX_BODY:
            raise jsonbody.too_large(MAX_BODY)
    except VapixFault as fault:
        raise EnvelopeError(fault, url_style) from None

    if _is_json(content_type, body):
        return _decode_json(body, url_action, qparams, url_style)
    try:
        return _decode_pairs(body, url_action, qformat, qparams)
    except VapixFault as fault:
        raise EnvelopeError(fault, url_style) from None


def _mentions_simple(query: str | bytes) -> bool:
    """Best guess at the answer format when the query itself cannot be parsed."""
    return b"format=simple" in codec.to_bytes(query)


def _split_control(pairs: list[tuple[str, str]]) -> tuple[str | None, str | None, list]:
    fmt = action = None
    params = []
    for key, value in pairs:
        if key == "format":
            value = value.strip().lower()
            if value not in ("simple", "json"):
                raise malformed(f"Unknown format: {value[:40]}")
            fmt = _agree(fmt, value, "format")
        elif key == "action":
            action = _agree(action, value.strip(), "action")
        else:
            params.append((key, value))
    return fmt, action, params


def _agree(first, second, what: str = "action"):
    """Two sources for the same thing (path and query, query and body) must not contradict."""
    if first is not None and second is not None and first != second:
        raise malformed(f"Conflicting {what}: {str(first)[:80]} and {str(second)[:80]}")
    return first if first is not None else second


def _is_json(content_type: str | None, body: bytes) -> bool:
    # curl -d sends JSON as application/x-www-form-urlencoded (the spec's own examples do), so the
    # body's first character decides, and an explicit JSON content type too.
    head = body.lstrip(b" \t\r\n")
    if head.startswith(_codecs.BOM_UTF8):
        head = head[3:].lstrip(b" \t\r\n")
    if not head:  # no body: parameters, if any, are in the query
        return False
    if content_type and "json" in content_type.split(";")[0].lower():
        return True
    return head[:1] in (b"{", b"[")


def _decode_pairs(body: bytes, url_action: str | None, qformat: str | None,
                  qparams: list) -> Request:
    bformat, baction, bparams = _split_control(codec.parse_query(body.strip()) if body.strip() else [])
    fmt = _agree(qformat, bformat, "format")
    style = Style(SIMPLE) if fmt == "simple" else Style(VAPIX)
    try:
        action = _agree(url_action, action_name(baction) if baction is not None else None)
        if action is None:
            raise malformed("No action given (use action=axcall:<Command>)")
        return Request(action, codec.decode(qparams + bparams), True, style)
    except VapixFault as fault:
        raise EnvelopeError(fault, style) from None


# JSON ------------------------------------------------------------------------------------------

def _sniff_json_style(body: bytes, fallback: Style) -> Style:
    if b'"jsonrpc"' in body:
        return Style(JSONRPC)
    if b'"apiVersion"' in body or b'"method"' in body:
        return Style(GOOGLE)
    return fallback


def parse_json(body: bytes) -> Any:
    """Strict, bounded JSON (daemon.api.jsonbody: UTF-8, no NaN/Infinity, 64-bit integers, no
    duplicate keys, bounded depth)."""
    return jsonbody.parse(body, max_body=MAX_BODY, max_depth=MAX_JSON_DEPTH)


def _decode_json(body: bytes, url_action: str | None, qparams: list, url_style: Style) -> Request:
    try:
        obj = parse_json(body)
    except VapixFault as fault:
        style = _sniff_json_style(body, url_style)
        code = {JSONRPC: RPC_PARSE, GOOGLE: GOOGLE_JSON}.get(style.kind)
        raise EnvelopeError(fault, style, code) from None

    if isinstance(obj, list):
        if any(isinstance(item, dict) and "jsonrpc" in item for item in obj):
            raise EnvelopeError(malformed("JSON-RPC batches are not supported"), Style(JSONRPC),
                                RPC_INVALID_REQUEST)
        raise EnvelopeError(malformed("The JSON body must be an object"), url_style)
    if not isinstance(obj, dict):
        raise EnvelopeError(malformed("The JSON body must be an object"), url_style)
    if "jsonrpc" in obj:
        return _decode_jsonrpc(obj, url_action)
    if "method" in obj or "apiVersion" in obj:
        return _decode_google(obj, url_action)

    try:
        if qparams:
            raise malformed("Parameters given both in the query and in the JSON body")
        if url_action is not None:
            return Request(url_action, _unwrap(obj, url_action), False, url_style)
        if len(obj) != 1:
            raise malformed("The JSON body must hold exactly one command, e.g. "
                            '{"axcall:GetSIPConfiguration": {}}' if obj else "No command given")
        (key, params), = obj.items()
        action = action_name(key)
        return Request(action, _params_object(params, key), False, url_style)
    except VapixFault as fault:
        raise EnvelopeError(fault, url_style) from None


def _unwrap(obj: dict, action: str) -> dict:
    """With the command in the URL the body is the parameters, or the usual one-command envelope."""
    if len(obj) == 1:
        (key, value), = obj.items()
        if key in (action, PREFIX + action):
            return _params_object(value, key)
    return obj


def _params_object(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise malformed(f"The parameters of {where[:80]} must be a JSON object")
    return value


def _decode_google(obj: dict, url_action: str | None) -> Request:
    style = Style(GOOGLE)
    if "context" in obj:
        style = replace(style, context=obj["context"])
    version = obj.get("apiVersion", API_VERSION)
    if not isinstance(version, str) or not _API_VERSION.match(version):
        raise EnvelopeError(malformed(f"API version not supported: {str(version)[:40]} "
                                      f"(supported: {API_VERSION})"), style, GOOGLE_VERSION)
    if "method" not in obj:
        raise EnvelopeError(malformed("Required parameter missing: method"), style, GOOGLE_MISSING)
    method = obj["method"]
    if not isinstance(method, str):
        raise EnvelopeError(malformed("method must be a string"), style, GOOGLE_INVALID)
    style = replace(style, method=method)
    try:
        action = action_name(method)
    except VapixFault as fault:
        raise EnvelopeError(fault, style) from None
    try:
        action = _agree(url_action, action)
        params = _params_object(obj.get("params"), "params")
    except VapixFault as fault:
        raise EnvelopeError(fault, style, GOOGLE_INVALID) from None
    return Request(action, params, False, style)


def _decode_jsonrpc(obj: dict, url_action: str | None) -> Request:
    rpc_id = obj.get("id")
    if rpc_id is not None and (isinstance(rpc_id, (bool, dict, list))):
        raise EnvelopeError(malformed("Invalid id"), Style(JSONRPC), RPC_INVALID_REQUEST)
    # An invalid request is answered even without an id (JSON-RPC 2.0, section 5).
    style = Style(JSONRPC, rpc_id=rpc_id)
    if obj.get("jsonrpc") != "2.0":
        raise EnvelopeError(malformed('Only "jsonrpc": "2.0" is supported'), style, RPC_INVALID_REQUEST)
    if not isinstance(obj.get("method"), str):
        raise EnvelopeError(malformed("method must be a string"), style, RPC_INVALID_REQUEST)
    style = replace(style, notification="id" not in obj)
    try:
        action = action_name(obj["method"])
    except VapixFault as fault:
        raise EnvelopeError(fault, style, RPC_METHOD) from None
    try:
        action = _agree(url_action, action)
    except VapixFault as fault:
        raise EnvelopeError(fault, style, RPC_INVALID_REQUEST) from None
    params = obj.get("params")
    if params == []:
        params = None
    try:
        return Request(action, _params_object(params, "params"), False, style)
    except VapixFault as fault:
        raise EnvelopeError(fault, style, RPC_PARAMS) from None


# -------------------------------------------------------------------------------------- encoding

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"


def _json_bytes(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from somewhere: escape rather than fail
        return json.dumps(value).encode("ascii")


def _google_head(style: Style) -> dict:
    head: dict[str, Any] = {"apiVersion": style.api_version}
    if style.context is not _MISSING:
        head["context"] = style.context
    if style.method is not None:
        head["method"] = style.method
    return head


def encode_result(style: Style, data: dict) -> Reply:
    if style.kind == SIMPLE:
        return Reply(200, TEXT_TYPE, codec.encode(data).encode("utf-8"))
    if style.kind == GOOGLE:
        return Reply(200, JSON_TYPE, _json_bytes({**_google_head(style), "data": data}))
    if style.kind == JSONRPC:
        if style.notification:
            return Reply(204, None, b"")
        return Reply(200, JSON_TYPE, _json_bytes({"jsonrpc": "2.0", "result": data, "id": style.rpc_id}))
    return Reply(200, JSON_TYPE, _json_bytes(data))


def google_code(fault: VapixFault) -> int:
    if fault.code == "ter:ActionNotSupported":
        return GOOGLE_METHOD
    if fault.fault == "env:Sender" and fault.code == "ter:InvalidArgs" and fault.subcode is None:
        return GOOGLE_MISSING
    if fault.fault == "env:Sender" and fault.code in ("ter:InvalidArgs", "ter:InvalidArgVal"):
        return GOOGLE_INVALID
    return GOOGLE_INTERNAL


def rpc_code(fault: VapixFault) -> int:
    if fault.subcode == "ter:MalformedRequest":
        return RPC_INVALID_REQUEST
    if fault.fault == "env:Sender" and fault.code == "ter:ActionNotSupported":
        return RPC_METHOD
    if fault.fault == "env:Sender" and fault.code in ("ter:InvalidArgs", "ter:InvalidArgVal"):
        return RPC_PARAMS
    return RPC_SERVER


def _message(fault: VapixFault) -> str:
    return f"{fault.reason}: {fault.msg}" if fault.msg else fault.reason


def encode_fault(style: Style, fault: VapixFault, code: int | None = None) -> Reply:
    status = fault.http_status
    if style.kind == SIMPLE:
        return Reply(status, TEXT_TYPE, codec.encode_fault(fault).encode("utf-8"))
    if style.kind == GOOGLE:
        error = {"code": code if code is not None else google_code(fault), "message": _message(fault)}
        return Reply(status, JSON_TYPE, _json_bytes({**_google_head(style), "error": error}))
    if style.kind == JSONRPC:
        if style.notification:
            return Reply(status, None, b"")
        error = {"code": code if code is not None else rpc_code(fault), "message": _message(fault),
                 "data": fault.to_dict()}
        return Reply(status, JSON_TYPE, _json_bytes({"jsonrpc": "2.0", "error": error, "id": style.rpc_id}))
    return Reply(status, JSON_TYPE, _json_bytes(fault.to_dict()))
