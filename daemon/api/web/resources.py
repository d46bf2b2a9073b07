"""The page's own endpoints (everything else it does goes through /vapix/call and /api/*):

    GET    /  and  /ui/<file>   the page (static, strict Content-Security-Policy)
    GET    /api/session         who is logged in (+ CSRF token), or that the station is in first use
    POST   /api/session         log in {"User", "Password"}: a session cookie
    DELETE /api/session         log out (CSRF token required)
    POST   /api/setup           first use: {"Password"} sets the admin's password (local network, once)
    GET    /api/status          viewer: the supervisor's status, software version and uptime
"""
from __future__ import annotations

import json
import math
import time
from importlib import metadata
from pathlib import Path
from typing import Callable

import falcon

from daemon.api import jsonbody
from daemon.api.auth import UserStoreUnavailable
from daemon.api.web.firstuse import is_local_address
from daemon.api.web.gate import reply_fault, session_cookie
from daemon.api.web.sessions import CSRF_HEADER, SessionStore, cookie_header, csrf_ok
from daemon.commands import role_allows
from daemon.control.client import ControlError
from daemon.faults import VapixFault, action_failed, invalid_arg, not_authorized, unavailable
from daemon.users import PASSWORD_MAX, PASSWORD_MIN

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
                "app.css": "text/css; charset=utf-8"}
# Nothing but our own files; no inline script or style, no framing, forms post only to us.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "no-cache"}


