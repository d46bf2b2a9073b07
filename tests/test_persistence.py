"""Acknowledged writes survive kill -9 of every process (supervisor, gunicorn, `doorstation run`)."""
import random
import threading
import time

import pytest
import requests

from tests.harness import Station

pytestmark = pytest.mark.integration


def test_configuration_survives_kill_9_and_restart(tmp_path):
    st = Station(tmp_path / "state").start()
    try:
        st.ok("SetSIPConfiguration", {"SIPConfiguration": {"CallingTimeout": 42, "AllowIncomingCalls": True}})
        account_id = st.ok("SetSIPAccount", {"SIPAccount": {"UserId": "6001", "Password": "secure",
                                                             "CallerId": "Front door"}})["SIPAccountId"]
        event_id = st.ok("SetDTMFEvent", {"DTMFEvent": {"Name": "OpenDoorEvent"}})["DTMFEventId"]
        st.ok("SetAudioCodecs", {"AudioCodec": [{"Name": "PCMA"}, {"Name": "PCMU"}]})
    finally:
        st.kill()
    st = Station(tmp_path / "state", http_port=st.http_port).start()
    try:
        config = st.ok("GetSIPConfiguration")["SIPConfiguration"]
        assert config["CallingTimeout"] == 42 and config["AllowIncomingCalls"] is True
        account = st.ok("GetSIPAccount", {"SIPAccountId": account_id})["SIPAccount"]
        assert account["CallerId"] == "Front door" and account["UserId"] == "6001"
        assert st.ok("GetDTMFEvent", {"DTMFEventId": event_id})["DTMFEvent"]["Name"] == "OpenDoorEvent"
        assert [c["Name"] for c in st.ok("GetAudioCodecs")["AudioCodec"]][:2] == ["PCMA", "PCMU"]
    finally:
        st.stop()


@pytest.mark.slow
def test_a_thousand_acknowledged_writes_with_random_kill_9_lose_none(tmp_path):
    rng = random.Random(20261126)
    target = 1000
    acknowledged: dict[str, str] = {}  # DTMFEventId -> Name
    st = Station(tmp_path / "state").start()
    http_port = st.http_port
    kills = 0
    deadline = time.monotonic() + 600
    n = 0
    try:
        while len(acknowledged) < target and time.monotonic() < deadline:
            # kill -9 at a random moment while a writer is busy
            stop = threading.Event()
            writes_before_kill = rng.randint(50, 250)
            session = st.session()

            # this iteration's event, session and station: the next iteration rebinds the names
            def writer(stop=stop, session=session, st=st):
                nonlocal n
                while not stop.is_set() and len(acknowledged) < target:
                    n += 1
                    name = f"event-{n}"
                    try:
                        r = session.post(f"{st.url}/vapix/call",
                                         json={"axcall:SetDTMFEvent": {"DTMFEvent": {"Name": name}}}, timeout=10)
                    except requests.RequestException:
                        return  # killed mid-request: not acknowledged
                    if r.status_code != 200:
                        return
                    acknowledged[r.json()["DTMFEventId"]] = name
            start_count = len(acknowledged)
            t = threading.Thread(target=writer)
            t.start()
            while (len(acknowledged) - start_count < writes_before_kill and len(acknowledged) < target
                   and t.is_alive() and time.monotonic() < deadline):
                time.sleep(0.001)
            time.sleep(rng.random() * 0.01)
            if len(acknowledged) < target:
                st.kill()
                kills += 1
            stop.set()
            t.join(15)
            assert not t.is_alive(), "the writer did not stop within 15 s of the kill"
            if len(acknowledged) < target:
                st = Station(tmp_path / "state", http_port=http_port).start()
        assert len(acknowledged) >= target, f"only {len(acknowledged)} writes in time"
        assert kills >= 3
        if st.proc is None or st.proc.poll() is not None:
            st = Station(tmp_path / "state", http_port=http_port).start()
        stored = {e["Id"]: e["Name"] for e in st.ok("GetDTMFEvents")["DTMFEvent"]}
        lost = {i: name for i, name in acknowledged.items() if stored.get(i) != name}
        assert not lost, f"{len(lost)} acknowledged writes lost after {kills} kills: {list(lost.items())[:5]}"
    finally:
        st.kill()
