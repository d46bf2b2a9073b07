"""SIP account documents: defaults, validation of one account, the default-account rules, the
factory-default peer-to-peer account and the client view (passwords hidden).

Stored as objects of kind "sip_account" keyed by Id, with clear-text secrets (SIP digest needs
them). Keys starting with "_" are internal and never shown to clients: "_auto" marks the
peer-to-peer account this program created by itself.
"""
from __future__ import annotations

import copy
import re
from typing import Any, Callable

from daemon.commands import validate as v
from daemon.commands.sip_config import resolve_password
from daemon.faults import invalid_arg, missing_arg
from daemon.sip.attributes import ATTRIBUTES, attribute_value  # noqa: F401 (attribute_value: re-export)
from daemon.sip.config import MAX_ENGINE_ACCOUNTS

KIND = "sip_account"
ID_PREFIX = "sip_account_"
PEER_TO_PEER_ID = "peer-to-peer"
INITIALISED_KEY = "sip_accounts_initialised"   # settings marker: factory default already applied

# pjsua runs at most PJSUA_MAX_ACC accounts (8 in our build, pjproject's default); every stored
# account is one of them when enabled, the peer-to-peer account included, and pjsua makes none of
# its own (tests/test_account_limit.py checks both against the built pjsua2). More would fail in
# pjsua (PJ_ETOOMANY) and make every later configuration write fail to apply.
MAX_ACCOUNTS = MAX_ENGINE_ACCOUNTS

TRANSPORTS = ("udp", "tcp", "tls")
MEDIA_ENCRYPTION_MODES = ("None", "SRTPBestEffort", "SRTPMandatory")
ENCRYPTION_PROTOCOLS = ("TLSv1", "TLSv11", "TLSv12")

# ATTRIBUTES (imported above, shared with the SIP engine config): the account attributes we
# implement, name -> (type, default, lowest, highest); values travel as strings.

DEFAULTS: dict[str, Any] = {
    "Name": "",
    "Enabled": True,
    "UserId": "",
    "Password": None,
    "Registrar": None,
    "PublicDomain": None,
    "SIPProxies": [],
    "Attribute": [],
    "CallerId": "",
    "AuthenticationId": "",
    "SecondaryRegistrar": "",
    "SecondaryPublicDomain": "",
    "IsDefault": False,
    "SIPSEnabled": False,
    "Transport": "udp",
    "PrioritizeIPv6": False,
    "StreamParameters": "",
    "AllowMWI": False,
    "DTMFConfigurationId": "",
    "MediaEncryption": "None",
    "EncryptionProtocols": "TLSv12",
    "VerifyServerCertificate": False,
}

BOOL_FIELDS = ("Enabled", "SIPSEnabled", "PrioritizeIPv6", "AllowMWI", "VerifyServerCertificate")
TEXT_FIELDS = ("Name", "AuthenticationId", "SecondaryRegistrar", "SecondaryPublicDomain")
NULLABLE_TEXT_FIELDS = ("Registrar", "PublicDomain")   # "" is stored (and answered) as null
ID_KEYS = ("Id", "SIPAccountId")
USER_KEYS = ("UserId", "Username")   # the table says UserId, the examples Username

# Every field name (any spelling) that belongs to an account; used to pick account fields given
# beside the "SIPAccount" wrapper (the StreamParameters example).
ACCOUNT_KEYS = frozenset(DEFAULTS) | {"Id", "Username", "SIPAccountId"}


def peer_to_peer_account() -> dict:
    doc = copy.deepcopy(DEFAULTS)
    doc.update({"Id": PEER_TO_PEER_ID, "UserId": PEER_TO_PEER_ID, "CallerId": PEER_TO_PEER_ID,
                "IsDefault": True, "_auto": True})
    return doc


def stored_accounts(store_or_tx) -> list[dict]:
    """All accounts with secrets, as the runtime needs them. Before the factory default has been
    written (fresh store, read-only view) the peer-to-peer account is shown as if it existed."""
    accounts = store_or_tx.list_objects(KIND)
    if not accounts and store_or_tx.get_setting(INITIALISED_KEY) is None:
        return [peer_to_peer_account()]
    return accounts


