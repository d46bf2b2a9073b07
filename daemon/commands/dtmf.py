"""DTMF events, triggers and configurations: Get/Set/Remove, singular and plural.

  event          {Id, Name, Enabled}                        ids dtmf_event_<n>
  trigger        {Id, DTMFSequence, DTMFEventId}            ids dtmf_trigger_<n>
  configuration  {Id, Name, DTMFTriggerId: [..], RFC2833, RFC2976}   ids dtmf_configuration_<n>

Referential integrity, each command in one transaction:
- a trigger's DTMFEventId and a configuration's trigger ids must exist (else InvalidArgVal);
- one DTMF sequence triggers one event: a Set that would give a sequence to a second trigger is
  invalid, even when both would name the same event (the spec's rule, taken literally);
- removing an event removes the triggers that emit it; removing a trigger drops it from every
  configuration; removing a configuration clears DTMFConfigurationId on the accounts using it.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Callable

from daemon.commands import Context, command
from daemon.commands import accounts as acc
from daemon.commands import validate as v
from daemon.faults import invalid_arg, missing_arg, not_found

EVENT, TRIGGER, CONFIGURATION = "dtmf_event", "dtmf_trigger", "dtmf_configuration"
MAX_NAME = 256
_SEQUENCE = re.compile(r"[0-9A-D*#]{1,64}")


@dataclass(frozen=True)
class Entity:
    kind: str
    prefix: str
    label: str              # the structure's name: DTMFEvent
    id_field: str           # the id's name in requests and responses: DTMFEventId
    id_keys: tuple[str, ...]   # spellings of the Id inside the structure
    wrappers: tuple[str, ...]  # spellings of the singular Set's wrapper key
    plural: str             # DTMFEvents


EVENTS = Entity(EVENT, "dtmf_event_", "DTMFEvent", "DTMFEventId", ("Id", "DTMFEventId"),
                ("DTMFEvent", "DTMEvent"), "DTMFEvents")
TRIGGERS = Entity(TRIGGER, "dtmf_trigger_", "DTMFTrigger", "DTMFTriggerId", ("Id", "DTMFTriggerId"),
                  ("DTMFTrigger", "DTMTrigger"), "DTMFTriggers")
# Inside a configuration "DTMFTriggerId" is the trigger list, so only Id/DTMFConfigurationId name it.
CONFIGURATIONS = Entity(CONFIGURATION, "dtmf_configuration_", "DTMFConfiguration", "DTMFConfigurationId",
                        ("Id", "DTMFConfigurationId"), ("DTMFConfiguration",), "DTMFConfigurations")


# -- validation of one structure -----------------------------------------------------------------------

def normalise_sequence(value: Any, lenient: bool) -> str:
    text = v.string(value, "DTMFSequence", lenient=lenient, max_len=64).upper()
    if not _SEQUENCE.fullmatch(text):
        raise invalid_arg("DTMFSequence must be 1 to 64 of 0-9, A-D, * and #")
    return text


def _name(given: dict, existing: dict | None, label: str, lenient: bool) -> str:
    if "Name" in given:
        return v.string(given["Name"], f"{label} Name", lenient=lenient, max_len=MAX_NAME)
    if existing is None:
        raise missing_arg(f"{label} Name is required")
    return existing["Name"]


def build_event(tx, given: dict, existing: dict | None, ident: str, lenient: bool) -> dict:
    doc = {"Name": _name(given, existing, "DTMFEvent", lenient),
           "Enabled": existing["Enabled"] if existing else True}
    if "Enabled" in given:   # only in the spec's pseudocode; kept so the events can be switched off
        doc["Enabled"] = v.boolean(given["Enabled"], "DTMFEvent Enabled", lenient=lenient)
    return doc


def build_trigger(tx, given: dict, existing: dict | None, ident: str, lenient: bool) -> dict:
    doc = dict(existing) if existing else {}
    if "DTMFSequence" in given:
        doc["DTMFSequence"] = normalise_sequence(given["DTMFSequence"], lenient)
    if "DTMFEventId" in given:
        event = v.identifier(given["DTMFEventId"], "DTMFEventId", lenient=lenient)
        if tx.get_object(EVENT, event) is None:
            raise invalid_arg(f"DTMFEventId {event!r} does not exist")
        doc["DTMFEventId"] = event
    for field in ("DTMFSequence", "DTMFEventId"):
        if field not in doc:
            raise missing_arg(f"DTMFTrigger {field} is required")
    for other in tx.list_objects(TRIGGER):
        if other["Id"] != ident and other["DTMFSequence"] == doc["DTMFSequence"]:
            raise invalid_arg(f"DTMFSequence {doc['DTMFSequence']} already triggers an event "
                              f"(DTMFTrigger {other['Id']}); update that trigger instead")
    return {"DTMFSequence": doc["DTMFSequence"], "DTMFEventId": doc["DTMFEventId"]}


def build_configuration(tx, given: dict, existing: dict | None, ident: str, lenient: bool) -> dict:
    doc = {"Name": _name(given, existing, "DTMFConfiguration", lenient),
           "DTMFTriggerId": list(existing["DTMFTriggerId"]) if existing else [],
           "RFC2833": existing["RFC2833"] if existing else True,
           "RFC2976": existing["RFC2976"] if existing else True}
    # The table calls the list DTMFTriggerId, the pseudocode DTMFSequence.
    triggers = v.first_present(given, ("DTMFTriggerId", "DTMFSequence"))
    if triggers is not v.ABSENT:
        doc["DTMFTriggerId"] = _trigger_ids(tx, triggers, lenient)
    for field in ("RFC2833", "RFC2976"):
        if field in given:
            doc[field] = v.boolean(given[field], f"DTMFConfiguration {field}", lenient=lenient)
    return doc


def _trigger_ids(tx, value: Any, lenient: bool) -> list[str]:
    """Trigger ids (a list, or one string). An entry that is no trigger id but the sequence of a
    trigger stands for that trigger, for clients that read the pseudocode's "DTMFSequence" literally."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else v.as_list(value, "DTMFTriggerId", lenient=lenient)
    triggers = tx.list_objects(TRIGGER)
    known = {t["Id"] for t in triggers}
    by_sequence = {t["DTMFSequence"]: t["Id"] for t in triggers}
    ids: list[str] = []
    for item in items:
        ident = v.identifier(item, "DTMFTriggerId", lenient=lenient)
        if ident not in known:
            ident = by_sequence.get(ident.upper(), ident)
        if ident not in known:
            raise invalid_arg(f"DTMFTriggerId {ident!r} does not exist")
        if ident not in ids:
            ids.append(ident)
    return ids


