"""Axis event streaming over WebSocket on a real `doorstation run` (HTTP and HTTPS), with the
`websockets` client library: events:configure with topic and content filters (a new configure
replaces the filter), Initialized states, a press and the door relay as events, a real call to
baresip with DTMF, wssession.cgi tokens, authentication and origin, caps, a slow reader dropped
while another keeps receiving, an oversized client message."""
from __future__ import annotations

import base64
import contextlib
import json
import socket
import ssl
import threading
import time

import pytest
import requests
from requests.auth import HTTPDigestAuth
from requests.utils import parse_dict_header
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.harness import ADMIN, OPERATOR, VIEWER, Station, axis_hardware_toml, doorstation, free_port
from tests.sip_peers import baresip_factory  # noqa: F401  (fixture)
from tests.stack_sip import enable_sip, open_door_dtmf, wait_call_state

pytestmark = pytest.mark.integration

PATH = "/vapix/ws-data-stream"
IO = "tns1:Device/tnsaxis:IO/Port"
RELAY = "tns1:Device/Trigger/Relay"
PER_ADDRESS, TOTAL, QUEUE = 4, 7, 64


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    state = tmp_path_factory.mktemp("ws") / "state"
    state.mkdir()
    (state / "hardware.toml").write_text(axis_hardware_toml(400))
    https = free_port()
    st = Station(state, extra_args=["--https", f"127.0.0.1:{https}"],
                 extra_env={"DOORSTATION_MAX_EVENT_STREAMS_PER_ADDRESS": str(PER_ADDRESS),
                            "DOORSTATION_MAX_EVENT_STREAMS": str(TOTAL),
                            "DOORSTATION_EVENT_STREAM_QUEUE": str(QUEUE)}).start()
    st.https_port = https
    yield st
    st.stop()
    output = "".join(st.output)
    assert "Traceback" not in output and "Error handling request" not in output, output[-4000:]


def basic(user) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()}


def ws(station, user=ADMIN, query="sources=events", headers=None, source="127.0.0.1", rcvbuf=None, **kw):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((source, 0))
    sock.settimeout(10)
    sock.connect(("127.0.0.1", station.http_port))
    sock.settimeout(None)
    all_headers = {**(basic(user) if user else {}), **(headers or {})}
    return connect(f"ws://127.0.0.1:{station.http_port}{PATH}?{query}", sock=sock,
                   additional_headers=all_headers, open_timeout=10, **kw)


def configure(conn, *filters: dict, context="c") -> dict:
    conn.send(json.dumps({"apiVersion": "1.0", "context": context, "method": "events:configure",
                          "params": {"eventFilterList": list(filters)}}))
    return json.loads(conn.recv(timeout=10))


def notes(conn, count: int, timeout: float = 10.0) -> list[tuple[str, dict, dict]]:
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        m = json.loads(conn.recv(timeout=max(0.01, deadline - time.monotonic())))
        assert m["method"] == "events:notify", m
        n = m["params"]["notification"]
        assert isinstance(n["timestamp"], int) and m["apiVersion"] == "1.0"
        out.append((n["topic"], n["message"]["source"], n["message"]["data"]))
    return out


def nothing_more(conn, wait: float = 0.5) -> None:
    with pytest.raises(TimeoutError):
        conn.recv(timeout=wait)


def press(station, hang_up: bool = True) -> None:
    """A button press; it rings the VMS (hardware.toml's default recipient, VMS_CALL): that call is
    ended again unless the test wants to see it, so every test starts with no call."""
    done = doorstation("press", state_dir=station.state_dir)
    assert done.returncode == 0, done.stderr
    if hang_up:
        end_calls(station)


def end_calls(station) -> None:
    deadline = time.monotonic() + 10
    while calls := [c for c in station.ok("GetCallStatuses", {})["CallStatus"] if c["CallState"] != "Terminated"]:
        assert time.monotonic() < deadline, calls
        for call in calls:
            station.call("TerminateCall", {"CallId": call["CallId"]})
        time.sleep(0.1)


def open_door(station) -> None:
    r = station.session().post(f"{station.url}/api/door/open", timeout=10)
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------------------------- events
def test_discovery_lists_the_api(station):
    r = station.session(VIEWER).post(f"{station.url}/axis-cgi/apidiscovery.cgi",
                                     json={"apiVersion": "1.0", "method": "getApiList"}, timeout=10)
    ids = {a["id"]: a["version"] for a in r.json()["data"]["apiList"]}
    assert ids["event-streaming-over-websocket"] == "1.0"