def _json(resp: falcon.Response, data, status: int = 200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.set_header("Cache-Control", "no-store")
    resp.text = json.dumps(data)


def _json_body(req: falcon.Request) -> dict:
    if (req.content_type or "").split(";")[0].strip().lower() != "application/json":
        # a cross-site <form> cannot send JSON: this also keeps login and set-up from CSRF
        raise VapixFault("env:Sender", "ter:InvalidArgVal", "ter:InvalidArgVal",
                         "The body must be JSON (Content-Type: application/json)", http_status=415)
    body = jsonbody.read(req.bounded_stream, empty={})
    if not isinstance(body, dict):
        raise invalid_arg("The body must be a JSON object")
    return body


def _text_field(body: dict, name: str, limit: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or len(value) > limit:
        raise invalid_arg(f"{name} must be text of at most {limit} characters")
    return value


class StaticResource:
    """The page's few files, read once at start (the package is installed read-only)."""

    def __init__(self, directory: Path = STATIC_DIR):
        self.files = {name: ((directory / name).read_bytes(), ctype) for name, ctype in STATIC_FILES.items()}

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str = "index.html") -> None:
        item = self.files.get(name)
        if item is None:
            raise falcon.HTTPNotFound()
        resp.data, resp.content_type = item
        for header, value in PAGE_HEADERS.items():
            resp.set_header(header, value)


class SessionResource:
    def __init__(self, sessions: SessionStore, session_auth, login: Callable, admin_present: Callable[[], bool],
                 password_over_http: bool = True):
        self.password_over_http = password_over_http   # False with --no-basic-over-http
        self.sessions = sessions
        self.session_auth = session_auth
        self.login = login                   # Authenticator.login
        self.admin_present = admin_present

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not self.admin_present():
            _json(resp, {"FirstUse": True, "LocalNetwork": is_local_address(req.remote_addr)})
            return
        try:
            session = self.session_auth.resolve(session_cookie(req))
        except UserStoreUnavailable:
            reply_fault(resp, unavailable("The user database is not available"))
            return
        if session is None:
            _json(resp, {"FirstUse": False, "User": None})
            return
        _json(resp, {"FirstUse": False, "User": session.name, "Role": session.role, "CSRF": session.csrf})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            if not self.admin_present():
                raise unavailable("Set the admin password first")
            if not self.password_over_http and req.scheme != "https":
                # the same policy as Basic: this station takes passwords only over TLS
                raise not_authorized("Log in over HTTPS: this station accepts passwords only over HTTPS")
            body = _json_body(req)
            name, password = _text_field(body, "User", 64), _text_field(body, "Password", PASSWORD_MAX)
            outcome = self.login(req.remote_addr or "", name, password)
        except VapixFault as fault:
            reply_fault(resp, fault)
            return
        except UserStoreUnavailable:
            reply_fault(resp, unavailable("The user database is not available"))
            return
        if isinstance(outcome, float):
            resp.set_header("Retry-After", str(max(1, math.ceil(outcome))))
            reply_fault(resp, VapixFault("env:Sender", "ter:NotAuthorized", "ter:TooManyAttempts",
                                         f"Too many failed attempts: try again in {math.ceil(outcome)} s",
                                         http_status=429), "Password")
            return
        if outcome is None:
            reply_fault(resp, VapixFault("env:Sender", "ter:NotAuthorized", "ter:AuthenticationFailed",
                                         "Wrong user name or password", http_status=401), "Password")
            return
        user, record = outcome
        self._open(req, resp, user.name, user.role, record.pw_hash)

    def _open(self, req, resp, name: str, role: str, pw_hash: str) -> None:
        token, session = self.sessions.create(name, role, pw_hash)
        resp.append_header("Set-Cookie", cookie_header(token, req.scheme == "https", int(self.sessions.idle_timeout)))
        _json(resp, {"FirstUse": False, "User": name, "Role": role, "CSRF": session.csrf})

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = session_cookie(req)
        session = self.sessions.get(token or "")
        if session is not None:
            if not csrf_ok(session, req.get_header(CSRF_HEADER)):
                reply_fault(resp, not_authorized("The page's CSRF token is missing or wrong: reload the page"))
                return
            self.sessions.drop(token or "")
        resp.append_header("Set-Cookie", cookie_header("", req.scheme == "https", 0))
        _json(resp, {"User": None})


class SetupResource:
    """First use: the admin's password, from the local network, once (the supervisor refuses a
    second admin "admin": add_user without replace)."""

    def __init__(self, control, admin_present, mark_present: Callable[[], None], session_resource: SessionResource):
        self.control = control
        self.admin_present = admin_present
        self.mark_present = mark_present
        self.session_resource = session_resource

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        field = None
        try:
            if self.admin_present():
                raise VapixFault("env:Sender", "ter:Action", "ter:Failure",
                                 "The admin password is already set: log in", http_status=409)
            if not is_local_address(req.remote_addr):
                raise not_authorized("The admin password can be set only from the local network "
                                     "(loopback, link-local, 10/8, 172.16/12, 192.168/16, fc00::/7)")
            body = _json_body(req)
            field = "Password"
            password = _text_field(body, "Password", PASSWORD_MAX)
            if len(password) < PASSWORD_MIN:
                raise invalid_arg(f"The password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters")
            try:
                self.control.request("user.add", {"name": "admin", "role": "admin", "password": password,
                                                  "replace": False})
            except ControlError as e:
                raise VapixFault("env:Sender", "ter:Action", "ter:Failure",
                                 f"The admin could not be created: {e}", http_status=409) from None
        except VapixFault as fault:
            reply_fault(resp, fault, field)
            return
        self.mark_present()
        record = self.session_resource.session_auth.current_record("admin")
        if record is None:
            reply_fault(resp, action_failed("The admin was created but cannot be read back yet: log in"))
            return
        self.session_resource._open(req, resp, "admin", "admin", record.pw_hash)


class StatusResource:
    """The supervisor's status for the page, with the software version and the station's uptime."""

    def __init__(self, control, clock: Callable[[], float] = time.time):
        self.control = control
        self.clock = clock
        try:
            self.version = metadata.version("doorstation")
        except metadata.PackageNotFoundError:
            self.version = "unknown"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = req.context.get("user")
        try:
            if user is None or not role_allows(user.role, "viewer"):
                raise not_authorized("This needs the viewer role")
            status = self.control.request("status", {})
        except VapixFault as fault:
            reply_fault(resp, fault)
            return
        started = status.get("StartedAt")
        status["Version"] = self.version
        status["Uptime"] = round(self.clock() - started) if isinstance(started, (int, float)) else None
        status["User"] = {"Name": user.name, "Role": user.role}
        _json(resp, status)
