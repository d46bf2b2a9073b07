"""GET|POST /axis-cgi/pwdgrp.cgi: the VAPIX user management API (API discovery id
`user-management`), admin only. Parameters as form fields (POST body) or in the query:

    action=get                                   the users of each group, one `group="a,b"` line each
    action=add&user=U&pwd=P&grp=users&sgrp=S     S: viewer | viewer:operator | viewer:operator:admin
                                                 (`:ptz` accepted and ignored; there is no camera)
    action=update&user=U[&pwd=P][&sgrp=S]        what is not given is kept
    action=remove&user=U

`comment` is accepted and ignored. Success is one text line (`Created account U.` ...). Errors are
`# Error: <reason>` text with an HTTP status: 400 bad input, 403 not an admin, 404 unknown user,
409 the name exists or the change would leave no admin, 413 too long, 503 supervisor unreachable.
The store itself (daemon.users, in the supervisor) validates and enforces the last-admin rule.
Groups are cumulative as in usergroup.cgi: an admin is also operator and viewer.
"""
from __future__ import annotations

from urllib.parse import parse_qs

import falcon

from daemon.api.axis.jsonapi import ApiError, read_body, require_role
from daemon.api.axis.usergroup import GROUPS
from daemon.control.client import ControlError
from daemon.faults import VapixFault

MAX_QUERY = 2048
MAX_FIELDS = 8
# highest role named in sgrp wins; ptz is a known group that grants nothing here
_ROLE_OF_GROUP = {"viewer": "viewer", "operator": "operator", "admin": "admin"}
_KNOWN_GROUPS = {*_ROLE_OF_GROUP, "ptz"}
_ORDER = ("viewer", "operator", "admin")
# status for each refusal kind the supervisor sends (daemon.usercontrol)
_STATUS = {"unknown": 404, "exists": 409, "last-admin": 409}
_DONE = {"add": "Created", "update": "Modified", "remove": "Removed"}


class PwdgrpError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


def role_of(sgrp: str) -> str:
    """"viewer:operator" -> "operator". Unknown groups, or none granting a role, are refused."""
    groups = [g for g in sgrp.split(":") if g]
    unknown = [g for g in groups if g not in _KNOWN_GROUPS]
    if unknown or len(groups) > len(_KNOWN_GROUPS):
        raise PwdgrpError("sgrp must be viewer, viewer:operator or viewer:operator:admin (optionally :ptz)")
    roles = [_ROLE_OF_GROUP[g] for g in groups if g in _ROLE_OF_GROUP]
    if not roles:
        raise PwdgrpError("sgrp must name viewer, operator or admin")
    return max(roles, key=_ORDER.index)


def groups_text(rows: list[dict]) -> str:
    """The answer to action=get: every group Axis clients read, users comma-separated."""
    members: dict[str, list[str]] = {"admin": [], "operator": [], "viewer": []}
    for row in rows:
        for group in GROUPS.get(str(row.get("role")), []):
            members[group].append(str(row.get("name")))
    everyone = ",".join(str(r.get("name")) for r in rows)
    lines = [f'{group}="{",".join(names)}"' for group, names in members.items()]
    lines += ['ptz=""', f'users="{everyone}"', f'digusers="{everyone}"']
    return "\r\n".join(lines) + "\r\n"


class PwdgrpResource:
    def __init__(self, control):
        self.control = control

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._handle(req, resp, req.query_string or "")

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            body = read_body(req, MAX_QUERY).decode("utf-8", "replace")
        except ApiError as e:
            self._text(resp, f"# Error: {e.message}", e.http_status)
            return
        self._handle(req, resp, "&".join(x for x in (req.query_string or "", body) if x))

    def _handle(self, req: falcon.Request, resp: falcon.Response, query: str) -> None:
        try:
            require_role(req.context.get("user"), "admin")
            if len(query) > MAX_QUERY:
                raise PwdgrpError("request too long", 413)
            try:
                args = parse_qs(query, keep_blank_values=True, max_num_fields=MAX_FIELDS, strict_parsing=False)
            except ValueError:
                raise PwdgrpError("too many parameters") from None
            if any(len(v) > 1 for v in args.values()):
                raise PwdgrpError("each parameter may be given once")
            self._text(resp, self._act({k: v[0] for k, v in args.items()}))
        except ApiError as e:
            self._text(resp, f"# Error: {e.message}", e.http_status)
        except PwdgrpError as e:
            self._text(resp, f"# Error: {e.message}", e.status)
        except VapixFault as fault:
            status = 503 if fault.http_status == 503 else _STATUS.get(str(fault.msg or ""), 400)
            self._text(resp, f"# Error: {str(fault.reason)[:200]}", status)
        except ControlError as e:
            self._text(resp, f"# Error: {str(e)[:200]}", 500)

    def _act(self, args: dict[str, str]) -> str:
        action = args.get("action", "")
        if action == "get":
            return groups_text(self.control.request("user.get", {}) or [])
        if action not in _DONE:
            raise PwdgrpError("action must be get, add, update or remove")
        name = args.get("user", "")
        if not name:
            raise PwdgrpError("user is required")
        if action == "add":
            if args.get("grp", "users") != "users":
                raise PwdgrpError("grp must be users")
            if "pwd" not in args or "sgrp" not in args:
                raise PwdgrpError("add needs pwd and sgrp")
            self.control.request("user.create", {"name": name, "password": args["pwd"],
                                                 "role": role_of(args["sgrp"])})
        elif action == "update":
            change = {}
            if "pwd" in args:
                change["password"] = args["pwd"]
            if "sgrp" in args:
                change["role"] = role_of(args["sgrp"])
            if not change:
                raise PwdgrpError("update needs pwd or sgrp")
            self.control.request("user.update", {"name": name, **change})
        else:
            self.control.request("user.delete", {"name": name})
        return f"{_DONE[action]} account {name}.\r\n"

    @staticmethod
    def _text(resp: falcon.Response, text: str, status: int = 200) -> None:
        resp.status = status
        resp.content_type = "text/plain; charset=utf-8"
        resp.text = text if text.endswith("\r\n") else text + "\r\n"
