"""WebGate: the Falcon middleware in front of the Authenticator that (1) lets the page's own files
and its login/first-use endpoints through, (2) refuses the whole API while no admin exists, and
(3) accepts a session cookie as a user, with its CSRF token required on every write.

Requests with an Authorization header, and without our cookie or page header, go on to the
Authenticator unchanged (Digest/Basic as before)."""
from __future__ import annotations

import json
from typing import Callable

import falcon

from daemon.api.auth import AuthUser, UserStoreUnavailable
from daemon.api.web.sessions import COOKIE, CSRF_HEADER, Session, SessionStore, csrf_ok, verifier_fingerprint
from daemon.faults import VapixFault, not_authorized, unavailable

PAGE_HEADER = "X-Doorstation-Page"     # sent by the page's script: answer 401 without a challenge
PUBLIC_PATHS = frozenset({"/", "/api/session", "/api/setup"})
STATIC_PATHS = frozenset({"/ui/index.html", "/ui/app.js", "/ui/app.css"})   # resources.STATIC_FILES
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def reply_fault(resp: falcon.Response, fault: VapixFault, field: str | None = None) -> None:
    body = fault.to_dict()
    if field:
        body["Field"] = field      # the page shows the reason next to this field
    resp.status = fault.http_status
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps(body)


def no_admin_fault() -> VapixFault:
    return unavailable("No admin password is set yet: open this station's web page (/) from the "
                       "local network to set it")


def session_ended_fault() -> VapixFault:
    return VapixFault("env:Sender", "ter:NotAuthorized", "ter:AuthenticationFailed",
                      "Your session has ended: log in again", http_status=401)


def csrf_fault() -> VapixFault:
    return not_authorized("The page's CSRF token is missing or wrong: reload the page")


class SessionAuth:
    """A cookie to a user: the session must exist and its user must still be stored with the same
    role and password (else the session is dropped)."""

    def __init__(self, sessions: SessionStore, current_record: Callable):
        self.sessions = sessions
        self.current_record = current_record

    def resolve(self, token: str | None) -> Session | None:
        session = self.sessions.get(token or "")
        if session is None:
            return None
        record = self.current_record(session.name)     # may raise UserStoreUnavailable
        if (record is None or record.role != session.role
                or verifier_fingerprint(record.pw_hash) != session.fingerprint):
            self.sessions.drop(token or "")
            return None
        return session


def session_cookie(req: falcon.Request) -> str | None:
    values = req.get_cookie_values(COOKIE)
    return values[0] if values else None


class WebGate:
    def __init__(self, admin_present: Callable[[], bool], auth: SessionAuth):
        self.admin_present = admin_present
        self.auth = auth

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        path = req.path
        if path in PUBLIC_PATHS or path in STATIC_PATHS:   # exact paths: nothing else skips auth
            req.context.public = True         # these resources check what they need themselves
            return
        if not self.admin_present():
            reply_fault(resp, no_admin_fault())
            resp.complete = True
            return
        if req.get_header("Authorization"):
            return                            # Digest / Basic: the Authenticator's
        token = session_cookie(req)
        from_page = req.get_header(PAGE_HEADER) is not None
        if token is None and not from_page:
            return
        try:
            session = self.auth.resolve(token)
        except UserStoreUnavailable:
            reply_fault(resp, unavailable("The user database is not available"))
            resp.complete = True
            return
        if session is None:
            if from_page:                     # no challenge: the browser must not pop up its dialog
                reply_fault(resp, session_ended_fault())
                resp.complete = True
            return
        if req.method not in SAFE_METHODS and not csrf_ok(session, req.get_header(CSRF_HEADER)):
            reply_fault(resp, csrf_fault())
            resp.complete = True
            return
        req.context.user = AuthUser(session.name, session.role)
        req.context.session = session
