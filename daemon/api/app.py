"""The Falcon WSGI application: create_app(...) for tests, get_app() for gunicorn.

gunicorn: `gunicorn 'daemon.api.app:get_app()'` with DOORSTATION_STATE_DIR set (and optionally
DOORSTATION_CONTROL_SOCKET, default <state>/run/control.sock; DOORSTATION_CONTROL_TIMEOUT seconds).
"""
from __future__ import annotations

import os
from typing import Any, Callable

import falcon

from daemon.api import vapix

DEFAULT_CONTROL_TIMEOUT = 10.0


def create_app(control: vapix.Control, authenticator: object | None = None,
               extra_routes: dict[str, object] | None = None, *,
               command_role: Callable[[str], str] | None = None,
               role_allows: Callable[[str, str], bool] | None = None) -> falcon.App:
    """Build the app.

    control        object with request(command, args) -> dict (daemon.control.client.ControlClient)
    authenticator  Falcon middleware that sets req.context.user (with .role) or rejects the request;
                   None only in unit tests (then every command is refused: no user, no role)
    extra_routes   {path: resource} added beside /vapix/call (e.g. "/api/events")
    command_role, role_allows   the role check; default daemon.commands.lookup(name).role and
                   daemon.commands.role_allows (injected in unit tests)
    """
    middleware: list[Any] = [authenticator] if authenticator is not None else []
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    resource = vapix.VapixCallResource(
        control,
        command_role=command_role or vapix.default_command_role,
        role_allows=role_allows or vapix.default_role_allows)
    app.add_route("/vapix/call", resource)
    app.add_route("/vapix/call/{command}", resource)
    for path, extra in (extra_routes or {}).items():
        app.add_route(path, extra)
    vapix.install_error_handlers(app)
    return app


def get_app() -> falcon.App:
    """The production app, configured from the environment (gunicorn's entry point)."""
    from daemon.fileperms import private_umask
    private_umask()  # whatever the API creates in the state (the nonce secret, keys) is 0600
    state_dir = os.environ.get("DOORSTATION_STATE_DIR")
    if not state_dir:
        raise RuntimeError("DOORSTATION_STATE_DIR is not set")
    socket_path = (os.environ.get("DOORSTATION_CONTROL_SOCKET")
                   or os.path.join(state_dir, "run", "control.sock"))
    timeout = float(os.environ.get("DOORSTATION_CONTROL_TIMEOUT", DEFAULT_CONTROL_TIMEOUT))
    # Imported here: none of these is needed by unit tests of the HTTP layer.
    from daemon.api.auth import make_authenticator
    from daemon.api.axis import axis_routes
    from daemon.api.door import DoorBindingsResource, DoorOpenResource
    from daemon.api.events import EventsResource
    from daemon.control.client import ControlClient
    control = ControlClient(socket_path, timeout=timeout)
    return create_app(control, make_authenticator(state_dir),
                      extra_routes={"/api/events": EventsResource(control),
                                    "/api/door/open": DoorOpenResource(control),
                                    "/api/door/bindings": DoorBindingsResource(control),
                                    **axis_routes(control, state_dir)})
