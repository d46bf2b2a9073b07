"""Accounts stored by an older version that the engine cannot run are left out of its
configuration (and logged) instead of making every apply fail."""
from daemon.sip.config import MAX_ENGINE_ACCOUNTS, engine_config_from_vapix, usable_accounts


def test_accounts_past_the_engine_limit_and_with_control_characters_are_left_out(caplog):
    docs = [{"Id": f"sip_account_{i}", "UserId": f"u{i}"} for i in range(MAX_ENGINE_ACCOUNTS + 2)]
    docs.insert(1, {"Id": "bad", "UserId": "a\r\nVia: evil"})
    kept = usable_accounts(docs)
    assert [d["Id"] for d in kept] == [f"sip_account_{i}" for i in range(MAX_ENGINE_ACCOUNTS)]
    assert "bad left out: control characters in UserId" in caplog.text
    assert f"sip_account_{MAX_ENGINE_ACCOUNTS} left out" in caplog.text
    cfg = engine_config_from_vapix({"SIPEnabled": True}, docs)
    assert len(cfg.accounts) == MAX_ENGINE_ACCOUNTS and all(a.id != "bad" for a in cfg.accounts)
