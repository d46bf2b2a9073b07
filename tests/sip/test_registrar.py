"""Registered accounts against kamailio: status codes, recovery, calls through the proxy."""
from __future__ import annotations

import re

import pytest

from daemon.sip.config import AccountConfig, account_from_vapix
from daemon.sip.types import AccountStatusChanged

from .conftest import free_port, wait_until

pytestmark = pytest.mark.sip


def registered(kport: int, password: str = "door-secret", transport: str = "udp", **kw) -> AccountConfig:
    return AccountConfig(id="sip_account_0", user_id="door", password=password, registrar=f"127.0.0.1:{kport}",
                         transport=transport, registration_interval=60, is_default=True, **kw)


def wait_reg(station, code: int, timeout: float = 10.0) -> dict:
    return wait_until(lambda: (st := station.engine.account_status("sip_account_0"))["Status"] == code and st,
                      timeout, f"registration status {code}")


def test_right_password_registers(station, kamailio_factory):
    k = kamailio_factory()
    station.engine.apply(station.config(accounts=(registered(k.port),)))
    st = wait_reg(station, 200)
    assert st == {"SIPAccountId": "sip_account_0", "SIPURI": f"sip:door@127.0.0.1:{k.port}", "IsDefault": True,
                  "RegURI": f"127.0.0.1:{k.port}", "Status": 200, "StatusText": "OK"}
    ev = station.events.wait_for(lambda e: isinstance(e, AccountStatusChanged) and e.status["Status"] == 200)
    assert ev.account_id == "sip_account_0"


def requested_expires(k) -> list[int]:
    """The Expires of every REGISTER kamailio accepted (its config logs them)."""
    return [int(m) for m in re.findall(r"REGISTER user=door expires=(\d+)", (k.dir / "kamailio.log").read_text())]


@pytest.mark.parametrize("disable_tcp_switch", ["false", "true"])   # "true": bound to the UDP transport
def test_registration_interval_attribute_reaches_the_registrar(station, kamailio_factory, disable_tcp_switch):
    k = kamailio_factory()
    doc = {"Id": "sip_account_0", "UserId": "door", "Password": "door-secret", "Registrar": f"127.0.0.1:{k.port}",
           "IsDefault": True, "Attribute": [{"Name": "RegistrationInterval", "Value": "45"},
                                            {"Name": "DisableTCPSwitch", "Value": disable_tcp_switch}]}
    station.engine.apply(station.config(accounts=(account_from_vapix(doc, None),)))
    wait_reg(station, 200)
    assert set(wait_until(lambda: requested_expires(k), 5.0, "the REGISTER in kamailio's log")) == {45}


def test_wrong_password_is_refused(station, kamailio_factory):
    k = kamailio_factory()
    station.engine.apply(station.config(accounts=(registered(k.port, password="nope"),)))
    st = wait_reg(station, 401)
    assert st["StatusText"] == "Unauthorized" and st["RegURI"] == f"127.0.0.1:{k.port}"


def test_unknown_user_is_forbidden(station, kamailio_factory):
    k = kamailio_factory(users={"someone": "else"})
    station.engine.apply(station.config(accounts=(registered(k.port),)))
    assert wait_reg(station, 403)["StatusText"] == "Forbidden"


def test_registrar_down_then_back_recovers(station, kamailio_factory):
    port = free_port()
    station.engine.apply(station.config(accounts=(registered(port, transport="tcp"),)))
    down = wait_until(lambda: (st := station.engine.account_status("sip_account_0"))["Status"] >= 400 and st,
                      10.0, "registration failure while the registrar is down")
    assert down["Status"] in (408, 502, 503)
    kamailio_factory(port=port)
    wait_reg(station, 200, timeout=15.0)     # retried every registration_retry_interval (2 s here)


def test_password_change_re_registers(station, kamailio_factory):
    k = kamailio_factory()
    station.engine.apply(station.config(accounts=(registered(k.port, password="nope"),)))
    wait_reg(station, 401)
    station.engine.apply(station.config(accounts=(registered(k.port),)))
    wait_reg(station, 200)


def test_sip_disabled_status(station, kamailio_factory):
    k = kamailio_factory()
    station.engine.apply(station.config(accounts=(registered(k.port),)))
    wait_reg(station, 200)
    station.engine.apply(station.config(accounts=(registered(k.port),), sip_enabled=False))
    st = station.engine.account_status("sip_account_0")
    assert (st["Status"], st["StatusText"], st["RegURI"]) == (0, "SIP disabled", "")
    assert station.engine.account_status("nope") is None


def test_calls_through_registrar_both_ways(station, kamailio_factory, baresip_factory):
    k = kamailio_factory()
    bob = baresip_factory(accounts_line=lambda b: (
        f'<sip:bob@127.0.0.1>;auth_pass=bob-secret;outbound="sip:127.0.0.1:{k.port}";regint=60;'
        "answermode=auto;audio_codecs=PCMU/8000/1,PCMA/8000/1"))
    # baresip registers before the control socket is up: poll its registration table instead
    wait_until(lambda: "OK" in bob.command("reginfo")["data"], 10.0, "baresip to register", step=0.2)
    station.engine.apply(station.config(accounts=(registered(k.port),), allow_incoming_calls=True))
    wait_reg(station, 200)
    call_id = station.engine.make_call(None, f"sip:bob@127.0.0.1:{k.port}")
    assert station.wait_state(call_id, "Active")["CallStateReason"] == "AcceptedByRemote"
    station.engine.hangup(call_id)
    station.wait_state(call_id, "Terminated")
    bob.wait_event("CALL_CLOSED")
    station.answers_call_from(bob, f"sip:door@127.0.0.1:{k.port}", "sip_account_0")


def test_secondary_registrar_takes_over(station, kamailio_factory):
    backup = kamailio_factory()
    dead = free_port()
    acc = registered(dead, transport="tcp", secondary_registrar=f"127.0.0.1:{backup.port}")
    station.engine.apply(station.config(accounts=(acc,)))
    st = wait_reg(station, 200, timeout=15.0)
    assert st["RegURI"] == f"127.0.0.1:{backup.port}"