def test_initial_states_then_a_press_that_rings(station):
    with ws(station, VIEWER) as conn:
        answer = configure(conn, {"topicFilter": "tns1:Device/tnsaxis:IO//.|tnsaxis:Call//."}, context="io")
        assert answer == {"apiVersion": "1.0", "context": "io", "method": "events:configure", "data": {}}
        assert notes(conn, 3) == [(IO, {"port": "0"}, {"state": "0"}), (IO, {"port": "2"}, {"state": "0"}),
                                  ("tnsaxis:Call/State", {"Source": "DoorStation"}, {"CallState": "Idle"})]
        press(station, hang_up=False)
        got = notes(conn, 4)
        assert [got[0], got[2], got[3]] == [(IO, {"port": "0"}, {"state": "1"}),
                                            ("tnsaxis:Call/State", {"Source": "DoorStation"}, {"CallState": "Calling"}),
                                            (IO, {"port": "0"}, {"state": "0"})]
        assert got[1][0] == "tnsaxis:Call/StateChange" and got[1][2]["Reason"] == "Initiated"
        assert got[1][2]["RemoteURI"] == "VMS_CALL"
        end_calls(station)
        got = notes(conn, 2)
        assert got[0][2]["Reason"] == "Terminated" and got[1][2] == {"CallState": "Idle"}
        nothing_more(conn)


def test_a_new_configure_replaces_the_filter(station):
    with ws(station) as conn:
        configure(conn, {"topicFilter": "tns1:Device/tnsaxis:IO//."})
        notes(conn, 2)
        assert configure(conn, {"topicFilter": RELAY})["data"] == {}
        assert notes(conn, 2) == [(RELAY, {"RelayToken": "1"}, {"LogicalState": "inactive"}),
                                  (RELAY, {"RelayToken": "3"}, {"LogicalState": "inactive"})]
        press(station)           # no longer in the filter: logged before the door, never sent
        open_door(station)
        assert notes(conn, 2) == [(RELAY, {"RelayToken": "1"}, {"LogicalState": "active"}),
                                  (RELAY, {"RelayToken": "1"}, {"LogicalState": "inactive"})]
        nothing_more(conn)


def test_content_filter_and_one_copy_per_matching_entry(station):
    with ws(station) as conn:
        port2 = 'boolean(//SimpleItem[@Name="port" and @Value="2"])'
        configure(conn, {"topicFilter": IO, "contentFilter": port2}, {"topicFilter": "tns1:Device//."})
        got = notes(conn, 5)
        assert got.count((IO, {"port": "2"}, {"state": "0"})) == 2      # matched by both entries
        assert got.count((IO, {"port": "0"}, {"state": "0"})) == 1
        nothing_more(conn)
        configure(conn, {"contentFilter": 'boolean(//SimpleItem[@Name="RelayToken" and @Value="1"]) and '
                                          'boolean(//SimpleItem[@Name="LogicalState" and @Value="active"])'})
        nothing_more(conn)          # relay 1 is inactive: no Initialized passes
        open_door(station)
        assert notes(conn, 1) == [(RELAY, {"RelayToken": "1"}, {"LogicalState": "active"})]
        nothing_more(conn, 1.0)     # the re-lock is "inactive": filtered out


@pytest.mark.parametrize("message, code", [
    ("not json", 2101),
    (json.dumps({"apiVersion": "1.0", "method": "events:subscribe", "params": {}}), 2102),
    (json.dumps({"apiVersion": "1.0", "method": "events:configure", "params": {}}), 2103),
    (json.dumps({"apiVersion": "1.0", "method": "events:configure",
                 "params": {"eventFilterList": [{"topicFilter": "a//b//."}]}}), 2104),
    (json.dumps({"apiVersion": "1.0", "method": "events:configure",
                 "params": {"eventFilterList": [{"contentFilter": "//SimpleItem[1]"}]}}), 2104),
    (json.dumps({"apiVersion": "2.0", "method": "events:configure", "params": {"eventFilterList": []}}), 2100),
    (json.dumps({"apiVersion": "1.0", "method": "events:configure",
                 "params": {"eventFilterList": [{"topicFilter": IO}] * 33}}), 2107),
])
def test_configure_errors_keep_the_stream(station, message, code):
    with ws(station) as conn:
        conn.send(message)
        answer = json.loads(conn.recv(timeout=10))
        assert answer["error"]["code"] == code and answer["error"]["message"], answer
        assert configure(conn, {"topicFilter": RELAY})["data"] == {}     # still usable