def ensure_factory_default(tx) -> None:
    """Write the peer-to-peer account on first use of a fresh store (idempotent)."""
    if tx.get_setting(INITIALISED_KEY) is None:
        if not tx.list_objects(KIND):
            tx.put_object(KIND, PEER_TO_PEER_ID, peer_to_peer_account())
        tx.put_setting(INITIALISED_KEY, {"initialised": True})


def initialise(store) -> None:
    """For the supervisor at start-up: make the factory-default account real."""
    with store.transaction() as tx:
        ensure_factory_default(tx)


def public_view(doc: dict) -> dict:
    """An account as clients see it: table field names, no internal keys, no clear passwords."""
    # `doc` is the caller's own (decoded from SQLite for this request): no deep copy needed; it was
    # 28 % of the supervisor's time serving GetSIPAccounts under load (bench/api.py --profile)
    out = {key: value for key, value in doc.items() if not key.startswith("_")}
    out["Password"] = _hidden(doc.get("Password"))
    out["SIPProxies"] = [{**proxy, "Password": _hidden(proxy.get("Password"))}
                         for proxy in doc.get("SIPProxies", [])]
    return out


def _hidden(password: str | None) -> str | None:
    return v.PASSWORD_PLACEHOLDER if password else None


# -- one account ------------------------------------------------------------------------------

def account_id_of(given: dict, lenient: bool) -> str:
    """The Id the client gave ("" when none: a new account with a generated Id)."""
    value = v.first_present(given, ID_KEYS, None)
    return "" if value is None else v.identifier(value, "SIPAccount Id", lenient=lenient)


def build(given: dict, existing: dict | None, *, lenient: bool,
          dtmf_configuration_exists: Callable[[str], bool]) -> tuple[dict, bool | None]:
    """Validate `given` and apply it over `existing` (an update: omitted fields keep their values)
    or over the defaults (a create). Returns the new document without Id and the IsDefault the
    client asked for explicitly (None when it did not say)."""
    creating = existing is None
    doc: dict = copy.deepcopy(DEFAULTS) if existing is None else copy.deepcopy(existing)
    doc.pop("_auto", None)   # a client touched it: no longer the automatic account

    user = v.first_present(given, USER_KEYS)
    if user is v.ABSENT or user is None:
        if creating:
            raise missing_arg("SIPAccount UserId is required")
    else:
        doc["UserId"] = v.string(user, "UserId", lenient=lenient, max_len=256, non_empty=True)

    for name in BOOL_FIELDS:
        if name in given:
            doc[name] = v.boolean(given[name], name, lenient=lenient)
    for name in TEXT_FIELDS:
        if name in given:
            doc[name] = v.string(given[name], name, lenient=lenient, max_len=256, nullable=True) or ""
    for name in NULLABLE_TEXT_FIELDS:
        if name in given:
            doc[name] = v.string(given[name], name, lenient=lenient, max_len=256, nullable=True) or None
    if "StreamParameters" in given:
        doc["StreamParameters"] = v.string(given["StreamParameters"], "StreamParameters", lenient=lenient,
                                           nullable=True) or ""
    if "CallerId" in given:
        doc["CallerId"] = v.string(given["CallerId"], "CallerId", lenient=lenient, max_len=256,
                                   nullable=True) or ""
    if not doc["CallerId"]:
        doc["CallerId"] = doc["UserId"]

    doc["Password"] = resolve_password(given, "Password", doc.get("Password"), "Password", lenient)

    proxies = given.get("SIPProxies", v.ABSENT)
    if proxies is v.ABSENT and isinstance(given.get("SIPAccount"), list):
        proxies = given["SIPAccount"]   # the proxy example nests them as "SIPAccount": [...]
    if proxies is not v.ABSENT:
        doc["SIPProxies"] = _proxies(proxies, doc.get("SIPProxies", []), lenient)
    if "Attribute" in given:
        doc["Attribute"] = attributes(given["Attribute"], lenient)

    if "DTMFConfigurationId" in given:
        conf = given["DTMFConfigurationId"]
        conf = "" if conf is None else v.identifier(conf, "DTMFConfigurationId", lenient=lenient)
        if conf and not dtmf_configuration_exists(conf):
            raise invalid_arg(f"DTMFConfigurationId {conf!r} does not exist")
        doc["DTMFConfigurationId"] = conf

    if "MediaEncryption" in given:
        doc["MediaEncryption"] = v.enum(given["MediaEncryption"], "MediaEncryption",
                                        MEDIA_ENCRYPTION_MODES, lenient=lenient)
    if "EncryptionProtocols" in given:
        doc["EncryptionProtocols"] = _encryption_protocols(given["EncryptionProtocols"], lenient)
    if "Transport" in given:
        doc["Transport"] = v.enum(given["Transport"], "Transport", TRANSPORTS, lenient=lenient)
    if doc["SIPSEnabled"]:
        if "Transport" in given and doc["Transport"] != "tls":
            raise invalid_arg("SIPSEnabled requires Transport tls")
        doc["Transport"] = "tls"
    if doc["MediaEncryption"] != "None" and doc["Transport"] != "tls":
        raise invalid_arg("MediaEncryption other than None requires Transport tls")

    explicit_default = None
    if "IsDefault" in given:
        explicit_default = v.boolean(given["IsDefault"], "IsDefault", lenient=lenient)
    return doc, explicit_default


