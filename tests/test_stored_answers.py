"""Reads answered again by the API worker until what they read changes (daemon/api/answers.py):
the store's data_version and the supervisor's live stamp (daemon/control/livestamp.py). The logic
with a fake change stamp, the live stamp's file, then on a real `doorstation run` with calls."""
from __future__ import annotations

import os
import signal
import time

import pytest

from daemon.api import envelopes
from daemon.api.answers import Answer, StationStamp, StoredAnswers, request_key
from daemon.commands.roles import ANSWERED_AGAIN, COMMAND_ROLES, LIVE_ANSWERED, STORE_ANSWERED
from daemon.control import livestamp
from daemon.control.livestamp import LiveStamp, LiveStampView, live_stamp_path
from tests.harness import ADMIN, OPERATOR, VIEWER, Station
from tests.sip_peers import baresip_factory  # noqa: F401  (fixture)
from tests.stack_sip import EventTail, enable_sip


def _answer(body: bytes = b'{"x":1}') -> Answer:
    return Answer("GetSIPAccounts", envelopes.Style(), envelopes.Reply(200, "application/json", body))


class Stamp:
    def __init__(self):
        self.value: int | None = 1


def _answers(stamp: Stamp, **kw) -> StoredAnswers:
    return StoredAnswers(lambda: stamp.value, **kw)


def test_kept_until_the_store_changes():
    stamp = Stamp()
    answers = _answers(stamp)
    key = request_key(None, "", "application/json", b'{"axcall:GetSIPAccounts":{}}')
    assert answers.find(key) is None
    answers.keep(key, answers.stamp(), _answer())
    assert answers.find(key) == _answer()
    assert answers.find(request_key(None, "", "application/json", b'{"axcall:GetSIPAccounts": {}}')) is None
    stamp.value = 2                                 # the supervisor committed something
    assert answers.find(key) is None and len(answers) == 0


def test_an_answer_older_than_a_seen_change_is_not_kept():
    stamp = Stamp()
    answers = _answers(stamp)
    key = request_key(None, "", None, b"a")
    at = answers.stamp()                            # request 1 reads the stamp, goes to the supervisor
    stamp.value = 2
    answers.stamp()                                 # request 2 sees the change meanwhile
    answers.keep(key, at, _answer())                # request 1's answer may predate the change
    assert answers.find(key) is None


def test_nothing_kept_is_answered_while_the_supervisor_is_gone_or_the_store_unreadable():
    stamp = Stamp()
    answers = _answers(stamp)
    key = request_key(None, "", None, b"a")
    answers.keep(key, answers.stamp(), _answer())
    stamp.value = None                  # no supervisor holds the live stamp, or the store is unreadable
    assert answers.find(key) is None and answers.stamp() is None
    answers.keep(key, None, _answer())
    stamp.value = 1
    assert answers.find(key) is None


def test_bounded_in_entries_and_bytes():
    stamp = Stamp()
    answers = _answers(stamp, max_entries=3, max_bytes=100, max_entry_bytes=60)
    keys = [request_key(None, "", None, f"{i}".encode()) for i in range(5)]
    for key in keys:
        answers.keep(key, answers.stamp(), _answer(b"x" * 10))
    assert len(answers) == 3 and answers.find(keys[0]) is None and answers.find(keys[4])
    big = request_key(None, "", None, b"big")
    answers.keep(big, 1, _answer(b"x" * 70))        # over the per-entry bound
    assert answers.find(big) is None
    for i in range(3):                              # 3 x 45 bytes > 100: the oldest go first
        key = request_key(None, "", None, f"k{i}".encode())
        answers.keep(key, 1, _answer(b"y" * 43))
    assert len(answers) == 2


def test_only_reads_are_answered_again():
    assert ANSWERED_AGAIN <= {name for name, role in COMMAND_ROLES.items() if role == "viewer"}
    assert LIVE_ANSWERED == {"GetCallStatus", "GetCallStatuses", "GetSIPAccountStatus",
                             "GetSIPAccountStatuses"}
    assert not STORE_ANSWERED & LIVE_ANSWERED


