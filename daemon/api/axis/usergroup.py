"""GET /axis-cgi/usergroup.cgi: the caller's own name and groups, as Axis devices answer it
(PyPI `axis` reads the caller's rights from here):

    <user name>
    <groups, space separated>

Our roles map to Axis groups cumulatively: viewer -> viewer; operator -> operator viewer;
admin -> admin operator viewer. No role grants `ptz` (there is no camera to steer).
"""
from __future__ import annotations

import falcon

GROUPS = {"viewer": ["viewer"], "operator": ["operator", "viewer"], "admin": ["admin", "operator", "viewer"]}


class UserGroupResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = req.context.get("user")
        resp.content_type = "text/plain"
        if user is None:
            resp.status = 403
            resp.text = "# Error: no user\r\n"
            return
        resp.text = f"{user.name}\r\n{' '.join(GROUPS.get(user.role, []))}\r\n"

    on_post = on_get
