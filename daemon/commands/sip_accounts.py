"""SIP account commands: Get/Set/Remove SIPAccount(s), the supported attributes and encryption
modes, and the account status commands (answered by the runtime).

Rules (see docs/vapix-conformance.md):
- Set with an Id that exists updates it (omitted fields keep their values); otherwise a new account
  is created under the given Id, or sip_account_<n> when the Id is empty or missing.
- Exactly one default account while any exists. IsDefault true moves the default ("last set wins",
  also inside one SetSIPAccounts). A new account becomes the default when the current default is
  the automatic peer-to-peer account, unless it says IsDefault false. When the default account is
  removed (or none is left default) the first remaining account becomes the default.
- The peer-to-peer account exists after factory default and is re-created when the last account
  is removed.
- At most accounts.MAX_ACCOUNTS (8, what pjsua can run) accounts, the peer-to-peer one included: a
  Set that would create more is an InvalidArgVal fault and changes nothing. (A store that already
  holds more, from an older version, may still update them, never grow.)
"""
from __future__ import annotations

import copy

from daemon.commands import Context, command, resolve
from daemon.commands import accounts as acc
from daemon.commands import validate as v
from daemon.faults import invalid_arg, missing_arg, not_found

ACCOUNT_ID_KEYS = ("SIPAccountId", "AccountId", "Id")
DTMF_CONFIGURATION_KIND = "dtmf_configuration"


# -- capabilities of accounts ------------------------------------------------------------------------

@command("GetSupportedMediaEncryptionModes", role="viewer")
def get_supported_media_encryption_modes(ctx: Context, params: dict) -> dict:
    v.as_object(params, "request")
    return {"MediaEncryption": list(acc.MEDIA_ENCRYPTION_MODES)}


@command("GetSupportedSIPAccountAttributes", role="viewer")
def get_supported_sip_account_attributes(ctx: Context, params: dict) -> dict:
    v.as_object(params, "request")
    return {"AttributeInfo": [{"Name": name, "Type": kind, "Default": default}
                              for name, (kind, default, _lo, _hi) in acc.ATTRIBUTES.items()]}


# -- reads ---------------------------------------------------------------------------------------------

@command("GetSIPAccount", role="viewer")
def get_sip_account(ctx: Context, params: dict) -> dict:
    ident = v.single_id(params, ACCOUNT_ID_KEYS, "SIPAccountId", lenient=ctx.lenient)
    for doc in acc.stored_accounts(ctx.store):
        if doc["Id"] == ident:
            return {"SIPAccount": acc.public_view(doc)}
    raise not_found(f"No SIP account with SIPAccountId {ident!r}")


@command("GetSIPAccounts", role="viewer")
def get_sip_accounts(ctx: Context, params: dict) -> dict:
    ids = v.id_list(params, ACCOUNT_ID_KEYS, "SIPAccountId", lenient=ctx.lenient)
    return {"SIPAccount": [acc.public_view(doc) for doc in select(acc.stored_accounts(ctx.store), ids)]}


def select(docs: list[dict], ids: list[str] | None) -> list[dict]:
    """All docs (ids None), else the known ones in request order; unknown ids are ignored."""
    if ids is None:
        return docs
    by_id = {doc["Id"]: doc for doc in docs}
    return [by_id[ident] for ident in ids if ident in by_id]


# -- writes -------------------------------------------------------------------------------------------

@command("SetSIPAccount", role="admin")
def set_sip_account(ctx: Context, params: dict) -> dict:
    return {"SIPAccountId": save_accounts(ctx, [single_account(params)])[0]}


@command("SetSIPAccounts", role="admin")
def set_sip_accounts(ctx: Context, params: dict) -> dict:
    items = v.unwrap_many(params, "SIPAccount", "SIPAccounts", "SIPAccount", lenient=ctx.lenient)
    return {"SIPAccountId": save_accounts(ctx, items)}


def single_account(params) -> dict:
    """The account of a SetSIPAccount: {"SIPAccount": {...}} (account fields given beside the
    wrapper, like the example's StreamParameters, are applied too and win) or the account bare."""
    request = v.as_object(params, "request")
    wrapped = request.get("SIPAccount", v.ABSENT)
    if isinstance(wrapped, dict):
        beside = {k: val for k, val in request.items() if k in acc.ACCOUNT_KEYS}
        return {**wrapped, **beside}
    if wrapped is v.ABSENT or (isinstance(wrapped, list) and v.has_any(request, acc.USER_KEYS + acc.ID_KEYS)):
        if not request:
            raise missing_arg("SIPAccount is required")
        return request   # bare account (its "SIPAccount" list, if any, is the proxy list)
    return v.as_object(wrapped, "SIPAccount", none_is_empty=False)