def test_the_live_stamp_is_seen_through_the_file_while_its_supervisor_holds_it(tmp_path, monkeypatch):
    path = live_stamp_path(tmp_path)
    view = LiveStampView(path)
    assert view.read() is None                      # no supervisor's file: nothing is answered again
    first = LiveStamp(path)
    assert first.held
    seen = view.read()
    assert seen == first.read()
    first.bump()
    assert view.read() == ((seen + 1) % (1 << 64) or 1)
    first.stop()                                    # it began to stop: nothing kept is answered...
    first.bump()
    assert view.read() is None
    first.close()                                   # ...nor once it ended and its lock went with it
    assert view.read() is None
    again = LiveStamp(path)                         # a new one rewrites the same file in place
    assert view.read() == again.read() != first.read()
    monkeypatch.setattr(livestamp, "LOCK_WAIT_S", 0.05)
    second = LiveStamp(path)                        # a second supervisor on the same state
    assert not second.held and view.read() == again.read()
    second.close()
    again.close()
    path.unlink()                                   # a new file (the run directory was cleaned)
    third = LiveStamp(path)
    assert view.read() is None                      # the old file's lock is nobody's...
    view.refresh()                                  # ...until the API looks again (store changed)
    assert view.read() == third.read()
    third.close()
    path.unlink()
    view.refresh()
    assert view.read() is None
    third.bump()                                    # a bump after close is harmless


def test_station_stamp_combines_store_and_live_and_looks_again_when_the_store_changes():
    class Live:
        def __init__(self):
            self.value: int | None = 7
            self.refreshed = 0

        def read(self):
            return self.value

        def refresh(self):
            self.refreshed += 1

    store: list[int | None] = [1]
    live = Live()
    stamp = StationStamp(lambda: store[0], live)
    assert stamp() == (1, 7) and live.refreshed == 1
    assert stamp() == (1, 7) and live.refreshed == 1   # the store unchanged: no look at the file
    live.value = 8
    assert stamp() == (1, 8)
    store[0] = 2
    assert stamp() == (2, 8) and live.refreshed == 2
    live.value = None
    assert stamp() is None
    live.value, store[0] = 8, None
    assert stamp() is None


# ---- on a real station ------------------------------------------------------------------------

@pytest.fixture
def station(tmp_path):
    # A short control timeout: a request that must reach a stopped supervisor gives up in 2 s.
    with Station(tmp_path / "state", extra_env={"DOORSTATION_CONTROL_TIMEOUT": "2"}) as s:
        yield s


def _supervisor_pid(station: Station) -> int:
    from daemon.cli import control_client
    return int(control_client(station.state_dir.resolve()).request("ping")["pid"])


def test_every_write_shows_in_the_next_read(station):
    admin, viewer = station.session(ADMIN), station.session(VIEWER)
    url = f"{station.url}/vapix/call"
    for i in range(6):       # the peer-to-peer account and 6 more: within the 8 accounts allowed
        name = f"door-{i}"
        station.ok("SetSIPAccounts", {"SIPAccount": [{"UserId": name, "Password": "secret-pass",
                                                      "Registrar": "127.0.0.1"}]}, session=admin)
        for _ in range(2):       # the second read is the one that may be answered from what was kept
            got = viewer.post(url, json={"axcall:GetSIPAccounts": {}}, timeout=10).json()
            assert [a["UserId"] for a in got["SIPAccount"]][1:] == [f"door-{k}" for k in range(i + 1)], got
        simple = viewer.get(f"{url}?format=simple&action=axcall:GetSIPConfiguration", timeout=10)
        assert simple.status_code == 200
        station.ok("SetSIPConfiguration", {"SIPConfiguration": {"CallingTimeout": 30 + i}}, session=admin)
        got = viewer.post(url, json={"axcall:GetSIPConfiguration": {}}, timeout=10).json()
        assert got["SIPConfiguration"]["CallingTimeout"] == 30 + i, got


def test_kept_reads_answer_without_the_supervisor_but_never_for_a_wrong_password(station):
    viewer = station.session(VIEWER)
    url = f"{station.url}/vapix/call"
    for _ in range(2):     # the first read of a worker finds no idle control connection to check
        first = viewer.post(url, json={"axcall:GetAudioCodecs": {}}, timeout=10)
        assert first.status_code == 200
    pid = _supervisor_pid(station)
    os.kill(pid, signal.SIGSTOP)       # a supervisor that cannot answer, with its sockets still open
    try:
        again = viewer.post(url, json={"axcall:GetAudioCodecs": {}}, timeout=10)
        # A 200 can only be the kept answer: the stopped supervisor answers nothing, and a
        # request that reaches for it gets 503 after the control timeout (the live read below).
        assert again.status_code == 200 and again.content == first.content
        first_time = viewer.post(url, json={"axcall:GetCallStatuses": {}}, timeout=10)
        assert first_time.status_code == 503   # nothing kept for it: it must reach the supervisor
        wrong = station.session((VIEWER[0], "not-the-password"))
        assert wrong.post(url, json={"axcall:GetAudioCodecs": {}}, timeout=10).status_code == 401
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_supervisor_that_died_is_not_answered_for(station):
    viewer = station.session(VIEWER)
    url = f"{station.url}/vapix/call"
    assert viewer.post(url, json={"axcall:GetSIPAccounts": {}}, timeout=10).status_code == 200
    assert viewer.post(url, json={"axcall:GetSIPAccounts": {}}, timeout=10).status_code == 200
    os.kill(_supervisor_pid(station), signal.SIGKILL)
    time.sleep(0.2)
    r = viewer.post(url, json={"axcall:GetSIPAccounts": {}}, timeout=10)
    assert r.status_code == 503, r.text