Builder = Callable[[Any, dict, "dict | None", str, bool], dict]
BUILDERS: dict[str, Builder] = {EVENT: build_event, TRIGGER: build_trigger, CONFIGURATION: build_configuration}
FIELD_ORDER = {EVENT: ("Id", "Name", "Enabled"),
               TRIGGER: ("Id", "DTMFSequence", "DTMFEventId"),
               CONFIGURATION: ("Id", "Name", "DTMFTriggerId", "RFC2833", "RFC2976")}


def view(kind: str, doc: dict) -> dict:
    return {field: copy.deepcopy(doc[field]) for field in FIELD_ORDER[kind] if field in doc}


# -- generic Get/Set/Remove ---------------------------------------------------------------------------

def save(ctx: Context, entity: Entity, items: list[dict]) -> list[str]:
    """Create or update each item, all in one transaction. Returns ids in request order."""
    build = BUILDERS[entity.kind]
    saved: list[str] = []
    with ctx.store.transaction() as tx:
        for given in items:
            raw_id = v.first_present(given, entity.id_keys, None)
            ident = "" if raw_id is None else v.identifier(raw_id, f"{entity.label} Id", lenient=ctx.lenient)
            existing = tx.get_object(entity.kind, ident) if ident else None
            doc = build(tx, given, existing, ident if existing else "", ctx.lenient)
            if existing is None:
                ident = ident or tx.next_id(entity.kind, entity.prefix)
            tx.put_object(entity.kind, ident, {"Id": ident, **doc})
            saved.append(ident)
    ctx.runtime.config_changed("dtmf")
    return saved


