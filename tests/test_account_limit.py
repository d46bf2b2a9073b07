"""The SIP account limit (issue 9: the 9th account failed inside pjsua with PJ_ETOOMANY, after which
every configuration write answered 400 and accounts past the 8th were shown as "Does not register").

1. The built pjsua2 really holds accounts.MAX_ACCOUNTS accounts and makes none of its own.
2. The commands refuse a Set that would store more (unit, in-memory runtime).
3. The real stack with SIP enabled: the maximum configured, the next one a clear fault, and
   configuration writes still applied."""
from __future__ import annotations

import time

import pytest

from daemon.commands import accounts as acc
from tests.harness import Station
from tests.test_commands_fakes import is_invalid


def ids(st) -> list[str]:
    return [a["Id"] for a in st.run("GetSIPAccounts")["SIPAccount"]]


# -- 1. what pjsua can hold ----------------------------------------------------------------------------

def test_pjsua_runs_exactly_max_accounts_and_none_of_its_own():
    pj = pytest.importorskip("pjsua2")
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.logConfig.level = 0
    cfg.logConfig.consoleLevel = 0
    ep.libInit(cfg)
    made = []
    try:
        tc = pj.TransportConfig()
        tc.port = 0
        tc.boundAddress = "127.0.0.1"
        ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)   # as the engine does: no local account appears
        ep.libStart()
        for i in range(acc.MAX_ACCOUNTS + 1):
            ac = pj.AccountConfig()
            ac.idUri = f"sip:limit{i}@127.0.0.1"
            account = pj.Account()
            try:
                account.create(ac, False)
            except pj.Error as e:
                assert i == acc.MAX_ACCOUNTS, f"account {i + 1} failed below the limit: {e.reason}"
                assert e.status == 70010  # PJ_ETOOMANY
                break
            made.append(account)
        else:
            pytest.fail(f"pjsua took {acc.MAX_ACCOUNTS + 1} accounts: raise accounts.MAX_ACCOUNTS")
        assert len(made) == acc.MAX_ACCOUNTS
    finally:
        for account in made:
            account.shutdown()
        ep.libDestroy()


# -- 2. the commands -------------------------------------------------------------------------------------

def test_max_accounts_including_peer_to_peer_then_a_fault(st):
    for i in range(acc.MAX_ACCOUNTS - 1):
        st.run("SetSIPAccount", {"SIPAccount": {"UserId": f"u{i}"}})
    assert len(ids(st)) == acc.MAX_ACCOUNTS and "peer-to-peer" in ids(st)
    before = st.run("GetSIPAccounts")
    st.runtime.changed.clear()
    fault = st.fault("SetSIPAccount", {"SIPAccount": {"UserId": "ninth"}})
    assert is_invalid(fault) and f"At most {acc.MAX_ACCOUNTS} SIP accounts" in fault.reason
    assert st.fault("SetSIPAccount", {"SIPAccount": {"Id": "new_id", "UserId": "ninth"}}).reason == fault.reason
    assert st.run("GetSIPAccounts") == before and st.runtime.changed == []
    # updating an existing account at the limit is fine, and so is adding after a removal
    st.run("SetSIPAccount", {"SIPAccount": {"Id": "sip_account_0", "CallerId": "Door"}})
    st.run("RemoveSIPAccount", {"SIPAccountId": "peer-to-peer"})
    st.run("SetSIPAccount", {"SIPAccount": {"UserId": "replacement"}})
    assert len(ids(st)) == acc.MAX_ACCOUNTS


def test_plural_set_over_the_limit_changes_nothing(st):
    before = st.run("GetSIPAccounts")
    fault = st.fault("SetSIPAccounts", {"SIPAccount": [{"UserId": f"u{i}"} for i in range(acc.MAX_ACCOUNTS)]})
    assert is_invalid(fault)
    assert st.run("GetSIPAccounts") == before
    st.run("SetSIPAccounts", {"SIPAccount": [{"UserId": f"u{i}"} for i in range(acc.MAX_ACCOUNTS - 1)]})
    assert len(ids(st)) == acc.MAX_ACCOUNTS


def test_a_store_already_over_the_limit_may_update_but_not_grow(st):
    with st.store.transaction() as tx:   # as an older version could leave it
        acc.ensure_factory_default(tx)
        for i in range(acc.MAX_ACCOUNTS + 2):
            doc = acc.peer_to_peer_account()
            doc.update({"Id": f"old_{i}", "UserId": f"old{i}", "IsDefault": False, "_auto": False})
            tx.put_object(acc.KIND, doc["Id"], doc)
    st.run("SetSIPAccount", {"SIPAccount": {"Id": "old_0", "CallerId": "Kept"}})
    assert is_invalid(st.fault("SetSIPAccount", {"SIPAccount": {"UserId": "more"}}))


# -- 3. the real stack ------------------------------------------------------------------------------------

@pytest.mark.integration
def test_real_station_runs_the_maximum_and_refuses_the_next(tmp_path):
    with Station(tmp_path / "state") as station:
        station.ok("SetSIPConfiguration", {"SIPConfiguration": {
            "SIPEnabled": True, "AllowIncomingCalls": True, "SIPPort": station.sip_port,
            "SIPTLSPort": station.sip_port + 1}})
        took = []
        for i in range(acc.MAX_ACCOUNTS - 1):   # + the peer-to-peer account = the maximum
            started = time.monotonic()
            station.ok("SetSIPAccount", {"SIPAccount": {"UserId": f"door{i}", "Transport": ["udp", "tcp"][i % 2]}})
            took.append(time.monotonic() - started)
        statuses = station.ok("GetSIPAccountStatuses")["SIPAccountStatus"]
        assert len(statuses) == acc.MAX_ACCOUNTS
        # every account is running in pjsua: its SIP URI names the station's port
        assert all(str(station.sip_port) in s["SIPURI"] for s in statuses), statuses

        r = station.call("SetSIPAccount", {"SIPAccount": {"UserId": "ninth"}})
        assert r.status_code == 400, r.text
        assert r.json()["FaultCode"] == "ter:InvalidArgVal"
        assert f"At most {acc.MAX_ACCOUNTS} SIP accounts" in r.json()["FaultReason"]
        assert len(station.ok("GetSIPAccounts")["SIPAccount"]) == acc.MAX_ACCOUNTS

        # configuration writes are still applied with the maximum configured
        for params in ({"SIPConfiguration": {"CallingTimeout": 30}},
                       {"SIPConfiguration": {"AllowIncomingCalls": False}}):
            started = time.monotonic()
            station.ok("SetSIPConfiguration", params)
            took.append(time.monotonic() - started)
        started = time.monotonic()
        station.ok("SetSIPAccount", {"SIPAccount": {"Id": "sip_account_0", "CallerId": "Front door"}})
        took.append(time.monotonic() - started)
        print(f"config writes with up to {acc.MAX_ACCOUNTS} accounts: max {max(took):.3f} s, "
              f"mean {sum(took) / len(took):.3f} s over {len(took)}")
