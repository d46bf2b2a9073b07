"""The SIP configuration singleton: Get/SetSIPConfiguration, GetSupportedSIPConfigurationAttributes.

Stored in settings["sip_configuration"] with the current field names only; the deprecated
ApplyAllowedURIs/AllowedURIs are accepted on input as spellings of ApplyAccessList/AccessList and
mirrored on output, so old clients keep reading what they wrote.
"""
from __future__ import annotations

import copy
import re
from typing import Any

from daemon.commands import Context, command
from daemon.commands import validate as v
from daemon.faults import invalid_arg

SETTING_KEY = "sip_configuration"
MAX_CALLING_TIMEOUT = 600

DEFAULTS: dict[str, Any] = {
    "SIPEnabled": False,
    "SIPPort": 5060,
    "SIPTLSPort": 5061,
    "STUNEnabled": False,
    "STUNServers": [],
    "TURNEnabled": False,
    "TURNServers": [],
    "ICEEnabled": False,
    "AllowIncomingCalls": False,
    "ApplyUserAuthentication": False,
    "AllowedUsers": [],
    "Attribute": [],
    "RTPStartPort": 4000,
    "CallingTimeout": 60,
    "ApplyAccessList": False,
    "AccessList": [],
    "AccessListPolicy": "Allow",
}

BOOL_FIELDS = ("SIPEnabled", "STUNEnabled", "TURNEnabled", "ICEEnabled", "AllowIncomingCalls",
               "ApplyUserAuthentication")
# field -> (lowest, highest)
INT_FIELDS = {"SIPPort": (1, 65535), "SIPTLSPort": (1, 65535), "RTPStartPort": (1, 65535),
              "CallingTimeout": (1, MAX_CALLING_TIMEOUT)}
ACCESS_LIST_POLICIES = ("Allow", "Block")
MAX_ATTRIBUTE_VALUE = 1024
# We implement no SIP configuration attributes, so none is advertised and every one is ignored.
SUPPORTED_ATTRIBUTES: list[dict] = []

_LIST_SEPARATORS = re.compile(r"[\s,]+")


def load(store_or_tx) -> dict:
    """The effective SIP configuration with clear-text secrets (for the runtime, not for clients)."""
    stored = store_or_tx.get_setting(SETTING_KEY) or {}
    config = copy.deepcopy(DEFAULTS)
    config.update({k: v for k, v in stored.items() if k in DEFAULTS})
    return config


def public_view(config: dict) -> dict:
    """What GetSIPConfiguration answers: passwords replaced, deprecated names mirrored."""
    out = copy.deepcopy(config)
    out["TURNServers"] = [
        {**server, "Password": v.PASSWORD_PLACEHOLDER if server.get("Password") else None}
        for server in config["TURNServers"]]
    out["ApplyAllowedURIs"] = config["ApplyAccessList"]
    out["AllowedURIs"] = list(config["AccessList"])
    return out


@command("GetSupportedSIPConfigurationAttributes", role="viewer")
def get_supported_sip_configuration_attributes(ctx: Context, params: dict) -> dict:
    v.as_object(params, "request")
    return {"AttributeInfo": copy.deepcopy(SUPPORTED_ATTRIBUTES)}


@command("GetSIPConfiguration", role="viewer")
def get_sip_configuration(ctx: Context, params: dict) -> dict:
    v.as_object(params, "request")
    return {"SIPConfiguration": public_view(load(ctx.store))}


@command("SetSIPConfiguration", role="admin")
def set_sip_configuration(ctx: Context, params: dict) -> dict:
    request = v.as_object(params, "request")
    given = v.as_object(v.required(request, "SIPConfiguration"), "SIPConfiguration", none_is_empty=False)
    # KeepCurrent belongs beside SIPConfiguration; a client that puts it inside is understood too.
    keep = request.get("KeepCurrent", given.get("KeepCurrent"))
    keep_current = True if keep is None else v.boolean(keep, "KeepCurrent", lenient=ctx.lenient)
    with ctx.store.transaction() as tx:
        current = load(tx)
        base = current if keep_current else copy.deepcopy(DEFAULTS)
        config = merge(base, given, current, lenient=ctx.lenient)
        tx.put_setting(SETTING_KEY, config)
    ctx.runtime.config_changed("sip_configuration")
    return {}


def merge(base: dict, given: dict, current: dict, *, lenient: bool) -> dict:
    """`base` with the fields of `given` validated and applied. `current` supplies stored TURN
    passwords for placeholders whatever KeepCurrent says."""
    config = copy.deepcopy(base)
    for name in BOOL_FIELDS:
        if name in given:
            config[name] = v.boolean(given[name], name, lenient=lenient)
    for name, (lo, hi) in INT_FIELDS.items():
        if name in given:
            config[name] = v.integer(given[name], name, lenient=lenient, lo=lo, hi=hi)
    if "STUNServers" in given:
        config["STUNServers"] = _stun_servers(given["STUNServers"], lenient)
    if "TURNServers" in given:
        config["TURNServers"] = _turn_servers(given["TURNServers"], current["TURNServers"], lenient)
    if "AllowedUsers" in given:
        config["AllowedUsers"] = _allowed_users(given["AllowedUsers"], lenient)
    if "Attribute" in given:
        config["Attribute"] = _attributes(given["Attribute"], lenient)
    # The deprecated names first, so the current names win when a client sends both.
    for field in ("ApplyAllowedURIs", "ApplyAccessList"):
        if field in given:
            config["ApplyAccessList"] = v.boolean(given[field], field, lenient=lenient)
    for field in ("AllowedURIs", "AccessList"):
        if field in given:
            config["AccessList"] = access_list(given[field], field, lenient)
    if "AccessListPolicy" in given:
        policy = given["AccessListPolicy"]
        config["AccessListPolicy"] = ("Allow" if policy is None else
                                      v.enum(policy, "AccessListPolicy", ACCESS_LIST_POLICIES, lenient=lenient))
    if config["SIPPort"] == config["SIPTLSPort"]:
        raise invalid_arg("SIPPort and SIPTLSPort must differ")
    return config