def save_accounts(ctx: Context, items: list[dict]) -> list[str]:
    """Create or update every item in one transaction; all or nothing. Returns ids in request order."""
    saved: list[str] = []
    with ctx.store.transaction() as tx:
        acc.ensure_factory_default(tx)
        accounts = {doc["Id"]: doc for doc in tx.list_objects(acc.KIND)}
        before = len(accounts)

        def dtmf_configuration_exists(ident: str) -> bool:
            return tx.get_object(DTMF_CONFIGURATION_KIND, ident) is not None

        for given in items:
            ident = acc.account_id_of(given, ctx.lenient)
            existing = accounts.get(ident) if ident else None
            doc, explicit_default = acc.build(given, existing, lenient=ctx.lenient,
                                              dtmf_configuration_exists=dtmf_configuration_exists)
            if existing is None:
                ident = ident or tx.next_id(acc.KIND, acc.ID_PREFIX)
                doc["IsDefault"] = False
            doc["Id"] = ident
            previous_default = accounts.get(acc.default_id(accounts) or "")
            accounts[ident] = doc
            tx.put_object(acc.KIND, ident, doc)   # now next_id() sees it
            if explicit_default is True:
                acc.make_default(accounts, ident)
            elif explicit_default is False:
                doc["IsDefault"] = False
            elif existing is None and (previous_default is None or previous_default.get("_auto")):
                acc.make_default(accounts, ident)
            saved.append(ident)
        if len(accounts) > max(acc.MAX_ACCOUNTS, before):   # raising rolls the transaction back
            raise invalid_arg(f"At most {acc.MAX_ACCOUNTS} SIP accounts (the peer-to-peer account "
                              f"included) can be configured; remove one before adding another")
        acc.settle_default(accounts)
        for ident, doc in accounts.items():
            tx.put_object(acc.KIND, ident, doc)
    ctx.runtime.config_changed("sip_accounts")
    return saved


@command("RemoveSIPAccount", role="admin")
def remove_sip_account(ctx: Context, params: dict) -> dict:
    remove_accounts(ctx, [v.single_id(params, ACCOUNT_ID_KEYS, "SIPAccountId", lenient=ctx.lenient)])
    return {}


@command("RemoveSIPAccounts", role="admin")
def remove_sip_accounts(ctx: Context, params: dict) -> dict:
    remove_accounts(ctx, v.id_list(params, ACCOUNT_ID_KEYS, "SIPAccountId", lenient=ctx.lenient) or [])
    return {}


def remove_accounts(ctx: Context, ids: list[str]) -> None:
    """Unknown ids are ignored. Removing the last account brings back the peer-to-peer account."""
    with ctx.store.transaction() as tx:
        acc.ensure_factory_default(tx)
        removed = [ident for ident in ids if tx.delete_object(acc.KIND, ident)]
        if not removed:
            return
        accounts = {doc["Id"]: doc for doc in tx.list_objects(acc.KIND)}
        if not accounts:
            accounts = {acc.PEER_TO_PEER_ID: acc.peer_to_peer_account()}
        acc.settle_default(accounts)
        for ident, doc in accounts.items():
            tx.put_object(acc.KIND, ident, doc)
    ctx.runtime.config_changed("sip_accounts")


# -- status (runtime) -----------------------------------------------------------------------------

@command("GetSIPAccountStatus", role="viewer")
async def get_sip_account_status(ctx: Context, params: dict) -> dict:
    ident = v.single_id(params, ACCOUNT_ID_KEYS, "SIPAccountId", lenient=ctx.lenient)
    await resolve(ctx.runtime.config_settled())     # a status read after a write shows the write
    known = {doc["Id"] for doc in acc.stored_accounts(ctx.store)}
    status = ctx.runtime.account_status(ident) if ident in known else None
    if status is None:
        raise not_found(f"No SIP account with SIPAccountId {ident!r}")
    return {"SIPAccountStatus": copy.deepcopy(status)}


@command("GetSIPAccountStatuses", role="viewer")
async def get_sip_account_statuses(ctx: Context, params: dict) -> dict:
    ids = v.id_list(params, ACCOUNT_ID_KEYS, "SIPAccountId", lenient=ctx.lenient)
    await resolve(ctx.runtime.config_settled())
    statuses = []
    for doc in select(acc.stored_accounts(ctx.store), ids):
        status = ctx.runtime.account_status(doc["Id"])
        if status is not None:
            statuses.append(copy.deepcopy(status))
    return {"SIPAccountStatus": statuses}