# ---- live reads: calls -------------------------------------------------------------------------

def _statuses(session, station) -> dict:
    r = session.post(f"{station.url}/vapix/call", json={"axcall:GetCallStatuses": {}}, timeout=10)
    assert r.status_code == 200, r.text
    return {c["CallId"]: c for c in r.json()["CallStatus"]}


def _status(session, station, call_id: str) -> dict:
    r = session.post(f"{station.url}/vapix/call", json={"axcall:GetCallStatus": {"CallId": call_id}},
                     timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["CallStatus"]


def test_every_vms_call_change_shows_in_the_next_read(station):
    """VMS calls live in the supervisor's loop: each answer of Call/TerminateCall comes after the
    change, so the very next read (which may be a kept answer) must show it: no waiting."""
    viewer, operator = station.session(VIEWER), station.session(OPERATOR)
    for _ in range(2):
        assert _statuses(viewer, station) == {}
    for round_ in range(3):
        call_id = station.ok("Call", {"To": "VMS_CALL"}, session=operator)["CallId"]
        for _ in range(2):
            assert _statuses(viewer, station)[call_id]["CallState"] == "Calling"
            assert _status(viewer, station, call_id)["CallState"] == "Calling"
        station.ok("TerminateCall", {"CallId": call_id}, session=operator)
        for _ in range(2):
            ended = _statuses(viewer, station)[call_id]
            assert ended["CallState"] == "Terminated" and ended["StopTime"], ended
            assert _status(viewer, station, call_id) == ended
        assert len(_statuses(viewer, station)) == round_ + 1


def test_every_sip_call_change_shows_in_the_next_read_and_a_kept_one_needs_no_supervisor(
        station, baresip_factory):  # noqa: F811
    """A SIP call changes on the engine's thread, which bumps the live stamp before it emits the
    event: once an event of the call is in the log, the next read must show its state."""
    bob = baresip_factory()
    enable_sip(station)
    viewer = station.session(VIEWER)
    tail = EventTail(station)
    call_id = station.ok("Call", {"To": bob.aor})["CallId"]

    def reason_logged(reason: str) -> None:
        tail.wait_for(lambda e: e["data"].get("CallId") == call_id and e["data"].get("Reason") == reason,
                      what=reason)

    reason_logged("AcceptedByRemote")
    for _ in range(2):
        assert _statuses(viewer, station)[call_id]["CallState"] == "Active"
        assert _status(viewer, station, call_id)["CallState"] == "Active"
    bob.wait_event("CALL_ESTABLISHED")
    station.ok("TerminateCall", {"CallId": call_id})
    reason_logged("Terminated")
    ended = _statuses(viewer, station)[call_id]
    assert ended["CallState"] == "Terminated" and ended["StopTime"], ended
    first = viewer.post(f"{station.url}/vapix/call", json={"axcall:GetCallStatuses": {}}, timeout=10)
    pid = _supervisor_pid(station)
    os.kill(pid, signal.SIGSTOP)
    try:
        # 200 while the supervisor cannot answer: the kept answer, the same bytes
        again = viewer.post(f"{station.url}/vapix/call", json={"axcall:GetCallStatuses": {}}, timeout=10)
        assert again.status_code == 200 and again.content == first.content
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_second_supervisor_on_the_same_state_does_not_start(station):
    """It would take the control socket over while the first one keeps the live stamp (and the
    hardware): refused, with exit 1 so that systemd tries again once the other one ended."""
    import subprocess
    import sys
    second = subprocess.run([sys.executable, "-m", "daemon.supervisor", "--state-dir",
                             str(station.state_dir.resolve())], capture_output=True, text=True, timeout=60)
    assert second.returncode == 1, second.stderr
    assert "another supervisor is running" in second.stderr
    viewer = station.session(VIEWER)
    r = viewer.post(f"{station.url}/vapix/call", json={"axcall:GetCallStatuses": {}}, timeout=10)
    assert r.status_code == 200, r.text
