"""The Falcon WSGI application: create_app(...) for tests, get_app() for gunicorn.

gunicorn: `gunicorn --worker-class daemon.api.worker.StationWorker 'daemon.api.app:get_app()'` with
DOORSTATION_STATE_DIR set (and optionally DOORSTATION_CONTROL_SOCKET, default
<state>/run/control.sock; DOORSTATION_CONTROL_TIMEOUT seconds; DOORSTATION_BASIC_OVER_HTTP=0 to
accept Basic only over HTTPS; the limits of daemon.api.limits.Limits.from_env).
"""
from __future__ import annotations

import os
from typing import Any, Callable

import falcon

from daemon.api import vapix
from daemon.api.answers import StationStamp, StoredAnswers
from daemon.commands.roles import ANSWERED_AGAIN

DEFAULT_CONTROL_TIMEOUT = 10.0


def create_app(control: vapix.Control, authenticator: object | None = None,
               extra_routes: dict[str, object] | None = None, *,
               command_role: Callable[[str], str] | None = None,
               role_allows: Callable[[str, str], bool] | None = None,
               redirect_to_https: int | None = None, gate: object | None = None,
               answers: StoredAnswers | None = None) -> falcon.App:
    """Build the app.

    control        object with request(command, args) -> dict (daemon.control.client.ControlClient)
    authenticator  Falcon middleware that sets req.context.user (with .role) or rejects the request;
                   None only in unit tests (then every command is refused: no user, no role)
    extra_routes   {path: resource} added beside /vapix/call (e.g. "/api/events")
    command_role, role_allows   the role check; default daemon.commands.lookup(name).role and
                   daemon.commands.role_allows (injected in unit tests)
    redirect_to_https   an HTTPS port: plain-HTTP requests get a 308 there before authentication
    gate           middleware run before the authenticator (the web page's WebGate: first use,
                   session cookies)
    answers        daemon.api.answers.StoredAnswers: reads answered again until what they read
                   changes (None: every command goes to the supervisor)
    """
    middleware: list[Any] = []
    if redirect_to_https is not None:
        from daemon.api.redirect import HttpsRedirect
        middleware.append(HttpsRedirect(redirect_to_https))
    if gate is not None:
        middleware.append(gate)
    if authenticator is not None:
        middleware.append(authenticator)
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    resource = vapix.VapixCallResource(
        control,
        command_role=command_role or vapix.default_command_role,
        role_allows=role_allows or vapix.default_role_allows,
        answers=answers, answered_again=ANSWERED_AGAIN if answers is not None else frozenset())
    with_head(resource)
    app.add_route("/vapix/call", resource)
    app.add_route("/vapix/call/{command}", resource)
    for path, extra in (extra_routes or {}).items():
        app.add_route(path, with_head(extra))
    vapix.install_error_handlers(app)
    return app


def with_head(resource: Any) -> Any:
    """HEAD answers like GET without the body (Falcon drops the body of a HEAD response itself)."""
    if hasattr(resource, "on_get") and not hasattr(resource, "on_head"):
        resource.on_head = resource.on_get
    return resource


def env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise RuntimeError(f"{name}={raw!r}: expected 1 or 0")


KDF_THREADS = 2  # concurrent scrypt checks (16 MiB each); more wait their turn cooperatively


def kdf_runner():
    """Under the gevent worker: run password hashing on a small thread pool, off the one thread
    that serves every connection. None elsewhere (threads already isolate it)."""
    try:
        from gevent import monkey
        from gevent.threadpool import ThreadPool
    except ImportError:
        return None
    if not monkey.is_module_patched("socket"):
        return None
    pool = ThreadPool(KDF_THREADS)
    return lambda fn, *args: pool.apply(fn, args)


def get_app() -> Callable:
    """The production app, configured from the environment (gunicorn's entry point): the Falcon
    app, wrapped so that a WebSocket upgrade can take its connection over."""
    from daemon.fileperms import private_umask
    private_umask()  # whatever the API creates in the state (the nonce secret, keys) is 0600
    state_dir = os.environ.get("DOORSTATION_STATE_DIR")
    if not state_dir:
        raise RuntimeError("DOORSTATION_STATE_DIR is not set")
    socket_path = (os.environ.get("DOORSTATION_CONTROL_SOCKET")
                   or os.path.join(state_dir, "run", "control.sock"))
    timeout = float(os.environ.get("DOORSTATION_CONTROL_TIMEOUT", DEFAULT_CONTROL_TIMEOUT))
    # Imported here: none of these is needed by unit tests of the HTTP layer.
    from daemon.api.audio import audio_routes
    from daemon.api.auth import make_authenticator
    from daemon.api.axis import axis_routes
    from daemon.api.door import DoorBindingsResource, DoorOpenResource
    from daemon.api.events import EventsResource
    from daemon.api.limits import Limits, LongPollGate
    from daemon.api.readstore import ReadStore
    from daemon.control.client import ControlClient
    limits = Limits.from_env()
    control = ControlClient(socket_path, timeout=timeout)
    # Passed only when not the default: make_authenticator's minimal signature keeps working.
    policy: dict[str, Any] = {} if env_flag("DOORSTATION_BASIC_OVER_HTTP", True) else {"basic_over_http": False}
    runner = kdf_runner()
    if runner is not None:
        policy["run_blocking"] = runner
    store = ReadStore(state_dir)       # this process's read-only connection, for both of these
    authenticator = make_authenticator(state_dir, store=store, **policy)
    from daemon.control.livestamp import LiveStampView, live_stamp_path
    live = LiveStampView(live_stamp_path(state_dir))
    answers = StoredAnswers(StationStamp(store.data_version, live))
    gate, web_routes = None, {}
    if hasattr(authenticator, "login"):   # the real Authenticator (unit tests inject a stand-in)
        from daemon.api.web import build_web
        web = build_web(control, state_dir, authenticator)   # before the WebSocket wrapper: it wants the real one
        gate, web_routes = web.gate, web.routes
    from daemon.api.wsevents.stream import with_websockets
    from daemon.api.wsevents.wiring import websocket_parts
    authenticator, ws_routes = websocket_parts(state_dir, socket_path, limits, authenticator, store)
    redirect = os.environ.get("DOORSTATION_HTTPS_REDIRECT_PORT")
    app = create_app(control, authenticator, redirect_to_https=int(redirect) if redirect else None,
                     gate=gate, answers=answers,
                     extra_routes={"/api/events": LongPollGate(EventsResource(control),
                                                                limits.max_longpolls_per_user,
                                                                limits.max_longpolls),
                                   "/api/door/open": DoorOpenResource(control),
                                   "/api/door/bindings": DoorBindingsResource(control),
                                   **axis_routes(control, state_dir), **ws_routes, **web_routes,
                                   **audio_routes(state_dir)})
    return with_websockets(app)
