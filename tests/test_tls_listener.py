"""The station's SIP TLS listener works out of the box: a self-signed certificate is made at first
start and served on SIPTLSPort (real TLS handshake against the running station)."""
import socket
import ssl
import time

import pytest

from tests.harness import Station, free_sip_port

pytestmark = pytest.mark.integration


def handshake(st: Station, tls_port: int) -> dict:
    cert_file = st.state_dir / "tls" / "station.crt"
    context = ssl.create_default_context(cafile=str(cert_file))
    context.check_hostname = False  # the certificate names this host, the test dials 127.0.0.1 by IP SAN
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw:
                with context.wrap_socket(raw) as tls:
                    return tls.getpeercert()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_tls_port_follows_sip_port_option(tmp_path):
    """`doorstation run --sip-port N`: SIP on N, TLS on N+1 (it stayed on 5061 before)."""
    port = free_sip_port()
    while not _free(port + 1):
        port = free_sip_port()
    st = Station(tmp_path / "state", sip_port=port).start()
    try:
        config = st.ok("GetSIPConfiguration")["SIPConfiguration"]
        assert (config["SIPPort"], config["SIPTLSPort"]) == (port, port + 1)
        st.ok("SetSIPConfiguration", {"SIPConfiguration": {"SIPEnabled": True}})
        assert ("IP Address", "127.0.0.1") in handshake(st, port + 1)["subjectAltName"]
    finally:
        st.stop()


def _free(port: int) -> bool:
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False


def test_tls_listener_serves_the_station_certificate(tmp_path):
    st = Station(tmp_path / "state").start()
    try:
        tls_port = free_sip_port()
        st.ok("SetSIPConfiguration", {"SIPConfiguration": {"SIPEnabled": True, "SIPPort": st.sip_port,
                                                           "SIPTLSPort": tls_port}})
        cert_file = st.state_dir / "tls" / "station.crt"
        assert cert_file.exists() and (st.state_dir / "tls" / "station.key").stat().st_mode & 0o077 == 0
        assert ("IP Address", "127.0.0.1") in handshake(st, tls_port)["subjectAltName"]
    finally:
        st.stop()
