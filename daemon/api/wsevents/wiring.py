"""Builds the WebSocket event stream's parts for daemon.api.app.get_app()."""
from __future__ import annotations

import logging
import os

from daemon.api.limits import ConnectionCounter, Limits
from daemon.api.readstore import ReadStore
from daemon.api.wsevents import stream, tokens
from daemon.api.wsevents.hub import WsEventHub


def websocket_parts(state_dir: str | os.PathLike, control_socket: str, limits: Limits, authenticator,
                    store: ReadStore | None = None):
    """(the middleware to use in place of `authenticator`, {path: resource}). The hub has its own
    control-socket client: its one long-poll never takes a connection of the API's pool. `store`:
    the process's read-only connection (else one of its own)."""
    from daemon.control.client import ControlClient

    lookups: list = []

    def user_role(name: str) -> str | None:
        """The user's role now (None: no such user); read when a token is redeemed."""
        from daemon.api.auth import StoreUserLookup, UserStoreUnavailable
        if not lookups:
            lookups.append(StoreUserLookup(store or ReadStore(state_dir)))
        try:
            record = lookups[0](name)
        except UserStoreUnavailable as e:
            raise tokens.UserDatabaseDown(str(e)) from e
        return record.role if record is not None else None

    issued = tokens.WsSessionTokens()
    log = logging.getLogger("doorstation.api.ws")
    hub = WsEventHub(ControlClient(control_socket, timeout=10.0, max_connections=2), log)
    counter = ConnectionCounter(limits.max_event_streams, limits.max_event_streams_per_address)
    # keyed by user name (peer_key leaves a name as it is); the total is `counter`'s alone
    per_user = ConnectionCounter(2 ** 31, limits.max_event_streams_per_user)
    middleware = tokens.TokenOrHeaderAuth(authenticator, issued, stream.PATH, user_role)
    return middleware, {
        stream.PATH: stream.WsEventStreamResource(hub, counter, limits.event_stream_queue, log,
                                                  limits.event_stream_configure_timeout,
                                                  limits.event_stream_idle_timeout, per_user),
        "/axis-cgi/wssession.cgi": tokens.WsSessionResource(issued),
    }
