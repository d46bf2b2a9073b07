"""Call control and call status: Call, TerminateCall, GetCallStatus(es). Thin: inputs are checked
here, the runtime does the calling and keeps the statuses.

- Call: To is required (1..1024 characters). SIPAccountId is optional ("" = the default account);
  a given id that names no account is a NotFound fault (Sender) rather than a Receiver failure,
  because the client can fix it. VMS_CALL needs no account and works with SIP disabled: the
  runtime decides whether the call can be made and raises the VapixFault when it cannot.
- TerminateCall/GetCallStatus: an unknown CallId is NotFound.
- GetCallStatuses: the given CallIds in request order (unknown ignored), or all.
"""
from __future__ import annotations

import copy

from daemon.commands import Context, command, resolve
from daemon.commands import accounts as acc
from daemon.commands import validate as v
from daemon.faults import action_failed, not_found
from daemon.sip.calls import VMS_CALL

MAX_URI = 1024


@command("Call", role="operator")
async def call(ctx: Context, params: dict) -> dict:
    request = v.as_object(params, "request")
    to = v.string(v.required(request, "To"), "To", lenient=ctx.lenient, max_len=MAX_URI, non_empty=True)
    account = v.first_present(request, ("SIPAccountId", "AccountId"), None)
    account_id = None if account is None else v.identifier(account, "SIPAccountId", lenient=ctx.lenient) or None
    if account_id is not None and to != VMS_CALL:
        if account_id not in {doc["Id"] for doc in acc.stored_accounts(ctx.store)}:
            raise not_found(f"No SIP account with SIPAccountId {account_id!r}")
    call_id = await resolve(ctx.runtime.call(account_id, to))
    if not isinstance(call_id, str) or not call_id:
        raise action_failed("Failed to initiate the call")
    return {"CallId": call_id}


def _call_id(ctx: Context, params) -> str:
    return v.single_id(params, ("CallId",), "CallId", lenient=ctx.lenient)


@command("TerminateCall", role="operator")
async def terminate_call(ctx: Context, params: dict) -> dict:
    call_id = _call_id(ctx, params)
    if ctx.runtime.call_status(call_id) is None:
        raise not_found(f"No call with CallId {call_id!r}")
    await resolve(ctx.runtime.terminate_call(call_id))
    return {}


@command("GetCallStatus", role="viewer")
def get_call_status(ctx: Context, params: dict) -> dict:
    call_id = _call_id(ctx, params)
    status = ctx.runtime.call_status(call_id)
    if status is None:
        raise not_found(f"No call with CallId {call_id!r}")
    return {"CallStatus": copy.deepcopy(status)}


@command("GetCallStatuses", role="viewer")
def get_call_statuses(ctx: Context, params: dict) -> dict:
    ids = v.id_list(params, ("CallId",), "CallId", lenient=ctx.lenient)
    statuses = [copy.deepcopy(s) for s in ctx.runtime.call_statuses()]
    if ids is not None:
        by_id = {s.get("CallId"): s for s in statuses}
        statuses = [by_id[i] for i in ids if i in by_id]
    return {"CallStatus": statuses}
