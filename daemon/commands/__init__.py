"""The axcall:* commands: validation and behaviour, no HTTP and no sockets in here.

Every command is a function `handler(ctx, params) -> dict` registered under its name without the
`axcall:` prefix. Handlers run in the supervisor (the single writer), called with a Context that
holds the store and the live runtime. They raise daemon.faults.VapixFault for every client-visible
error; any other exception is a bug and is reported by the caller as env:Receiver/ter:Action.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from daemon.faults import unknown_action
from daemon.store import Store

ROLES = ("viewer", "operator", "admin")


class Runtime(Protocol):
    """What the commands need from the supervisor's live state (implemented in daemon/runtime.py)."""

    def config_changed(self, what: str) -> None:
        """Apply stored configuration live. `what`: sip_configuration | sip_accounts | dtmf | vms | codecs."""

    def supported_codecs(self) -> list[dict]:
        """Codecs the SIP stack really offers: [{"Name": "PCMU", "SampleRate": 8000}, ...]."""

    def call(self, account_id: str | None, to: str) -> str:
        """Start a call, return its CallId."""

    def terminate_call(self, call_id: str) -> None: ...

    def call_status(self, call_id: str) -> dict | None: ...

    def call_statuses(self) -> list[dict]: ...

    def account_status(self, account_id: str) -> dict | None: ...


@dataclass
class Context:
    store: Store
    runtime: Runtime
    # True for the simplified key-value format: scalars arrive as strings and are coerced by type.
    lenient: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Command:
    name: str
    role: str  # minimum role allowed to run it
    handler: Callable[[Context, dict], dict]


REGISTRY: dict[str, Command] = {}


def command(name: str, role: str) -> Callable:
    """Decorator: register `handler` as axcall:<name>, runnable by `role` and above."""
    assert role in ROLES

    def register(handler: Callable[[Context, dict], dict]) -> Callable[[Context, dict], dict]:
        if name in REGISTRY:
            raise RuntimeError(f"command {name} registered twice")
        REGISTRY[name] = Command(name, role, handler)
        return handler
    return register


def role_allows(user_role: str, needed: str) -> bool:
    return ROLES.index(user_role) >= ROLES.index(needed)


def lookup(name: str) -> Command:
    load_all()
    cmd = REGISTRY.get(name)
    if cmd is None:
        raise unknown_action(name)
    return cmd


def load_all() -> None:
    """Import every command module so their @command decorators run."""
    from daemon.commands import (  # noqa: F401
        capabilities, sip_config, sip_accounts, dtmf, vms, codecs, calls)
