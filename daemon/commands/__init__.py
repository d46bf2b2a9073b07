"""The axcall:* commands: validation and behaviour, no HTTP and no sockets in here.

Every command is a function `handler(ctx, params) -> dict` (or a coroutine function, for the
commands that wait on the SIP engine: they await it, the supervisor's loop never blocks) registered
under its name without the `axcall:` prefix; `invoke()` runs either kind. Handlers run in the
supervisor (the single writer), called with a Context that holds the store and the live runtime.
They raise daemon.faults.VapixFault for every client-visible error; any other exception is a bug
and is reported by the caller as env:Receiver/ter:Action.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol, TypeVar

from daemon.commands.roles import COMMAND_ROLES, ROLES, role_allows  # noqa: F401  (re-exported for the API)
from daemon.faults import unknown_action
from daemon.store import Store

T = TypeVar("T")


class Runtime(Protocol):
    """What the commands need from the supervisor's live state (implemented in daemon/supervisor/runtime.py).
    Methods that reach the SIP engine may return an awaitable instead of the value (see resolve())."""

    def config_changed(self, what: str) -> None:
        """Stored configuration changed: apply it live, without waiting for the SIP engine (the
        outcome is reported as an event and in the status). `what`: sip_configuration |
        sip_accounts | dtmf | vms | codecs."""

    def config_settled(self) -> Awaitable[None] | None:
        """Until the configuration applies queued so far are in force (bounded)."""

    def supported_codecs(self) -> list[dict]:
        """Codecs the SIP stack really offers: [{"Name": "PCMU", "SampleRate": 8000}, ...]."""

    def call(self, account_id: str | None, to: str) -> Awaitable[str] | str:
        """Start a call, return its CallId."""

    def terminate_call(self, call_id: str) -> Awaitable[None] | None: ...

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
    if COMMAND_ROLES.get(name) != role:     # the API decides from the table: they must agree
        raise RuntimeError(f"command {name}: role {role!r} is not the one in daemon/commands/roles.py")

    def register(handler: Callable[[Context, dict], dict]) -> Callable[[Context, dict], dict]:
        if name in REGISTRY:
            raise RuntimeError(f"command {name} registered twice")
        REGISTRY[name] = Command(name, role, handler)
        return handler
    return register


async def resolve(value: Awaitable[T] | T) -> T:
    """A runtime answer that may be awaitable (the supervisor's) or plain (unit tests' fakes)."""
    return await value if inspect.isawaitable(value) else value


async def invoke(command: Command, ctx: Context, params: Any) -> dict:
    """Run a command's handler, awaiting it if it is a coroutine function."""
    return await resolve(command.handler(ctx, params))


def lookup(name: str) -> Command:
    load_all()
    cmd = REGISTRY.get(name)
    if cmd is None:
        raise unknown_action(name)
    return cmd


def load_all() -> None:
    """Import every command module so their @command decorators run."""
    from daemon.commands import calls, capabilities, codecs, dtmf, sip_accounts, sip_config, vms  # noqa: F401
