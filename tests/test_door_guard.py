"""The door re-locks within 50 ms of the end of its pulse whatever else the station is doing
(issue 8): SIP rebinds of a just-used port, an INVITE flood, 50 long-polls, a CPU hog on every core.
Against a real `doorstation run` (simulated GPIO; the VM lane repeats it on gpio-sim lines), measured
by the station's own line timestamps (tests/door_load.py). A config write during a rebind is
answered at once and GetCallStatuses stays fast while the engine waits for the port."""
from __future__ import annotations

import statistics
import time

import pytest

from tests import door_load
from tests.sip_peers import baresip_factory, wait_until  # noqa: F401  (fixture)
from tests.stack_sip import enable_sip, hardware_toml, start_station, wait_call_state

pytestmark = [pytest.mark.integration, pytest.mark.sip]

PULSE_MS = 1000
LATE_MS = 50


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    st = start_station(tmp_path_factory.mktemp("door") / "state", hardware_toml(pulse_ms=PULSE_MS))
    try:
        st.sip_port = enable_sip(st, allow_incoming=True)
        yield st
    finally:
        st.stop()


def check(result: dict, what: str) -> None:
    print(f"{what}: unlocked {result['unlocked_ms']:.1f} ms for a {PULSE_MS} ms pulse "
          f"(late {result['late_ms']:.1f} ms; event logged {result['event_delay_ms']:.1f} ms after)")
    assert PULSE_MS <= result["unlocked_ms"] <= PULSE_MS + LATE_MS, (what, result)


def test_relock_on_time_when_idle(station):
    check(door_load.open_door_and_measure(station, PULSE_MS), "idle")


def test_relock_on_time_during_sip_rebinds_and_the_api_stays_responsive(station, baresip_factory):  # noqa: F811
    """The issue's measurement: a call used the port (its BYE transaction lingers), then SIPPort is
    moved away and back while the door is open."""
    bob = baresip_factory()
    call_id = station.ok("Call", {"To": bob.aor})["CallId"]
    wait_call_state(station, call_id, "Active")
    station.ok("TerminateCall", {"CallId": call_id})
    wait_call_state(station, call_id, "Terminated")
    session = station.session()
    writes: list[float] = []
    latencies: list[float] = []
    other = door_load_free_port()

    def rebind_twice() -> None:
        for port in (other, station.sip_port):
            t0 = time.perf_counter()
            station.ok("SetSIPConfiguration", {"SIPConfiguration": {"SIPPort": port}}, session=session)
            writes.append((time.perf_counter() - t0) * 1000)
        latencies.extend(door_load.sample_latency(
            lambda: station.ok("GetCallStatuses", session=session), seconds=PULSE_MS / 1000))
    result = door_load.open_door_and_measure(station, PULSE_MS, during=rebind_twice)
    check(result, "SIP rebinds")
    print(f"config writes {['%.1f' % w for w in writes]} ms; GetCallStatuses during the rebind: "
          f"{door_load.summary(latencies)} ms")
    assert max(writes) < 1000, writes          # answered at once, applied in the background
    assert statistics.median(latencies) < 50 and max(latencies) < 1000, latencies
    # the engine got the port back (or says why not) and the station still calls
    applied = wait_until(lambda: (s := door_status(station)["SIPConfiguration"])["State"] != "Applying" and s,
                         15.0, "the SIP configuration to be applied")
    assert applied["State"] == "Applied", applied
    retried = [line for line in station.output if "not free yet" in line]
    print(f"ports retried while the door was open: {len(retried)} log lines")
    call_id = station.ok("Call", {"To": bob.aor})["CallId"]
    wait_call_state(station, call_id, "Active")
    station.ok("TerminateCall", {"CallId": call_id})


def test_relock_on_time_during_an_invite_flood(station):
    with door_load.invite_flood(station.sip_port, calls=4000) as codes:
        t0 = time.monotonic()
        result = door_load.open_door_and_measure(station, PULSE_MS)
        print(f"re-lock event read after {time.monotonic() - t0:.1f} s")
    check(result, f"INVITE flood (final answers so far {codes})")
    assert sum(codes.values()) > 0


def test_relock_on_time_with_50_long_polls(station):
    with door_load.long_polls(station, 50) as answers:
        result = door_load.open_door_and_measure(station, PULSE_MS)
    check(result, f"50 long-polls ({answers[0]} answers)")
    assert answers[0] >= 50                  # every poller was woken by the door's events


def test_relock_on_time_with_a_cpu_hog_on_every_core(station):
    with door_load.cpu_hog(processes=4):
        result = door_load.open_door_and_measure(station, PULSE_MS)
    check(result, "CPU hog")


def door_status(station) -> dict:
    client = door_load.control(station)
    try:
        return client.request("status")
    finally:
        client.close()


def door_load_free_port() -> int:
    from tests.harness import free_sip_port
    return free_sip_port()
