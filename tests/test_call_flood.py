"""A peer that makes calls as fast as it can: INVITE, 200, ACK, BYE, four calls at a time.

Each call opens two media sockets in pjlib's I/O queue, and a closed socket stays reserved for
500 ms; with pjlib's default of 64 slots this aborted the process within half a second (an
assertion in ioqueue_select.c), taking the supervisor down. The build raises the limit to 512 and
is compiled with NDEBUG, so a full queue fails the new call instead (scripts/pjsua2/config_site.h,
scripts/build-pjsua2). Run against a real `doorstation run`, so an abort shows as a supervisor
restart instead of killing the test process. The client is a plain UDP socket on loopback,
bounded in calls and in time.
"""
from __future__ import annotations

import time

import pytest

from tests.raw_sip import RawCaller
from tests.sip_peers import wait_until
from tests.stack_sip import enable_sip, start_station

pytestmark = [pytest.mark.integration, pytest.mark.sip]

CALLS = 400
BATCH = 4          # the station's own limit of calls in progress
def test_fast_call_cycles_from_a_peer_do_not_abort_the_supervisor(tmp_path):
    st = start_station(tmp_path / "state")
    try:
        port = enable_sip(st, allow_incoming=True)
        caller = RawCaller(port)
        deadline = time.monotonic() + 60
        started = time.monotonic()
        codes: dict[int, int] = {}
        for _ in range(CALLS // BATCH):
            for code, n in caller.batch(BATCH, deadline).items():
                codes[code] = codes.get(code, 0) + n
        took = time.monotonic() - started
        print(f"{CALLS} calls in {took:.2f} s ({CALLS / took:.0f}/s): final responses {codes}")
        assert sum("supervisor ready" in line for line in st.output) == 1, \
            "the supervisor restarted:\n" + "".join(st.output[-40:])
        assert sum(codes.values()) == CALLS, codes          # every INVITE got its final answer
        assert codes.get(200, 0) >= CALLS // 2, codes       # most answered by the device; when the
        assert set(codes) <= {200, 486, 500, 503}, codes    # queue is full a call fails, cleanly
        time.sleep(1.0)                                     # reserved sockets come back after 500 ms
        assert caller.batch(1, time.monotonic() + 5) == {200: 1}
        statuses = wait_until(lambda: (s := st.ok("GetCallStatuses")["CallStatus"])
                              and all(c["CallState"] == "Terminated" for c in s) and s, 10.0, "every call ended")
        assert len(statuses) == 100                         # the bounded history, all finished
        assert all(c["Direction"] == "Incoming" for c in statuses)
    finally:
        st.stop()
