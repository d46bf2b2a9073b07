"""Unit tests of the RTSP server's pure parts: request parsing limits, transports, RTP headers,
Digest verification (RFC 2069 as axis v60 sends it, and qop=auth), and the hub's bounded
per-subscriber queues (a slow subscriber is dropped with a reason, the others keep going)."""
import asyncio
import hashlib
import logging
import struct

import pytest

from daemon.axis_events import AxisEventModel, TopicFilter
from daemon.rtsp.auth import ConnectionNonce, DigestVerifier, RtspUser
from daemon.rtsp.hub import EventHub, Subscriber
from daemon.rtsp.protocol import RtpSequence, RtspError, format_response, parse_request, parse_transport
from daemon.users import REALM, UserRecord

PATHS = ("/axis-media/media.amp", "/axis-media/media.amp/trackID=1")
URL = "rtsp://10.0.0.2/axis-media/media.amp?video=0&audio=0&event=on"


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


# ------------------------------------------------------------------------------ requests
def test_parse_needs_the_whole_head_then_consumes_exactly_one_request():
    one = f"OPTIONS {URL} RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: HASS Axis\r\n\r\n".encode()
    assert parse_request(one[:-2]) == (None, 0)
    request, used = parse_request(one + b"DESCRIBE")
    assert used == len(one) and request.method == "OPTIONS" and request.cseq == "1"
    assert request.headers["user-agent"] == "HASS Axis"
    assert request.query == {"video": "0", "audio": "0", "event": "on"}


def test_get_parameter_keep_alive_parses():
    request, _ = parse_request(
        b"GET_PARAMETER rtsp://h/axis-media/media.amp/ RTSP/1.0\r\nCSeq: 9\r\nSession: AB\r\n\r\n")
    assert (request.method, request.headers["session"]) == ("GET_PARAMETER", "AB")


