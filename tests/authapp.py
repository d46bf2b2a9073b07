"""A tiny WSGI app for the real-stack auth tests: gunicorn serves `tests.authapp:app`.

The state directory comes from DOORSTATION_STATE_DIR; every route answers with the authenticated
user's name and role (and the request target, so tests can check paths with queries)."""
from __future__ import annotations

import os

import falcon

from daemon.api.auth import make_authenticator


class WhoAmI:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = req.context.user
        resp.media = {"name": user.name, "role": user.role, "path": req.path, "query": req.query_string}

    on_post = on_get


def build(state_dir: str) -> falcon.App:
    app = falcon.App(middleware=[make_authenticator(state_dir)])
    app.add_route("/whoami", WhoAmI())
    app.add_route("/vapix/call", WhoAmI())
    return app


app = build(os.environ["DOORSTATION_STATE_DIR"])