def _proxies(value: Any, stored: list[dict], lenient: bool) -> list[dict]:
    proxies = []
    for i, item in enumerate([] if value is None else v.as_list(value, "SIPProxies", lenient=lenient,
                                                                 single_ok=True)):
        obj = v.as_object(item, f"SIPProxies #{i}", none_is_empty=False)
        server = v.string(v.required(obj, "Server", f"SIPProxies #{i} Server"), "SIPProxy Server",
                          lenient=lenient, max_len=256, non_empty=True)
        username = v.string(obj.get("Username", ""), "SIPProxy Username", lenient=lenient, max_len=256,
                            nullable=True) or ""
        previous = None
        for entry in stored:
            if entry.get("Server") == server and entry.get("Username") == username:
                previous = entry.get("Password")
                break
        else:
            if i < len(stored):
                previous = stored[i].get("Password")
        password = resolve_password(obj, "Password", previous, f"SIPProxies #{i} Password", lenient)
        proxies.append({"Server": server, "Username": username, "Password": password})
    return proxies


def attributes(value: Any, lenient: bool) -> list[dict]:
    """Validate {Name, Value} attributes against ATTRIBUTES; unknown names are dropped (the spec:
    attributes that are not implemented are silently ignored). A name given twice: last wins."""
    chosen: dict[str, str] = {}
    for i, item in enumerate([] if value is None else v.as_list(value, "Attribute", lenient=lenient,
                                                                 single_ok=True)):
        obj = v.as_object(item, f"Attribute #{i}", none_is_empty=False)
        name = v.string(v.required(obj, "Name", f"Attribute #{i} Name"), "Attribute Name",
                        lenient=lenient, max_len=256)
        raw = v.required(obj, "Value", f"Attribute {name} Value")
        if name not in ATTRIBUTES:
            continue
        kind, _default, lo, hi = ATTRIBUTES[name]
        if kind == "bool":
            chosen[name] = "true" if v.boolean(raw, f"Attribute {name}", lenient=True) else "false"
        else:
            chosen[name] = str(v.integer(raw, f"Attribute {name}", lenient=True, lo=lo, hi=hi))
    return [{"Name": name, "Value": value} for name, value in chosen.items()]


def _encryption_protocols(value: Any, lenient: bool) -> str:
    text = v.string(value, "EncryptionProtocols", lenient=lenient, max_len=256)
    chosen = []
    for part in (p for p in re.split(r"[\s,]+", text) if p):
        protocol = v.enum(part, "EncryptionProtocols entry", ENCRYPTION_PROTOCOLS, lenient=lenient)
        if protocol not in chosen:
            chosen.append(protocol)
    if not chosen:
        raise invalid_arg("EncryptionProtocols must name at least one protocol")
    return ",".join(chosen)


# -- the default account -------------------------------------------------------------------------

def default_id(accounts: dict[str, dict]) -> str | None:
    for ident, doc in accounts.items():
        if doc.get("IsDefault"):
            return ident
    return None


def make_default(accounts: dict[str, dict], ident: str) -> None:
    for other, doc in accounts.items():
        doc["IsDefault"] = other == ident


def settle_default(accounts: dict[str, dict]) -> None:
    """Exactly one default while any account exists: the first account when none is."""
    if accounts and default_id(accounts) is None:
        make_default(accounts, next(iter(accounts)))
