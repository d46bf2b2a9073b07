"""HTTPS on a real `doorstation run --https`: the API answers with the station's certificate
(<state>/tls/station.crt, verified against that file), Digest and Basic work over both HTTP and
HTTPS, --no-basic-over-http refuses Basic on plain HTTP only, --http-redirect sends HTTP to HTTPS,
and a replaced certificate is served after a restart."""
from __future__ import annotations

import os
import ssl
import subprocess

import pytest
import requests
from requests.auth import HTTPBasicAuth, HTTPDigestAuth

from tests.harness import ADMIN, VIEWER, Station, doorstation, free_port

pytestmark = pytest.mark.integration


def https_station(state_dir, *more: str, **kw) -> Station:
    port = free_port()
    st = Station(state_dir, extra_args=["--https", f"127.0.0.1:{port}", *more], **kw)
    st.https_url = f"https://127.0.0.1:{port}"
    return st


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    with https_station(tmp_path_factory.mktemp("https") / "state", "--no-basic-over-http") as st:
        yield st


def cert(st: Station) -> str:
    return str(st.state_dir / "tls" / "station.crt")


def call(url: str, auth, verify, command: str = "GetCallStatuses") -> requests.Response:
    return requests.post(f"{url}/vapix/call", json={f"axcall:{command}": {}}, auth=auth,
                         verify=verify, timeout=15)


def test_https_serves_the_station_certificate(station):
    r = call(station.https_url, HTTPDigestAuth(*ADMIN), verify=cert(station))
    assert r.status_code == 200, r.text
    # not some other certificate: the system's CAs do not know it
    with pytest.raises(requests.exceptions.SSLError):
        call(station.https_url, HTTPDigestAuth(*ADMIN), verify=True)
    assert "https://127.0.0.1:" in "".join(station.output)


def test_digest_and_basic_over_https(station):
    for auth in (HTTPDigestAuth(*ADMIN), HTTPBasicAuth(*ADMIN), HTTPDigestAuth(*VIEWER), HTTPBasicAuth(*VIEWER)):
        r = call(station.https_url, auth, verify=cert(station))
        assert r.status_code == 200, (auth, r.status_code, r.text)
    r = call(station.https_url, HTTPBasicAuth(ADMIN[0], "wrong"), verify=cert(station))
    assert r.status_code == 401
    assert any(v.startswith("Basic ") for v in r.raw.headers.getlist("WWW-Authenticate"))


def test_basic_over_plain_http_is_refused_when_switched_off(station):
    r = call(station.url, HTTPBasicAuth(*ADMIN), verify=False)
    assert r.status_code == 401
    assert "HTTPS" in r.json()["FaultReason"]
    challenges = r.raw.headers.getlist("WWW-Authenticate")
    assert challenges and not any(v.startswith("Basic ") for v in challenges)
    # Digest over plain HTTP still works
    assert call(station.url, HTTPDigestAuth(*ADMIN), verify=False).status_code == 200


def test_basic_over_plain_http_works_by_default(tmp_path):
    with https_station(tmp_path / "state") as st:
        assert call(st.url, HTTPBasicAuth(*ADMIN), verify=False).status_code == 200
        assert call(st.https_url, HTTPBasicAuth(*ADMIN), verify=cert(st)).status_code == 200


def test_http_redirects_to_https_and_a_replaced_certificate_is_served(tmp_path):
    st = https_station(tmp_path / "state", "--http-redirect")
    with st:
        r = requests.post(f"{st.url}/vapix/call?x=1", json={}, allow_redirects=False, timeout=10)
        assert r.status_code == 308
        assert r.headers["Location"] == f"{st.https_url}/vapix/call?x=1"
        assert r.json()["FaultSubCode"] == "ter:UseHTTPS"
        # requests follows a 308 keeping the POST and its body
        r = requests.post(f"{st.url}/vapix/call", json={"axcall:GetCallStatuses": {}},
                          auth=HTTPDigestAuth(*ADMIN), verify=cert(st), timeout=15)
        assert r.status_code == 200 and r.url.startswith("https://")
    # The user's own certificate (README "HTTPS"): replace the two files, restart.
    tls = st.state_dir / "tls"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "30", "-subj", "/CN=door.example", "-addext",
                    "subjectAltName=DNS:door.example,IP:127.0.0.1",
                    "-keyout", str(tls / "station.key"), "-out", str(tls / "station.crt")],
                   check=True, capture_output=True, timeout=30)
    st2 = https_station(st.state_dir)
    with st2:
        served = ssl.get_server_certificate(("127.0.0.1", int(st2.https_url.rsplit(":", 1)[1])), timeout=10)
        assert ssl.PEM_cert_to_DER_cert(served) == ssl.PEM_cert_to_DER_cert((tls / "station.crt").read_text())
        assert call(st2.https_url, HTTPDigestAuth(*ADMIN), verify=cert(st2)).status_code == 200


def test_api_command_as_the_systemd_unit_runs_it(tmp_path):
    """`doorstation api --http ... --https ... --http-redirect` (doorstation-api.service's
    ExecStart with DOORSTATION_API_OPTIONS) on its own: the certificate is made if the supervisor
    has not made one yet, HTTP redirects, HTTPS answers (401 without credentials)."""
    import signal
    import sys
    import time

    from daemon.cli import port_open
    from tests.harness import REPO
    http, https = free_port(), free_port()
    state = tmp_path / "state"
    # an admin exists (without one the API is in first use and answers 503: docs/web.md)
    added = doorstation("user", "add", "admin", "--role", "admin", "--password-stdin", state_dir=state,
                        input="admin-secret-1\n")
    assert added.returncode == 0, added.stderr
    proc = subprocess.Popen([sys.executable, "-m", "daemon.cli", "api", "--state-dir", str(state),
                             "--http", f"127.0.0.1:{http}", "--https", f"127.0.0.1:{https}",
                             "--http-redirect"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (port_open("127.0.0.1", http) and port_open("127.0.0.1", https)):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()[-2000:]
            time.sleep(0.1)
        r = requests.get(f"http://127.0.0.1:{http}/api/events", allow_redirects=False, timeout=10)
        assert r.status_code == 308 and r.headers["Location"] == f"https://127.0.0.1:{https}/api/events"
        r = requests.get(f"https://127.0.0.1:{https}/api/events", verify=str(state / "tls" / "station.crt"),
                         timeout=10)
        assert r.status_code == 401 and r.json()["FaultCode"] == "ter:NotAuthorized"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