def test_oversized_message_closes_the_connection(station):
    with ws(station) as conn:
        conn.send("x" * 70000)
        with pytest.raises(ConnectionClosed) as closed:
            conn.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


# ---------------------------------------------------------------------------------- authentication
def refused(station, **kw) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as e, ws(station, **kw):
        pass
    return e.value


def test_no_credentials_is_401_with_challenges(station):
    e = refused(station, user=None)
    assert e.response.status_code == 401
    challenges = e.response.headers.get_all("WWW-Authenticate")
    assert any(c.startswith("Digest ") for c in challenges) and any(c.startswith("Basic ") for c in challenges)
    assert refused(station, user=("admin", "wrong")).response.status_code == 401


def test_not_an_upgrade_or_another_source(station):
    s = station.session(VIEWER)
    for method in (s.get, s.head):
        r = method(f"{station.url}{PATH}?sources=events", timeout=10)
        assert r.status_code == 426 and r.headers["Sec-WebSocket-Version"] == "13"
    assert refused(station, query="sources=video").response.status_code == 400


def test_digest_authentication(station):
    e = refused(station, user=None)
    challenge = next(c for c in e.response.headers.get_all("WWW-Authenticate") if "algorithm=MD5" in c)
    digest = HTTPDigestAuth(*OPERATOR)
    digest.init_per_thread_state()
    digest._thread_local.chal = parse_dict_header(challenge.removeprefix("Digest "))
    header = digest.build_digest_header("GET", f"http://127.0.0.1:{station.http_port}{PATH}?sources=events")
    with ws(station, user=None, headers={"Authorization": header}) as conn:
        assert configure(conn, {"topicFilter": RELAY})["data"] == {}


def token(station, user=VIEWER) -> str:
    r = station.session(user).get(f"{station.url}/axis-cgi/wssession.cgi", timeout=10)
    assert r.status_code == 200 and r.text.isdigit(), r.text
    return r.text


def test_token_is_single_use(station):
    t = token(station)
    with ws(station, user=None, query=f"wssession={t}&sources=events") as conn:
        assert configure(conn, {"topicFilter": IO})["data"] == {}
    assert refused(station, user=None, query=f"wssession={t}&sources=events").response.status_code == 401


def test_wrong_tokens(station):
    for bad in ("1234567890123456789", "abc", "", "9" * 400):
        assert refused(station, user=None, query=f"wssession={bad}&sources=events").response.status_code == 401
    assert requests.get(f"{station.url}/axis-cgi/wssession.cgi", timeout=10).status_code == 401


def test_token_is_bound_to_the_role_it_was_issued_for(station):
    t = token(station, OPERATOR)
    done = doorstation("user", "add", OPERATOR[0], "--role", "viewer", "--password-stdin", "--replace",
                       state_dir=station.state_dir, input=OPERATOR[1] + "\n")
    assert done.returncode == 0, done.stderr
    try:
        assert refused(station, user=None, query=f"wssession={t}&sources=events").response.status_code == 401
    finally:
        doorstation("user", "add", OPERATOR[0], "--role", "operator", "--password-stdin", "--replace",
                    state_dir=station.state_dir, input=OPERATOR[1] + "\n")


def test_token_expires(station):
    t = token(station)
    time.sleep(15.5)
    assert refused(station, user=None, query=f"wssession={t}&sources=events").response.status_code == 401


def test_origin_is_not_a_credential(station):
    evil = {"Origin": "http://evil.example"}
    assert refused(station, headers=evil).response.status_code == 403       # browser's cached credentials
    same = {"Origin": f"http://127.0.0.1:{station.http_port}"}
    with ws(station, headers=same) as conn:
        assert configure(conn, {"topicFilter": IO})["data"] == {}
    with ws(station, user=None, headers=evil, query=f"wssession={token(station)}&sources=events") as conn:
        assert configure(conn, {"topicFilter": IO})["data"] == {}


