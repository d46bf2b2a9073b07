"""DTMF events, triggers and configurations: the spec's pseudocode workflows, the one-event-per-
sequence rule, wrappings and spellings, referential integrity and atomicity."""
from __future__ import annotations

import pytest

from tests.test_commands_fakes import is_invalid, is_missing, is_not_found


def test_open_door_workflow(st):
    """Set up a DTMF event: event -> trigger -> configuration -> account, as in the pseudocode."""
    event_id = st.run("SetDTMFEvent", {"Name": "OpenDoorEvent", "Enabled": True})["DTMFEventId"]
    assert event_id == "dtmf_event_0"
    trigger_id = st.run("SetDTMFTrigger", {"DTMFSequence": "#1234#", "DTMFEventId": event_id})["DTMFTriggerId"]
    assert trigger_id == "dtmf_trigger_0"
    conf_id = st.run("SetDTMFConfiguration", {"Name": "OpenDoorDTMFConf",
                                              "DTMFTriggerId": [trigger_id]})["DTMFConfigurationId"]
    assert conf_id == "dtmf_configuration_0"
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "6001"}})
    account = st.run("GetSIPAccount", {"AccountId": "sip_account_0"})
    account["SIPAccount"]["DTMFConfigurationId"] = conf_id
    assert st.run("SetSIPAccount", account) == {"SIPAccountId": "sip_account_0"}
    assert st.run("GetSIPAccount", {"SIPAccountId": "sip_account_0"})["SIPAccount"]["DTMFConfigurationId"] == conf_id
    assert st.run("GetDTMFEvent", {"DTMFEventId": event_id}) == \
        {"DTMFEvent": {"Id": event_id, "Name": "OpenDoorEvent", "Enabled": True}}
    assert st.run("GetDTMFTrigger", {"DTMFTriggerId": trigger_id}) == \
        {"DTMFTrigger": {"Id": trigger_id, "DTMFSequence": "#1234#", "DTMFEventId": event_id}}
    assert st.run("GetDTMFConfiguration", {"DTMFConfigurationId": conf_id}) == \
        {"DTMFConfiguration": {"Id": conf_id, "Name": "OpenDoorDTMFConf", "DTMFTriggerId": [trigger_id],
                               "RFC2833": True, "RFC2976": True}}
    assert st.runtime.changed[:3] == ["dtmf", "dtmf", "dtmf"]


def test_account_pseudocode_with_the_field_set_beside_the_wrapper(st):
    """`account["DTMFConfigurationId"] = id` on the whole GetSIPAccount answer puts it at the top."""
    event = st.run("SetDTMFEvent", {"DTMFEvent": {"Name": "E"}})["DTMFEventId"]
    trigger = st.run("SetDTMFTrigger", {"DTMFTrigger": {"DTMFSequence": "1", "DTMFEventId": event}})["DTMFTriggerId"]
    conf = st.run("SetDTMFConfiguration", {"DTMFConfiguration": {"Name": "C", "DTMFTriggerId": [trigger]}})
    account = st.run("GetSIPAccount", {"AccountId": "peer-to-peer"})
    account["DTMFConfigurationId"] = conf["DTMFConfigurationId"]
    st.run("SetSIPAccount", account)
    assert st.run("GetSIPAccount", {"SIPAccountId": "peer-to-peer"})["SIPAccount"]["DTMFConfigurationId"] == \
        conf["DTMFConfigurationId"]


def test_full_access_and_limited_workflow(st):
    events = st.run("SetDTMFEvents", [{"Name": "Event A"}, {"Name": "Event B"}])["DTMFEventId"]
    assert events == ["dtmf_event_0", "dtmf_event_1"]
    triggers = st.run("SetDTMFTriggers", [{"DTMFSequence": "1", "DTMFEventId": events[0]},
                                          {"DTMFSequence": "2", "DTMFEventId": events[1]}])["DTMFTriggerId"]
    assert triggers == ["dtmf_trigger_0", "dtmf_trigger_1"]
    full = st.run("SetDTMFConfiguration", {"Name": "Full Access", "DTMFSequence": triggers})["DTMFConfigurationId"]
    limited = st.run("SetDTMFConfiguration", {"Name": "Limited", "DTMFSequence": [triggers[0]]})["DTMFConfigurationId"]
    confs = st.run("GetDTMFConfigurations", {})["DTMFConfiguration"]
    assert [(c["Id"], c["Name"], c["DTMFTriggerId"]) for c in confs] == [
        (full, "Full Access", triggers), (limited, "Limited", [triggers[0]])]


