"""The station's web page (docs/web.md): static files under static/, the session and first-use
endpoints, and WebGate, the middleware that accepts the page's session cookie alongside Digest and
Basic. `build_web(...)` wires them for daemon.api.app.get_app()."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from daemon.api.web.firstuse import AdminPresence
from daemon.api.web.gate import SessionAuth, WebGate
from daemon.api.web.resources import SessionResource, SetupResource, StaticResource, StatusResource
from daemon.api.web.sessions import SessionStore


@dataclass
class Web:
    gate: WebGate
    routes: dict


def build_web(control, state_dir: str | os.PathLike, authenticator) -> Web:
    presence = AdminPresence(state_dir)
    sessions = SessionStore(time.monotonic)
    session_auth = SessionAuth(sessions, authenticator.current_record)
    session = SessionResource(sessions, session_auth, authenticator.login, presence,
                              password_over_http=authenticator.basic_over_http)
    static = StaticResource()
    return Web(WebGate(presence, session_auth), {
        "/": static,
        "/ui/{name}": static,
        "/api/session": session,
        "/api/setup": SetupResource(control, presence, presence.mark_present, session),
        "/api/status": StatusResource(control),
    })