def test_wss_over_https(station):
    context = ssl.create_default_context(cafile=str(station.state_dir / "tls" / "station.crt"))
    with connect(f"wss://127.0.0.1:{station.https_port}{PATH}?sources=events", ssl=context,
                 additional_headers=basic(VIEWER), open_timeout=10) as conn:
        configure(conn, {"topicFilter": "tns1:Device/tnsaxis:IO//."})
        notes(conn, 2)
        press(station)
        assert notes(conn, 2) == [(IO, {"port": "0"}, {"state": "1"}), (IO, {"port": "0"}, {"state": "0"})]


# ---------------------------------------------------------------------------------- bounds
def test_caps_per_address_and_in_total(station):
    time.sleep(0.5)              # the previous tests' streams have ended
    with contextlib.ExitStack() as opened:
        for _ in range(PER_ADDRESS):
            opened.enter_context(ws(station, source="127.0.0.5"))
        assert refused(station, source="127.0.0.5").response.status_code == 429
        for _ in range(TOTAL - PER_ADDRESS):
            opened.enter_context(ws(station, source="127.0.0.6"))
        assert refused(station, source="127.0.0.7").response.status_code == 503
    time.sleep(0.5)
    with ws(station, source="127.0.0.7") as conn:      # the slots came back
        assert configure(conn, {"topicFilter": IO})["data"] == {}


def log_end(station) -> int:
    after = 0
    while True:
        page = station.session().get(f"{station.url}/api/events?after={after}&limit=1000", timeout=10).json()
        if not page["events"]:
            return after
        after = page["next"]


def light_changes(station, after: int) -> list[str]:
    """The light's LogicalState changes logged after `after`, as the event model sends them."""
    out, state = [], None
    while True:
        page = station.session().get(f"{station.url}/api/events?after={after}&limit=1000", timeout=10).json()
        if not page["events"]:
            return out
        after = page["next"]
        for e in page["events"]:
            if e["topic"] == "doorstation:Output" and e["data"].get("Output") == "light":
                new = "active" if e["data"].get("Active") else "inactive"
                if new != state:
                    out.append(new)
                state = new


def test_slow_reader_is_dropped_while_another_keeps_receiving(station):
    light = {"topicFilter": RELAY, "contentFilter": 'boolean(//SimpleItem[@Name="RelayToken" and @Value="3"])'}
    with ws(station, source="127.0.0.8") as fast, ws(station, source="127.0.0.9", rcvbuf=4096, max_queue=2) as slow:
        configure(fast, light)
        configure(slow, light)
        assert notes(fast, 1) == [(RELAY, {"RelayToken": "3"}, {"LogicalState": "inactive"})]
        start = log_end(station)
        received: list = []
        stop = threading.Event()

        def read_fast() -> None:
            while not stop.is_set():
                try:
                    received.extend(notes(fast, 1, timeout=1.0))
                except TimeoutError:
                    continue
                except ConnectionClosed:
                    return
        reader = threading.Thread(target=read_fast, daemon=True)
        reader.start()
        session = station.session(OPERATOR)
        steps = [{"state": "closed" if i % 2 == 0 else "open", "time": 1} for i in range(16)]
        dropped = "dropped the event stream (WebSocket) to 127.0.0.9: slow client"
        for _ in range(200):      # a few hundred notifications fill the slow client's buffers and queue
            r = session.post(f"{station.url}/axis-cgi/io/portmanagement.cgi", timeout=10, json={
                "apiVersion": "1.0", "method": "setStateSequence", "params": {"port": "3", "sequence": steps}})
            assert "error" not in r.json(), r.text
            time.sleep(0.03)      # the sequence runs to its end (a new one would cancel its rest)
            if dropped in "".join(station.output):
                break
        assert dropped in "".join(station.output)
        expected = light_changes(station, start)
        deadline = time.monotonic() + 10
        while len(received) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        reader.join(5)
        assert [n[2]["LogicalState"] for n in received] == expected       # every change, in order
        with pytest.raises(ConnectionClosed):      # the slow one finds its stream cut after what it had
            for _ in range(5000):
                slow.recv(timeout=10)