def test_one_sequence_one_event_then_update_by_id(st):
    a, b = st.run("SetDTMFEvents", [{"Name": "Event A"}, {"Name": "Event B"}])["DTMFEventId"]
    t1234, t5678 = st.run("SetDTMFTriggers", [{"DTMFSequence": "1234", "DTMFEventId": a},
                                             {"DTMFSequence": "5678", "DTMFEventId": b}])["DTMFTriggerId"]
    st.runtime.changed.clear()
    assert is_invalid(st.fault("SetDTMFTrigger", {"DTMFSequence": "1234", "DTMFEventId": b}))
    # the same event does not make a second trigger for the sequence acceptable either
    assert is_invalid(st.fault("SetDTMFTrigger", {"DTMFSequence": "1234", "DTMFEventId": a}))
    assert st.runtime.changed == []
    assert st.run("SetDTMFTrigger", {"DTMFTriggerId": t1234, "DTMFEventId": b}) == {"DTMFTriggerId": t1234}
    got = st.run("GetDTMFTriggers", {})["DTMFTrigger"]
    assert got == [{"Id": t1234, "DTMFSequence": "1234", "DTMFEventId": b},
                   {"Id": t5678, "DTMFSequence": "5678", "DTMFEventId": b}]
    # re-stating its own sequence is no conflict
    st.run("SetDTMFTrigger", {"DTMFTrigger": {"Id": t1234, "DTMFSequence": "1234", "DTMFEventId": a}})


def test_conflict_inside_one_plural_set_changes_nothing(st):
    (a,) = st.run("SetDTMFEvents", {"DTMFEvent": [{"Name": "A"}]})["DTMFEventId"]
    assert is_invalid(st.fault("SetDTMFTriggers", {"DTMFTrigger": [{"DTMFSequence": "9", "DTMFEventId": a},
                                                                   {"DTMFSequence": "9", "DTMFEventId": a}]}))
    assert st.run("GetDTMFTriggers")["DTMFTrigger"] == []


def test_sequence_alphabet(st):
    (a,) = st.run("SetDTMFEvents", [{"Name": "A"}])["DTMFEventId"]
    ident = st.run("SetDTMFTrigger", {"DTMFSequence": "0123456789abcd*#", "DTMFEventId": a})["DTMFTriggerId"]
    assert st.run("GetDTMFTrigger", {"DTMFTriggerId": ident})["DTMFTrigger"]["DTMFSequence"] == "0123456789ABCD*#"
    for bad in ("", "12E", "1 2", "x", "1" * 65, 12, None, ["1"]):
        assert is_invalid(st.fault("SetDTMFTrigger", {"DTMFSequence": bad, "DTMFEventId": a})), bad
    st.run("SetDTMFTrigger", {"DTMFSequence": "1" * 64, "DTMFEventId": a})


def test_trigger_needs_an_existing_event_and_both_fields(st):
    assert is_invalid(st.fault("SetDTMFTrigger", {"DTMFSequence": "1", "DTMFEventId": "nope"}))
    (a,) = st.run("SetDTMFEvents", [{"Name": "A"}])["DTMFEventId"]
    assert is_missing(st.fault("SetDTMFTrigger", {"DTMFTrigger": {"DTMFSequence": "1"}}))
    assert is_missing(st.fault("SetDTMFTrigger", {"DTMFTrigger": {"DTMFEventId": a}}))
    assert is_missing(st.fault("SetDTMFTrigger", {}))


def test_wrappers_typos_and_shapes(st):
    assert st.run("SetDTMFEvent", {"DTMEvent": {"Name": "typo"}}) == {"DTMFEventId": "dtmf_event_0"}
    assert st.run("SetDTMFEvents", {"DTMFEvents": {"DTMFEvent": [{"Name": "x"}]}}) == {"DTMFEventId": ["dtmf_event_1"]}
    assert st.run("SetDTMFEvents", {"DTMFEvent": {"Name": "single"}}) == {"DTMFEventId": ["dtmf_event_2"]}
    assert st.run("SetDTMFTrigger", {"DTMTrigger": {"DTMFSequence": "1", "DTMFEventId": "dtmf_event_0"}}) == \
        {"DTMFTriggerId": "dtmf_trigger_0"}
    assert st.run("SetDTMFTriggers", {"DTMFTriggers": [{"DTMFSequence": "2", "DTMFEventId": "dtmf_event_0"}]}) == \
        {"DTMFTriggerId": ["dtmf_trigger_1"]}
    assert st.run("SetDTMFConfigurations", {"DTMFConfigurations": {"DTMFConfiguration": [
        {"Name": "c", "DTMFTriggerId": "dtmf_trigger_1"}]}}) == {"DTMFConfigurationId": ["dtmf_configuration_0"]}
    assert st.run("GetDTMFConfiguration", {"DTMFConfigurationId": "dtmf_configuration_0"})["DTMFConfiguration"][
        "DTMFTriggerId"] == ["dtmf_trigger_1"]
    assert is_invalid(st.fault("SetDTMFEvent", {"DTMFEvent": [{"Name": "list"}]}))
    assert is_invalid(st.fault("SetDTMFEvents", {"DTMFEvent": "x"}))