def get_one(ctx: Context, entity: Entity, params: Any) -> dict:
    ident = v.single_id(params, (entity.id_field, "Id"), entity.id_field, lenient=ctx.lenient)
    doc = ctx.store.get_object(entity.kind, ident)
    if doc is None:
        raise not_found(f"No {entity.label} with {entity.id_field} {ident!r}")
    return {entity.label: view(entity.kind, doc)}


def get_many(ctx: Context, entity: Entity, params: Any) -> dict:
    ids = v.id_list(params, (entity.id_field, "Id"), entity.id_field, lenient=ctx.lenient)
    docs = ctx.store.list_objects(entity.kind)
    if ids is not None:
        by_id = {doc["Id"]: doc for doc in docs}
        docs = [by_id[ident] for ident in ids if ident in by_id]
    return {entity.label: [view(entity.kind, doc) for doc in docs]}


def set_one(ctx: Context, entity: Entity, params: Any) -> dict:
    given, _request = v.unwrap_one(params, entity.wrappers, entity.label)
    return {entity.id_field: save(ctx, entity, [given])[0]}


def set_many(ctx: Context, entity: Entity, params: Any) -> dict:
    items = v.unwrap_many(params, entity.label, entity.plural, entity.label, lenient=ctx.lenient,
                          aliases=entity.wrappers[1:])
    return {entity.id_field: save(ctx, entity, items)}


def remove(ctx: Context, entity: Entity, ids: list[str]) -> None:
    """Remove the given ids (unknown ones ignored) and what depends on them, in one transaction."""
    accounts_changed = False
    with ctx.store.transaction() as tx:
        removed = {ident for ident in ids if tx.delete_object(entity.kind, ident)}
        if not removed:
            return
        if entity.kind == EVENT:   # cascade: the triggers that emit a removed event go too
            triggers = {t["Id"] for t in tx.list_objects(TRIGGER) if t["DTMFEventId"] in removed}
            for ident in triggers:
                tx.delete_object(TRIGGER, ident)
            removed_triggers = triggers
        elif entity.kind == TRIGGER:
            removed_triggers = removed
        else:
            removed_triggers = set()
        if removed_triggers:
            for conf in tx.list_objects(CONFIGURATION):
                kept = [t for t in conf["DTMFTriggerId"] if t not in removed_triggers]
                if kept != conf["DTMFTriggerId"]:
                    tx.put_object(CONFIGURATION, conf["Id"], {**conf, "DTMFTriggerId": kept})
        if entity.kind == CONFIGURATION:
            for account in tx.list_objects(acc.KIND):
                if account.get("DTMFConfigurationId") in removed:
                    tx.put_object(acc.KIND, account["Id"], {**account, "DTMFConfigurationId": ""})
                    accounts_changed = True
    ctx.runtime.config_changed("dtmf")
    if accounts_changed:
        ctx.runtime.config_changed("sip_accounts")


def remove_one(ctx: Context, entity: Entity, params: Any) -> dict:
    remove(ctx, entity, [v.single_id(params, (entity.id_field, "Id"), entity.id_field, lenient=ctx.lenient)])
    return {}


def remove_many(ctx: Context, entity: Entity, params: Any) -> dict:
    remove(ctx, entity, v.id_list(params, (entity.id_field, "Id"), entity.id_field, lenient=ctx.lenient) or [])
    return {}


# -- registration: 18 commands ----------------------------------------------------------------------

def _register(entity: Entity, singular: str, plural: str) -> None:
    """Register Get/Set/Remove<singular> and Get/Set/Remove<plural> for `entity`."""
    handlers = {
        f"Get{singular}": ("viewer", get_one), f"Get{plural}": ("viewer", get_many),
        f"Set{singular}": ("admin", set_one), f"Set{plural}": ("admin", set_many),
        f"Remove{singular}": ("admin", remove_one), f"Remove{plural}": ("admin", remove_many),
    }
    for name, (role, action) in handlers.items():
        def handler(ctx: Context, params: dict, _action=action) -> dict:
            return _action(ctx, entity, params)
        handler.__name__ = handler.__qualname__ = name
        command(name, role=role)(handler)


_register(EVENTS, "DTMFEvent", "DTMFEvents")
_register(TRIGGERS, "DTMFTrigger", "DTMFTriggers")
_register(CONFIGURATIONS, "DTMFConfiguration", "DTMFConfigurations")