# ---------------------------------------------------------------------------------- a real call
@pytest.mark.sip
def test_call_and_dtmf_events_during_a_real_call(station, baresip_factory):  # noqa: F811
    """Last in this module: it switches SIP on. One stream with the call topics, one with the
    relays: a call to baresip, #1234# opens the door, the call ends."""
    enable_sip(station)
    event_id, _ = open_door_dtmf(station)
    r = station.session().put(f"{station.url}/api/door/bindings", json={"DTMFEventIds": [event_id]}, timeout=10)
    assert r.status_code == 200, r.text
    bob = baresip_factory()
    with ws(station, VIEWER) as calls, ws(station, VIEWER) as door:
        configure(calls, {"topicFilter": "tnsaxis:Call//."})
        configure(door, {"topicFilter": RELAY + "|tns1:Device/tnsaxis:IO//."})
        assert notes(calls, 1) == [("tnsaxis:Call/State", {"Source": "DoorStation"}, {"CallState": "Idle"})]
        assert len(notes(door, 4)) == 4
        call_id = station.ok("Call", {"To": bob.aor})["CallId"]
        wait_call_state(station, call_id, "Active")
        bob.wait_event("CALL_ESTABLISHED")
        assert bob.command("sndcode", "#1234#")["ok"]
        assert notes(door, 2, timeout=15) == [(RELAY, {"RelayToken": "1"}, {"LogicalState": "active"}),
                                              (RELAY, {"RelayToken": "1"}, {"LogicalState": "inactive"})]
        station.ok("TerminateCall", {"CallId": call_id})
        got = notes(calls, 7, timeout=15)
        flow = [(t, d.get("Reason") or d.get("CallState") or ("DTMF" if t.endswith("DTMF") else "?"))
                for t, _, d in got]
        assert flow == [("tnsaxis:Call/StateChange", "Initiated"), ("tnsaxis:Call/State", "Calling"),
                        ("tnsaxis:Call/StateChange", "AcceptedByRemote"), ("tnsaxis:Call/State", "Active"),
                        ("tnsaxis:Call/DTMF", "DTMF"),
                        ("tnsaxis:Call/StateChange", "Terminated"), ("tnsaxis:Call/State", "Idle")]
        assert got[4][1] == {"DTMFEventId": event_id} and got[4][2] == {"CallId": call_id}
        assert got[0][2]["CallId"] == call_id and got[0][2]["RemoteURI"].startswith("sip:bob@")
        nothing_more(calls)
        nothing_more(door)             # nothing of the call on the other stream


# ---------------------------------------------------------------------------------- timeouts
def test_configure_deadline_pings_and_idle_timeout(tmp_path):
    """Its own station with 2 s deadlines: no events:configure -> 1008; a client that answers
    pings (the websockets library does) stays; one that never answers is closed after the idle
    timeout."""
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "hardware.toml").write_text(axis_hardware_toml(400))
    with Station(tmp_path / "state", extra_env={"DOORSTATION_EVENT_STREAM_CONFIGURE_TIMEOUT": "2",
                                                "DOORSTATION_EVENT_STREAM_IDLE_TIMEOUT": "2"}) as st:
        with ws(st) as conn:
            with pytest.raises(ConnectionClosed) as closed:
                conn.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        with ws(st) as conn:
            configure(conn, {"topicFilter": IO})
            notes(conn, 2)
            time.sleep(5)                                   # pinged, answered: still there
            assert configure(conn, {"topicFilter": RELAY})["data"] == {}
        # by hand, a client that says nothing after its configure and never answers a ping
        from wsproto.connection import Connection, ConnectionType
        from wsproto.events import TextMessage
        sock = socket.create_connection(("127.0.0.1", st.http_port), timeout=10)
        key = base64.b64encode(b"0123456789abcdef").decode()
        sock.sendall((f"GET {PATH}?sources=events HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      f"Authorization: {basic(VIEWER)['Authorization']}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101 "), head
        client = Connection(ConnectionType.CLIENT)
        sock.sendall(client.send(TextMessage(json.dumps({"apiVersion": "1.0", "method": "events:configure",
                                                         "params": {"eventFilterList": []}}))))
        started = time.monotonic()
        while sock.recv(65536):                           # the answer, pings, a close frame, then EOF
            assert time.monotonic() - started < 10
        assert 1.5 < time.monotonic() - started < 8
        sock.close()
