"""The supervisor's user-management commands for the API's pwdgrp.cgi (the API process has no store
writer). Each store refusal becomes a VAPIX fault whose `msg` names the kind of refusal, so the API
can answer with the right HTTP status and the page can show it next to the right field.

    user.get     -> [{"name", "role"}]
    user.create  {name, role, password}
    user.update  {name, role?, password?}
    user.delete  {name}
"""
from __future__ import annotations

import asyncio
import inspect
from typing import Callable

from daemon import users
from daemon.faults import VapixFault
from daemon.store import Store

# refusal kind (sent as the fault's msg) -> the field it concerns
KINDS = {
    users.InvalidUserName: "user",
    users.InvalidRole: "sgrp",
    users.InvalidPassword: "pwd",
    users.UserExists: "exists",
    users.UnknownUser: "unknown",
    users.LastAdmin: "last-admin",
}


def refusal(error: users.UserError) -> VapixFault:
    kind = next((k for cls, k in KINDS.items() if isinstance(error, cls)), "invalid")
    return VapixFault("env:Sender", "ter:InvalidArgVal", "ter:InvalidArgVal", str(error)[:200], kind)


def _text(args: dict, key: str) -> str | None:
    value = args.get(key)
    return value if isinstance(value, str) else None


def control_handlers(store: Store) -> dict[str, Callable[[dict], object]]:
    def guarded(action: Callable[[dict], object]) -> Callable[[dict], object]:
        async def run(args: dict):
            try:
                result = action(args if isinstance(args, dict) else {})
                return (await result) if inspect.isawaitable(result) else result
            except users.UserError as e:
                raise refusal(e) from None
        return run

    # scrypt (~0.1 s) runs in a worker thread, after the cheap checks, so the loop that runs the
    # door and the calls never waits for it; the write itself stays on the loop (single writer).
    async def create(args: dict) -> dict:
        name, role, password = _text(args, "name") or "", _text(args, "role") or "", _text(args, "password") or ""
        users.validate(name, role, password)
        ready = await asyncio.to_thread(users.make_verifiers, name, password)
        users.add_user(store, name, role, password, verifiers=ready)
        return {}

    async def update(args: dict) -> dict:
        name, role, password = _text(args, "name") or "", _text(args, "role"), _text(args, "password")
        ready = None
        if password is not None:
            users.validate_password(password)
            ready = await asyncio.to_thread(users.make_verifiers, name, password)
        users.update_user(store, name, role=role, password=password, verifiers=ready)
        return {}

    def delete(args: dict) -> dict:
        users.remove_user(store, _text(args, "name") or "")
        return {}

    return {
        "user.get": guarded(lambda args: [{"name": u["name"], "role": u["role"]} for u in users.list_users(store)]),
        "user.create": guarded(create),
        "user.update": guarded(update),
        "user.delete": guarded(delete),
    }