@pytest.mark.parametrize("raw, status", [
    (b"$\x00\x00\x10" + b"x" * 16, 400),                               # interleaved binary data
    (b"OPTIONS * HTTP/1.1\r\n\r\n", 505),
    (b"OPTIONS *\r\n\r\n", 400),
    (b"OPTIONS * RTSP/1.0\r\nbad header\r\n\r\n", 400),
    (b"OPTIONS * RTSP/1.0\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431),
    (b"OPTIONS * RTSP/1.0\r\nX: " + b"a" * 9000, 431),                 # no end in sight
    (b"OPTIONS * RTSP/1.0\r\n" + b"X: y\r\n" * 60 + b"\r\n", 431),
    (b"OPTIONS * RTSP/1.0\r\nContent-Length: 99999\r\n\r\n", 413),
    (b"OPTIONS * RTSP/1.0\r\nContent-Length: -1\r\n\r\n", 413),
    (b"OPTIONS * RTSP/1.0\r\nX: \xff\r\n\r\n", 400),
])
def test_malformed_requests_close_the_connection(raw, status):
    with pytest.raises(RtspError) as e:
        parse_request(raw)
    assert e.value.status == status and e.value.close


def test_response_is_one_block_with_cseq_and_length():
    out = format_response(200, "7", [("Session", "AB;timeout=60")], b"v=0\r\n", now=0)
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[:2] == [b"RTSP/1.0 200 OK", b"CSeq: 7"]
    assert b"Content-Length: 5" in head and body == b"v=0\r\n"


def test_transport_udp_unicast_only():
    t = parse_transport("RTP/AVP;unicast;client_port=5000-5001")
    assert (t.rtp_port, t.rtcp_port) == (5000, 5001)
    assert parse_transport("RTP/AVP/TCP;interleaved=0-1, RTP/AVP;unicast;client_port=6000-6001").rtp_port == 6000
    for bad in ("RTP/AVP/TCP;unicast;interleaved=0-1", "RTP/AVP;multicast;client_port=5000-5001",
                "RTP/AVP;unicast", "RTP/AVP;unicast;client_port=0-1", "RTP/AVP;unicast;client_port=70000-70001", ""):
        with pytest.raises(RtspError) as e:
            parse_transport(bad)
        assert e.value.status == 461


def test_rtp_header_is_12_bytes_and_counts():
    seq = RtpSequence(ssrc=0x11223344, seq=0xFFFF, ts_base=1000, started=0.0)
    first, second = seq.packet(b"<a/>", now=1.0), seq.packet(b"<b/>", now=1.0)
    v, pt, n, ts, ssrc = struct.unpack("!BBHII", first[:12])
    assert (v, pt & 0x7F, n, ts, ssrc) == (0x80, 98, 0xFFFF, 1000 + 90000, 0x11223344)
    assert first[12:] == b"<a/>" and struct.unpack("!H", second[2:4])[0] == 0


# ------------------------------------------------------------------------------ digest
def verifier(clock=lambda: 0.0):
    ha1 = md5(f"viewer:{REALM}:secret-pw-1")
    users = {"viewer": UserRecord("viewer", "viewer", REALM, ha1, "", "", 0.0)}
    return DigestVerifier(users.get, clock=clock)


def authorization(nonce: str, method="DESCRIBE", uri=URL, password="secret-pw-1", qop_nc=None):
    ha1, ha2 = md5(f"viewer:{REALM}:{password}"), md5(f"{method}:{uri}")
    if qop_nc is None:
        response = md5(f"{ha1}:{nonce}:{ha2}")
        extra = ""
    else:
        response = md5(f"{ha1}:{nonce}:{qop_nc}:c0ffee:auth:{ha2}")
        extra = f', qop=auth, nc={qop_nc}, cnonce="c0ffee"'
    return (f'Digest username="viewer", realm="{REALM}", algorithm="MD5", nonce="{nonce}", uri="{uri}", '
            f'response="{response}"{extra}')


def test_challenge_has_realm_nonce_then_stale_as_axis_reads_it():
    nonce = ConnectionNonce()
    line = "WWW-Authenticate: " + verifier().challenge(nonce)
    assert line.split('"')[1] == REALM and line.split('"')[3] == nonce.value
    assert line.split("stale=")[1] == "FALSE"


def test_rfc2069_digest_as_axis_v60_sends_it():
    nonce = ConnectionNonce(issued=0.0)
    v = verifier()
    assert v.check("DESCRIBE", authorization(nonce.value), nonce, PATHS) == RtspUser("viewer", "viewer")
    # axis signs SETUP with the media URL while the request line holds the control URL
    assert isinstance(v.check("SETUP", authorization(nonce.value, "SETUP"), nonce, PATHS), RtspUser)


def test_digest_failures():
    nonce, other = ConnectionNonce(issued=0.0), ConnectionNonce(issued=0.0)
    v = verifier()
    assert v.check("DESCRIBE", None, nonce, PATHS) == "challenge"
    assert v.check("DESCRIBE", "Basic dmlld2VyOnNlY3JldA==", nonce, PATHS) == "challenge"
    assert v.check("DESCRIBE", authorization(nonce.value, password="guess"), nonce, PATHS) == "failed"
    assert v.check("DESCRIBE", authorization(other.value), nonce, PATHS) == "failed"     # another connection's
    assert v.check("PLAY", authorization(nonce.value), nonce, PATHS) == "failed"          # signed for DESCRIBE
    assert v.check("DESCRIBE", authorization(nonce.value, uri="rtsp://x/other"), nonce, PATHS) == "failed"
    assert v.check("DESCRIBE", "Digest " + "x" * 5000, nonce, PATHS) == "failed"
    late = verifier(clock=lambda: 10_000.0)
    assert late.check("DESCRIBE", authorization(nonce.value), nonce, PATHS) == "stale"


def test_qop_auth_nonce_counts_must_grow():
    nonce = ConnectionNonce(issued=0.0)
    v = verifier()
    assert isinstance(v.check("DESCRIBE", authorization(nonce.value, qop_nc="00000001"), nonce, PATHS), RtspUser)
    assert v.check("DESCRIBE", authorization(nonce.value, qop_nc="00000001"), nonce, PATHS) == "failed"
    assert isinstance(v.check("DESCRIBE", authorization(nonce.value, qop_nc="00000002"), nonce, PATHS), RtspUser)


# ------------------------------------------------------------------------------ hub
STATUS = {"CallState": "Idle", "Hardware": {"Relay": "Locked", "ButtonPressed": False}}


def test_slow_subscriber_is_dropped_and_the_others_keep_their_events():
    async def run():
        hub = EventHub(logging.getLogger("test"))
        hub.reset(AxisEventModel.from_snapshot(STATUS, None))
        sent_fast, dropped = [], []
        fast = Subscriber(TopicFilter(), sent_fast.append, lambda r: None, max_queue=64)
        slow = Subscriber(TopicFilter(), lambda n: None, dropped.append, max_queue=4)
        assert hub.subscribe(fast) and hub.subscribe(slow)
        slow.task.cancel()          # never drains its queue
        for i in range(10):
            state = "Unlocked" if i % 2 == 0 else "Locked"
            hub.publish([{"topic": "doorstation:Relay", "time": i, "data": {"State": state}}])
        await asyncio.sleep(0.05)
        return hub, sent_fast, dropped, slow
    hub, sent_fast, dropped, slow = asyncio.run(run())
    assert dropped == ["slow subscriber: 4 notifications queued"] and slow.dropped
    assert len(hub.subscribers) == 1 and slow not in hub.subscribers
    # the fast one got the initial states (relay, button, call state) and all 10 relay changes
    assert len(sent_fast) == 3 + 10
    assert [n.operation for n in sent_fast[:3]] == ["Initialized"] * 3


def test_hub_refuses_subscribers_beyond_its_bound_and_before_a_snapshot():
    async def run():
        hub = EventHub(logging.getLogger("test"), max_subscribers=2)
        early = Subscriber(TopicFilter(), lambda n: None, lambda r: None)
        refused_early = not hub.subscribe(early)
        hub.reset(AxisEventModel.from_snapshot(STATUS, None))
        subs = [Subscriber(TopicFilter(), lambda n: None, lambda r: None) for _ in range(3)]
        results = [hub.subscribe(s) for s in subs]
        for s in subs[:2]:
            hub.unsubscribe(s)
        return refused_early, results
    assert asyncio.run(run()) == (True, [True, True, False])


def test_a_new_snapshot_sends_changed_for_what_changed_meanwhile():
    async def run():
        hub = EventHub(logging.getLogger("test"))
        hub.reset(AxisEventModel.from_snapshot(STATUS, None))
        got = []
        sub = Subscriber(TopicFilter("tns1:Device//."), got.append, lambda r: None)
        hub.subscribe(sub)
        snapshot = {**STATUS, "Hardware": {"Relay": "Unlocked", "ButtonPressed": False}}
        hub.reset(AxisEventModel.from_snapshot(snapshot, None))
        await asyncio.sleep(0.05)
        hub.unsubscribe(sub)
        return [(n.topic, dict(n.data), n.operation) for n in got]
    out = asyncio.run(run())
    assert out[-1] == ("tns1:Device/Trigger/Relay", {"LogicalState": "active"}, "Changed")
    assert len(out) == 3      # two Initialized (relay, button), one Changed


def test_claimed_name_for_the_failure_limiter():
    nonce = ConnectionNonce()
    assert DigestVerifier.claimed_name(authorization(nonce.value)) == "viewer"
    assert DigestVerifier.claimed_name(None) == ""
    assert DigestVerifier.claimed_name('Digest username="' + "x" * 100 + '"') == ""
    assert DigestVerifier.claimed_name("Basic dmlld2VyOnNlY3JldA==") == ""
