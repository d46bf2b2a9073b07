"""A dual-stack station on all interfaces, as on a Pi, in a network namespace made by the test
(tests/netns.py). `doorstation run` runs inside it (HTTP on its IPv4 address, so SIP listens on
every interface there: IPv4 and IPv6, media bound to none); the veth pair carries 10.77.N.0/24 and
fd77:0:0:N::/64, and the baresip peers listen on this side's addresses.
"""
from __future__ import annotations

import pytest

from tests.harness import Station, free_sip_port
from tests.netns import netns  # noqa: F401  (fixture)
from tests.sip_peers import baresip_factory, rtp_base  # noqa: F401  (fixture)
from tests.stack_sip import TOPIC_DTMF, TOPIC_STATE_CHANGE, EventTail, account_status, open_door_dtmf, wait_call_state

pytestmark = [pytest.mark.integration, pytest.mark.sip]


def configure(st: Station) -> tuple[int, str, str]:
    """SIP on, a DTMF configuration (#1234#) on the peer-to-peer account and on a second account
    with PrioritizeIPv6. Returns (SIP port, the IPv6 account's id, the DTMF event id)."""
    port = free_sip_port()
    st.ok("SetSIPConfiguration", {"SIPConfiguration": {
        "SIPEnabled": True, "SIPPort": port, "SIPTLSPort": free_sip_port(), "AllowIncomingCalls": True,
        "RTPStartPort": rtp_base(), "CallingTimeout": 15}})
    event_id, config_id = open_door_dtmf(st)
    v6 = st.ok("SetSIPAccount", {"SIPAccount": {"UserId": "door6", "PrioritizeIPv6": True, "IsDefault": False,
                                                "DTMFConfigurationId": config_id}})["SIPAccountId"]
    return port, v6, event_id


def dtmf_event(tail: EventTail, peer, call_id: str) -> dict:
    peer.wait_event("CALL_ESTABLISHED")
    assert peer.command("sndcode", "#1234#")["ok"]
    return tail.wait_for(lambda e: e["topic"] == TOPIC_DTMF and e["data"].get("CallId") == call_id,
                         what="the DTMF event of the call")


def test_dual_stack_station_on_all_interfaces(netns, baresip_factory, tmp_path):  # noqa: F811
    bob4 = baresip_factory("bob4", host=netns.host4)
    bob6 = baresip_factory("bob6", host=netns.host6)      # IPv6 only: 488 to an IPv4 offer
    st = Station(tmp_path / "state", netns=netns.name, http_host=netns.station4).start()
    try:
        port, v6, event_id = configure(st)
        assert account_status(st, "peer-to-peer")["SIPURI"] == f"sip:{netns.station4}:{port}"
        assert account_status(st, v6)["SIPURI"] == f"sip:[{netns.station6}]:{port}"
        tail = EventTail(st)

        # IPv4: the default account, to an IPv4 phone
        call4 = st.ok("Call", {"To": bob4.aor})["CallId"]
        assert wait_call_state(st, call4, "Active")["DeviceURI"].endswith(f"@{netns.station4}:{port}")
        assert dtmf_event(tail, bob4, call4)["source"]["DTMFEventId"] == event_id

        # IPv6: the PrioritizeIPv6 account, to an IPv6-only phone; DTMF proves RTP over IPv6
        call6 = st.ok("Call", {"To": bob6.aor, "SIPAccountId": v6})["CallId"]
        active = wait_call_state(st, call6, "Active")
        assert active["DeviceURI"] == f"sip:door6@[{netns.station6}]:{port}"
        assert active["RemoteURI"] == bob6.aor
        dtmf_event(tail, bob6, call6)
        for call_id in (call4, call6):
            st.ok("TerminateCall", {"CallId": call_id})
            wait_call_state(st, call_id, "Terminated")

        # The IPv6-only phone calls the station's IPv6 address: answered with IPv6 media
        assert bob6.command("dial", f"sip:door@[{netns.station6}]:{port}")["ok"]
        accepted = tail.wait_for(lambda e: e["topic"] == TOPIC_STATE_CHANGE
                                 and e["data"].get("Reason") == "AcceptedByDevice", what="AcceptedByDevice")
        incoming = accepted["data"]["CallId"]
        assert wait_call_state(st, incoming, "Active")["RemoteURI"].startswith(f"sip:bob6@[{netns.host6}]")
        dtmf_event(tail, bob6, incoming)
        bob6.command("hangup")
        wait_call_state(st, incoming, "Terminated")
    finally:
        st.stop()
