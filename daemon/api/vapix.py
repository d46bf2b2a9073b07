"""The /vapix/call resource: decode the envelope -> check the role -> forward to the supervisor -> encode.

Everything that goes wrong comes back as a VAPIX fault in the request's own style; HTTP 500 is kept
for bugs (an exception that is not a VapixFault), and those are logged with their traceback.
"""
from __future__ import annotations

import logging
from typing import Callable, Protocol

import falcon

from daemon import faults
from daemon.api import codec, envelopes
from daemon.api.answers import Answer, StoredAnswers, request_key
from daemon.api.limits import BodyTimeout, request_timeout
from daemon.faults import VapixFault

log = logging.getLogger(__name__)


class Control(Protocol):
    def request(self, command: str, args: dict) -> dict:
        """Run a control command in the supervisor; raise VapixFault (unavailable() -> 503)."""


def default_command_role(action: str) -> str:
    """Minimum role for axcall:<action> from the static table (no command module is imported);
    raises faults.unknown_action for commands we do not have."""
    from daemon.commands.roles import command_role
    return command_role(action)


def default_role_allows(user_role: str, needed: str) -> bool:
    from daemon.commands.roles import role_allows
    return role_allows(user_role, needed)


def internal_error(reason: str = "Internal error") -> VapixFault:
    return VapixFault("env:Receiver", "ter:Action", "ter:Failure", reason, http_status=500)


class VapixCallResource:
    """GET and POST on /vapix/call and /vapix/call/{command}."""

    def __init__(self, control: Control,
                 command_role: Callable[[str], str] = default_command_role,
                 role_allows: Callable[[str, str], bool] = default_role_allows,
                 answers: StoredAnswers | None = None,
                 answered_again: frozenset[str] = frozenset()):
        """answers: reads answered again until what they read changes (None: every request goes
        to the supervisor); answered_again: the actions that may be kept."""
        self._control = control
        self._command_role = command_role
        self._role_allows = role_allows
        self._answers = answers
        self._answered_again = answered_again

    def on_get(self, req: falcon.Request, resp: falcon.Response, command: str | None = None) -> None:
        try:
            body = req.bounded_stream.read(envelopes.MAX_BODY + 1)
            key = request_key(command, req.query_string, req.content_type, body)
            kept = self._answers.find(key) if self._answers is not None else None
            if kept is not None:
                _write(resp, self._answer_again(req, kept))
                return
            request = envelopes.decode(path_command=command, query=req.query_string,
                                       content_type=req.content_type, body=body)
        except envelopes.EnvelopeError as e:
            reply = envelopes.encode_fault(e.style, e.fault, e.code)
        else:
            reply = self._run(req, request, key)
        _write(resp, reply)

    on_post = on_get

    def _answer_again(self, req: falcon.Request, kept: Answer) -> envelopes.Reply:
        try:
            self._authorize(req, kept.action)      # whoever asks now, not who asked first
        except VapixFault as fault:
            return envelopes.encode_fault(kept.style, fault)
        return kept.reply

    def _run(self, req: falcon.Request, request: envelopes.Request, key: tuple) -> envelopes.Reply:
        try:
            role = self._authorize(req, request.action)
            stamp = (self._answers.stamp()
                     if self._answers is not None and request.action in self._answered_again else None)
            # The role goes along: the supervisor checks it again for any other socket client.
            result = self._control.request("vapix", {"action": request.action,
                                                     "params": request.params,
                                                     "lenient": request.lenient,
                                                     "role": role})
            if not isinstance(result, dict):
                raise faults.action_failed("The door station service gave a malformed answer")
            reply = envelopes.encode_result(request.style, result)
            if stamp is not None and self._answers is not None:
                self._answers.keep(key, stamp, Answer(request.action, request.style, reply))
            return reply
        except VapixFault as fault:
            return envelopes.encode_fault(request.style, fault)
        except Exception:
            log.exception("axcall:%s failed", request.action)
            return envelopes.encode_fault(request.style, internal_error(
                f"Internal error while running axcall:{request.action}"))

    def _authorize(self, req: falcon.Request, action: str) -> str:
        """The user's role if it may run axcall:<action>; else a not_authorized fault."""
        needed = self._command_role(action)  # unknown actions fault here, before the role check
        user = req.context.get("user")
        role = getattr(user, "role", None)
        if role is None:
            # The auth middleware runs first and always sets a user; a missing one is a wiring bug,
            # and the safe answer is "no".
            raise faults.not_authorized("Not authenticated")
        try:
            allowed = self._role_allows(role, needed)
        except ValueError:  # a role name we do not know
            allowed = False
        if not allowed:
            raise faults.not_authorized(f"axcall:{action} needs the {needed} role")
        return role


