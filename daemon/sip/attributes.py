"""The SIP account attributes this station implements (GetSupportedSIPAccountAttributes).

One definition for both sides: the commands validate and advertise them, the engine config reads
them back from a stored account. Kept free of pjsua2 and of daemon.commands so both can import it.
Values travel as strings in the account's `Attribute` list: [{"Name": ..., "Value": ...}].
"""
from __future__ import annotations

from typing import Any

# name -> (type, default, lowest, highest)
ATTRIBUTES: dict[str, tuple[str, str, int | None, int | None]] = {
    "DisableTCPSwitch": ("bool", "false", None, None),   # keep large UDP requests on UDP
    "MaxCallDuration": ("int", "0", 0, 86400),            # seconds, 0 = no limit
    "RegistrationInterval": ("int", "300", 30, 86400),    # seconds between re-registrations
}


def default_int(name: str) -> int:
    return int(ATTRIBUTES[name][1])


def default_bool(name: str) -> bool:
    return ATTRIBUTES[name][1] == "true"


def attribute_value(doc: dict, name: str) -> str:
    """An account's value for `name`: the last entry of that name in its `Attribute` list, else a
    top-level field of that name (older documents), else the default. Always a string."""
    value: Any = None
    attributes = doc.get("Attribute")
    for item in attributes if isinstance(attributes, list) else []:
        if isinstance(item, dict) and item.get("Name") == name and item.get("Value") is not None:
            value = item["Value"]
    if value is None:
        value = doc.get(name)
    if value is None:
        return ATTRIBUTES[name][1]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def attribute_int(doc: dict, name: str) -> int:
    """The value as an int within the attribute's bounds; the default when it is not a number."""
    _kind, default, lo, hi = ATTRIBUTES[name]
    try:
        value = int(attribute_value(doc, name))
    except ValueError:
        return int(default)
    if lo is not None:
        value = max(value, lo)
    if hi is not None:
        value = min(value, hi)
    return value


def attribute_bool(doc: dict, name: str) -> bool:
    """The value as a bool ("true"/"1"/"yes", any case); anything else is false."""
    return attribute_value(doc, name).lower() in ("true", "1", "yes")
