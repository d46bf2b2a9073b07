"""Relay safety on real kernel GPIO (inside the VM lane): a supervisor killed with SIGKILL in the
middle of a door pulse leaves the door locked as soon as the station is started again, long before
the pulse would have ended."""
import os
import time

import pytest

from tests.harness import Station
from tests.vm.rig import Lines, hardware_toml, wait_until

pytestmark = pytest.mark.skipif(not os.environ.get("DOORSTATION_GPIOSIM_SYSFS"),
                                reason="needs the VM lane's gpio-sim and snd-aloop devices")

PULSE_MS = 60000   # far longer than the test: only the restart can re-lock the door


def test_kill_9_mid_pulse_then_restart_relocks_at_once(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "hardware.toml").write_text(hardware_toml("VMS_CALL", PULSE_MS))
    lines = Lines()
    station = Station(state).start(timeout=180)
    try:
        r = station.session().post(f"{station.url}/api/door/open", timeout=60)
        assert r.status_code == 200 and r.json()["PulseMs"] == PULSE_MS
        wait_until(lines.door_unlocked, 10, "DOOR_LOCK unlocked by the API")
        opened = time.monotonic()
        station.kill()                      # SIGKILL to run, supervisor and gunicorn: no clean-up
        after_kill = "unlocked" if lines.door_unlocked() else "locked"
        station = Station(state, http_port=station.http_port).start(timeout=180)
        ready = time.monotonic()
        assert not lines.door_unlocked(), f"door still unlocked after the restart (after the kill: {after_kill})"
        assert ready - opened < PULSE_MS / 1000 / 2   # re-locked by the restart, not by the pulse ending
        events = station.session().get(f"{station.url}/api/events?after=0&wait=0&limit=1000", timeout=60).json()
        relay = [e["data"] for e in events["events"] if e["topic"] == "doorstation:Relay"]
        assert any({**r, "At": 0} == {"State": "Unlocked", "Cause": "User", "User": "admin", "PulseMs": PULSE_MS,
                                      "At": 0} for r in relay), relay
        assert relay[-1] == {"State": "Locked", "Cause": "Startup"}
    finally:
        station.stop(timeout=60)