def test_configuration_may_name_triggers_by_their_sequence(st):
    (a,) = st.run("SetDTMFEvents", [{"Name": "A"}])["DTMFEventId"]
    (t,) = st.run("SetDTMFTriggers", [{"DTMFSequence": "#1234#", "DTMFEventId": a}])["DTMFTriggerId"]
    conf = st.run("SetDTMFConfiguration", {"Name": "c", "DTMFSequence": ["#1234#"]})["DTMFConfigurationId"]
    assert st.run("GetDTMFConfiguration", {"DTMFConfigurationId": conf})["DTMFConfiguration"]["DTMFTriggerId"] == [t]


def test_configuration_validation(st):
    assert is_invalid(st.fault("SetDTMFConfiguration", {"Name": "c", "DTMFTriggerId": ["nope"]}))
    assert is_missing(st.fault("SetDTMFConfiguration", {"DTMFConfiguration": {"DTMFTriggerId": []}}))
    assert is_invalid(st.fault("SetDTMFConfiguration", {"Name": "c", "RFC2833": "yes"}))
    conf = st.run("SetDTMFConfiguration", {"Name": "c", "RFC2833": False})["DTMFConfigurationId"]
    st.run("SetDTMFConfiguration", {"DTMFConfiguration": {"Id": conf, "RFC2976": False}})
    got = st.run("GetDTMFConfiguration", {"DTMFConfigurationId": conf})["DTMFConfiguration"]
    assert (got["Name"], got["RFC2833"], got["RFC2976"], got["DTMFTriggerId"]) == ("c", False, False, [])


def test_event_enabled_and_update(st):
    ident = st.run("SetDTMFEvent", {"DTMFEvent": {"Name": "E"}})["DTMFEventId"]
    assert st.run("GetDTMFEvent", {"DTMFEventId": ident})["DTMFEvent"]["Enabled"] is True
    st.run("SetDTMFEvent", {"DTMFEvent": {"Id": ident, "Enabled": False}})
    assert st.run("GetDTMFEvent", {"DTMFEventId": ident})["DTMFEvent"] == {"Id": ident, "Name": "E", "Enabled": False}
    assert st.run("SetDTMFEvent", {"DTMFEvent": {"Id": "named", "Name": "N"}}) == {"DTMFEventId": "named"}
    assert is_missing(st.fault("SetDTMFEvent", {"DTMFEvent": {"Enabled": True}}))
    assert is_invalid(st.fault("SetDTMFEvent", {"DTMFEvent": {"Name": 5}}))
    assert is_invalid(st.fault("SetDTMFEvent", {"DTMFEvent": {"Name": "n", "Id": "i" * 65}}))


def test_gets_not_found_and_plural_filters(st):
    st.run("SetDTMFEvents", [{"Name": "A"}, {"Name": "B"}, {"Name": "C"}])
    for name, key in (("GetDTMFEvent", "DTMFEventId"), ("GetDTMFTrigger", "DTMFTriggerId"),
                      ("GetDTMFConfiguration", "DTMFConfigurationId")):
        assert is_not_found(st.fault(name, {key: "nope"}))
        assert is_missing(st.fault(name, {}))
    got = st.run("GetDTMFEvents", {"DTMFEventId": ["dtmf_event_2", "nope", "dtmf_event_0"]})["DTMFEvent"]
    assert [e["Id"] for e in got] == ["dtmf_event_2", "dtmf_event_0"]
    assert [e["Name"] for e in st.run("GetDTMFEvents", {"DTMFEventId": "dtmf_event_1"})["DTMFEvent"]] == ["B"]
    assert len(st.run("GetDTMFEvents", {"DTMFEventId": []})["DTMFEvent"]) == 3