# ---------------------------------------------------------------------------------- error handlers

def _style_for(req: falcon.Request) -> envelopes.Style:
    try:
        pairs = codec.parse_query(req.query_string or "")
    except VapixFault:
        return envelopes.Style(envelopes.VAPIX)
    simple = any(k == "format" and v.strip().lower() == "simple" for k, v in pairs)
    return envelopes.Style(envelopes.SIMPLE if simple else envelopes.VAPIX)


def _write(resp: falcon.Response, reply: envelopes.Reply) -> None:
    resp.status = reply.status
    if reply.content_type is None:
        resp.content_type = None  # no body, no type (a 204 must not carry one)
    else:
        resp.content_type = reply.content_type
    resp.data = reply.body


def _fault_for_http_error(ex: falcon.HTTPError) -> VapixFault:
    status = ex.status_code
    reason = ex.title or "Error"
    if ex.description:
        reason = f"{reason}: {ex.description}"
    if status in (401, 403):
        return VapixFault("env:Sender", "ter:NotAuthorized", "ter:OperationProhibited", reason,
                          http_status=status)
    if status in (404, 405):
        return VapixFault("env:Sender", "ter:ActionNotSupported", "ter:NotSupported", reason,
                          http_status=status)
    if status < 500:
        return VapixFault("env:Sender", "ter:InvalidArgs", "ter:MalformedRequest", reason,
                          http_status=status)
    return VapixFault("env:Receiver", "ter:Action", "ter:Failure", reason, http_status=status)


def handle_http_error(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params) -> None:
    """Falcon's own errors (404 other paths, 405, 401 from the auth middleware) as VAPIX faults."""
    _write(resp, envelopes.encode_fault(_style_for(req), _fault_for_http_error(ex)))
    if ex.headers:  # WWW-Authenticate on 401, Allow on 405
        resp.set_headers(ex.headers)


def handle_fault(req: falcon.Request, resp: falcon.Response, ex: VapixFault, params) -> None:
    """A VapixFault raised outside the resource (e.g. by a middleware)."""
    _write(resp, envelopes.encode_fault(_style_for(req), ex))


def handle_unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params) -> None:
    """Last resort: a bug. Log it, answer env:Receiver/ter:Action with HTTP 500, no traceback out."""
    log.error("unhandled error on %s %s", req.method, req.path, exc_info=ex)
    _write(resp, envelopes.encode_fault(envelopes.Style(envelopes.VAPIX), internal_error()))


def handle_body_timeout(req: falcon.Request, resp: falcon.Response, ex: Exception, params) -> None:
    """The worker's body deadline passed while a resource read the body: 408, and the connection
    is closed (what is left of the body is not worth waiting for)."""
    _write(resp, envelopes.encode_fault(_style_for(req), request_timeout("body")))
    resp.set_header("Connection", "close")


def install_error_handlers(app: falcon.App) -> None:
    # Falcon picks the most specific handler by the exception's class hierarchy.
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(BodyTimeout, handle_body_timeout)
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    app.add_error_handler(VapixFault, handle_fault)