def access_list(value: Any, what: str, lenient: bool) -> list[str]:
    """A list of SIP URIs, or one string of them separated by commas or spaces (the table says String)."""
    if value is None:
        return []
    if isinstance(value, str):
        items: list = [item for item in _LIST_SEPARATORS.split(value) if item]
    else:
        items = v.as_list(value, what, lenient=lenient)
    uris: list[str] = []
    for item in items:
        uri = v.string(item, f"{what} entry", lenient=lenient, max_len=256, non_empty=True)
        if _LIST_SEPARATORS.search(uri):
            raise invalid_arg(f"{what} entry must not contain spaces or commas")
        if uri not in uris:
            uris.append(uri)
    return uris


def _stun_servers(value: Any, lenient: bool) -> list[dict]:
    servers = []
    for i, item in enumerate([] if value is None else v.as_list(value, "STUNServers", lenient=lenient)):
        if isinstance(item, str):
            item = {"Server": item}
        obj = v.as_object(item, f"STUNServers #{i}", none_is_empty=False)
        servers.append({"Server": v.string(v.required(obj, "Server", f"STUNServers #{i} Server"),
                                           "STUNServer Server", lenient=lenient, max_len=256, non_empty=True)})
    return servers


def _turn_servers(value: Any, stored: list[dict], lenient: bool) -> list[dict]:
    servers = []
    for i, item in enumerate([] if value is None else v.as_list(value, "TURNServers", lenient=lenient)):
        obj = v.as_object(item, f"TURNServers #{i}", none_is_empty=False)
        server = v.string(v.required(obj, "Server", f"TURNServers #{i} Server"), "TURNServer Server",
                          lenient=lenient, max_len=256, non_empty=True)
        username = v.string(obj.get("Username", ""), "TURNServer Username", lenient=lenient,
                            max_len=256, nullable=True) or ""
        previous = _matching_secret(stored, i, server, username, key="Server")
        password = resolve_password(obj, "Password", previous, f"TURNServers #{i} Password", lenient)
        servers.append({"Server": server, "Username": username, "Password": password})
    return servers


def _matching_secret(stored: list[dict], index: int, server: str, username: str, *, key: str) -> str | None:
    """The stored password of the same server entry: same server and user name, else same position."""
    for entry in stored:
        if entry.get(key) == server and entry.get("Username", "") == username:
            return entry.get("Password")
    if index < len(stored):
        return stored[index].get("Password")
    return None


def resolve_password(obj: dict, key: str, previous: str | None, what: str, lenient: bool) -> str | None:
    """The password to store: absent or the placeholder keeps `previous`, "" or null clears it."""
    if key not in obj:
        return previous
    value = obj[key]
    if value == v.PASSWORD_PLACEHOLDER:
        if previous is None:
            raise invalid_arg(f"{what} is the placeholder but no password is stored")
        return previous
    text = v.string(value, what, lenient=lenient, max_len=256, nullable=True)
    return text or None


def _allowed_users(value: Any, lenient: bool) -> list:
    # "For future use" in the spec and its structure is not defined: kept as given, not applied.
    users: list[str | dict] = []
    for i, item in enumerate([] if value is None else v.as_list(value, "AllowedUsers", lenient=lenient)):
        if isinstance(item, str):
            users.append(v.string(item, "AllowedUsers entry", lenient=lenient, max_len=256))
            continue
        obj = v.as_object(item, f"AllowedUsers #{i}", none_is_empty=False)
        users.append({v.string(k, "AllowedUsers key", lenient=lenient, max_len=64):
                      v.string(val, f"AllowedUsers #{i} {k}", lenient=lenient, max_len=256, nullable=True)
                      for k, val in obj.items()})
    return users


def _attributes(value: Any, lenient: bool) -> list[dict]:
    """Attributes are checked for shape; names we do not implement are dropped (spec: ignored)."""
    for i, item in enumerate([] if value is None else v.as_list(value, "Attribute", lenient=lenient,
                                                                 single_ok=True)):
        obj = v.as_object(item, f"Attribute #{i}", none_is_empty=False)
        v.string(v.required(obj, "Name", f"Attribute #{i} Name"), "Attribute Name", lenient=lenient, max_len=256)
        v.string(obj.get("Value", ""), "Attribute Value", lenient=lenient, max_len=MAX_ATTRIBUTE_VALUE,
                 nullable=True)
    return []