def _setup_chain(st):
    a, b = st.run("SetDTMFEvents", [{"Name": "A"}, {"Name": "B"}])["DTMFEventId"]
    t1, t2, t3 = st.run("SetDTMFTriggers", [{"DTMFSequence": "1", "DTMFEventId": a},
                                            {"DTMFSequence": "2", "DTMFEventId": b},
                                            {"DTMFSequence": "3", "DTMFEventId": a}])["DTMFTriggerId"]
    conf = st.run("SetDTMFConfiguration", {"Name": "all", "DTMFTriggerId": [t1, t2, t3]})["DTMFConfigurationId"]
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "u", "DTMFConfigurationId": conf}})
    return (a, b), (t1, t2, t3), conf


def test_removing_an_event_removes_its_triggers_and_their_configuration_entries(st):
    (a, b), (t1, t2, t3), conf = _setup_chain(st)
    st.runtime.changed.clear()
    assert st.run("RemoveDTMFEvent", {"DTMFEventId": a}) == {}
    assert [t["Id"] for t in st.run("GetDTMFTriggers")["DTMFTrigger"]] == [t2]
    assert st.run("GetDTMFConfiguration", {"DTMFConfigurationId": conf})["DTMFConfiguration"]["DTMFTriggerId"] == [t2]
    assert st.runtime.changed == ["dtmf"]


def test_removing_a_trigger_drops_it_from_configurations(st):
    _events, (t1, t2, t3), conf = _setup_chain(st)
    st.run("RemoveDTMFTriggers", {"DTMFTriggerId": [t2, "nope"]})
    assert st.run("GetDTMFConfiguration", {"DTMFConfigurationId": conf})["DTMFConfiguration"]["DTMFTriggerId"] == \
        [t1, t3]


def test_removing_a_configuration_clears_it_on_accounts(st):
    _events, _triggers, conf = _setup_chain(st)
    st.runtime.changed.clear()
    st.run("RemoveDTMFConfiguration", {"DTMFConfigurationId": conf})
    assert st.run("GetDTMFConfigurations")["DTMFConfiguration"] == []
    assert st.run("GetSIPAccount", {"SIPAccountId": "sip_account_0"})["SIPAccount"]["DTMFConfigurationId"] == ""
    assert st.runtime.changed == ["dtmf", "sip_accounts"]


def test_remove_unknown_is_ignored(st):
    assert st.run("RemoveDTMFEvent", {"DTMFEventId": "nope"}) == {}
    assert st.run("RemoveDTMFEvents", {"DTMFEventId": ["nope"]}) == {}
    assert st.run("RemoveDTMFTriggers", {}) == {}
    assert st.run("RemoveDTMFConfigurations", {"DTMFConfigurationId": "nope"}) == {}
    assert st.runtime.changed == []


def test_plural_set_is_atomic(st):
    st.run("SetDTMFEvents", [{"Name": "A"}])
    fault = st.fault("SetDTMFEvents", [{"Name": "B"}, {"Name": "C"}, {"Id": "x" * 65, "Name": "D"}])
    assert is_invalid(fault)
    assert [e["Name"] for e in st.run("GetDTMFEvents")["DTMFEvent"]] == ["A"]


def test_lenient_forms(st):
    st.run("SetDTMFEvents", {"DTMFEvent": {"0": {"Name": "A", "Enabled": "false"}, "1": {"Name": "B"}}},
           lenient=True)
    got = st.run("GetDTMFEvents")["DTMFEvent"]
    assert [(e["Name"], e["Enabled"]) for e in got] == [("A", False), ("B", True)]
    st.run("SetDTMFTrigger", {"DTMFTrigger": {"DTMFSequence": 1234, "DTMFEventId": "dtmf_event_0"}}, lenient=True)
    assert st.run("GetDTMFTriggers")["DTMFTrigger"][0]["DTMFSequence"] == "1234"


@pytest.mark.parametrize("name", ["GetDTMFEvents", "RemoveDTMFEvents", "GetDTMFTriggers", "RemoveDTMFTriggers"])
def test_overlong_ids_in_lists_are_invalid(st, name):
    key = "DTMFEventId" if "Event" in name else "DTMFTriggerId"
    assert is_invalid(st.fault(name, {key: ["a" * 65]}))
    assert is_invalid(st.fault(name, {key: [{"x": 1}]}))
