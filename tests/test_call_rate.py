"""Calls as fast as an API client can send them: the station refuses what is over its rate with a
clear fault and keeps running (pjlib's socket pool once aborted the supervisor after ~30 calls in
half a second)."""
import time

import pytest

from tests.harness import Station
from tests.sip_peers import Agent
from tests.stack_sip import enable_sip, wait_call_state

pytestmark = [pytest.mark.integration, pytest.mark.sip]


def test_a_burst_of_calls_is_throttled_and_the_supervisor_survives(tmp_path):
    st = Station(tmp_path / "state").start()
    callee = Agent(tmp_path / "callee", "--answer", "486")
    try:
        enable_sip(st)
        s = st.session()
        accepted, refused = [], []
        deadline = time.monotonic() + 60
        while len(accepted) < 80 and time.monotonic() < deadline:
            r = s.post(f"{st.url}/vapix/call", json={"axcall:Call": {"To": callee.uri()}}, timeout=10)
            if r.status_code == 200:
                accepted.append(r.json()["CallId"])
            else:
                assert r.status_code == 400, r.text
                assert r.json()["FaultCode"] == "ter:Action" and "per second" in r.json()["FaultReason"]
                refused.append(r.json())
        assert len(accepted) == 80 and refused, (len(accepted), len(refused))
        for call_id in accepted[-5:]:
            assert wait_call_state(st, call_id, "Terminated")["CallStateReason"] == "Busy"
        assert st.proc.poll() is None and not any("restarting" in line for line in st.output)
    finally:
        callee.stop()
        st.stop()
