"""With the default codec list the station's INVITE fits pjsip's UDP limit (1300 bytes), so it
reaches a UDP-only peer over UDP instead of switching to TCP."""
import socket

import pytest

from tests.harness import Station, free_sip_port

pytestmark = [pytest.mark.integration, pytest.mark.sip]


def test_default_invite_goes_over_udp_below_1300_bytes(tmp_path):
    peer_port = free_sip_port()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", peer_port))
    udp.settimeout(10)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # catches a switch to TCP
    tcp.bind(("127.0.0.1", peer_port))
    tcp.listen(1)
    st = Station(tmp_path / "state").start()
    try:
        st.ok("SetSIPConfiguration", {"SIPConfiguration": {"SIPEnabled": True, "SIPPort": st.sip_port,
                                                           "SIPTLSPort": free_sip_port()}})
        st.ok("SetSIPAccount", {"SIPAccount": {"UserId": "front-door", "CallerId": "Front door, main entrance"}})
        call_id = st.ok("Call", {"To": f"sip:reception@127.0.0.1:{peer_port}"})["CallId"]
        data, _ = udp.recvfrom(65535)
        assert data.startswith(b"INVITE ")
        assert len(data) < 1300, len(data)
        assert b"PCMU/8000" in data and b"L16" not in data
        st.ok("TerminateCall", {"CallId": call_id})
    finally:
        st.stop()
        udp.close()
        tcp.close()
