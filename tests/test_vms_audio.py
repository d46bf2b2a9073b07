"""VMS calls answered over HTTP audio (VAPIX Audio API), on a real `doorstation run` with the
simulated sound device: the microphone plays a 1000 Hz tone, the speaker is written to a WAV file.

A VMS-style client here is plain `requests`: GET receive.cgi (audio from the station) and POST
transmit.cgi (audio to it), the way a VMS answers a VMS call."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import requests
from requests.auth import HTTPDigestAuth

from tests.audio_analysis import mulaw_to_pcm, pcm_to_mulaw, read_wav, tone, tone_blocks
from tests.harness import OPERATOR, VIEWER, Station, doorstation
from tests.sip_peers import baresip_factory  # noqa: F401  (fixture)
from tests.stack_sip import (
    TOPIC_STATE_CHANGE,
    EventTail,
    call_status,
    enable_sip,
    hardware_toml,
    wait_call_state,
    wait_until,
)

MIC_HZ, TX_HZ = 1000.0, 600.0
OTHER_HZ = (425.0, 600.0, 1000.0, 1500.0)


def audio_toml(speaker: Path) -> str:
    return hardware_toml() + f'[audio]\nsimulated = true\nsim_input = "tone:{MIC_HZ:g}"\nsim_output = "{speaker}"\n'


@pytest.fixture
def station(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    speaker = tmp_path / "speaker.wav"
    (state / "hardware.toml").write_text(audio_toml(speaker))
    st = Station(state).start()
    st.speaker = speaker
    try:
        yield st
    finally:
        st.stop()


def vms_config(st: Station, audio_out: int, audio_in: int, video: int = 0, timeout: int = 30) -> None:
    st.ok("SetVMSCallConfiguration", {"VMSCallConfiguration": {
        "Enabled": True, "AudioFromDeviceToNetworkStreams": audio_out,
        "AudioFromNetworkToDeviceStreams": audio_in, "VideoFromDeviceToNetworkStreams": video,
        "Timeout": timeout}})


class Receiver:
    """GET receive.cgi in a thread; keeps what arrives (mu-law bytes) until stop()."""

    def __init__(self, st: Station, user=VIEWER) -> None:
        self.session = requests.Session()
        self.session.auth = HTTPDigestAuth(*user)
        self.data = bytearray()
        self.status: int | None = None
        self.ended = threading.Event()
        self._stop = threading.Event()
        self._url = f"{st.url}/axis-cgi/audio/receive.cgi"
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with self.session.get(self._url, stream=True, timeout=10) as r:
                self.status = r.status_code
                self.content_type = r.headers.get("Content-Type")
                for chunk in r.iter_content(chunk_size=None):
                    self.data += chunk
                    if self._stop.is_set() or len(self.data) > 8000 * 60:
                        break
        except requests.RequestException:
            pass
        finally:
            self.ended.set()

    def wait_bytes(self, n: int, timeout: float = 10.0) -> None:
        wait_until(lambda: len(self.data) >= n or self.ended.is_set(), timeout, f"{n} received bytes", step=0.05)

    def stop(self) -> None:
        self._stop.set()
        self.ended.wait(15)
        self.session.close()


def paced_tone(seconds: float, hz: float = TX_HZ, rate: int = 8000, chunk_ms: int = 40,
               stop: threading.Event | None = None):
    """mu-law chunks of a tone at real-time pace (a chunked request body)."""
    data = pcm_to_mulaw(tone(hz, rate, seconds))
    n = rate * chunk_ms // 1000
    start = time.monotonic()
    for i in range(0, len(data), n):
        if stop is not None and stop.is_set():
            return
        yield data[i:i + n]
        delay = start + (i + n) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def transmit(st: Station, body, content_type: str = "audio/basic", user=OPERATOR, timeout: float = 30):
    """A streamed body cannot be sent twice, so the Digest challenge is fetched first (a HEAD),
    as a VMS keeps its session's nonce: the POST then carries its Authorization at once."""
    with requests.Session() as s:
        s.auth = HTTPDigestAuth(*user)
        s.head(f"{st.url}/axis-cgi/audio/receive.cgi", timeout=timeout)
        return s.post(f"{st.url}/axis-cgi/audio/transmit.cgi", data=body,
                      headers={"Content-Type": content_type}, timeout=timeout)


def reasons(tail: EventTail, call_id: str) -> list[str]:
    return [e["data"]["Reason"] for e in tail.of_call(call_id) if e["topic"] == TOPIC_STATE_CHANGE]


def test_vms_client_answers_with_receive_and_transmit(station):
    """Thresholds 1/1/0: receive.cgi answers the Calling VMS call (AcceptedByRemote), transmit.cgi
    is a second VMS call (two counts over threshold); the transmitted tone reaches the speaker, the
    microphone's tone reaches the receiver; both calls end Terminated when the streams close."""
    st = station
    vms_config(st, 1, 1)
    tail = EventTail(st)
    call_id = st.ok("Call", {"To": "VMS_CALL"})["CallId"]
    assert call_status(st, call_id)["CallState"] == "Calling"

    rx = Receiver(st)
    rx.wait_bytes(8000)                               # one second of audio
    assert rx.status == 200 and rx.content_type == "audio/basic"
    status = call_status(st, call_id)
    assert (status["CallState"], status["CallStateReason"], status["CallType"]) == ("Active", "AcceptedByRemote", "VMS")

    r = transmit(st, paced_tone(2.0))
    assert r.status_code == 200, r.text
    rx.wait_bytes(8000 * 4)
    rx.stop()

    tail.wait_for(lambda e: e["topic"] == TOPIC_STATE_CHANGE and e["data"].get("CallId") == call_id
                  and e["data"]["Reason"] == "Terminated", what="the answered call to end")
    assert reasons(tail, call_id) == ["Initiated", "AcceptedByRemote", "Terminated"]
    others = {e["data"]["CallId"] for e in tail.events if e["topic"] == TOPIC_STATE_CHANGE} - {call_id}
    assert len(others) == 1, tail.events                 # the transmitter's own VMS call
    second = others.pop()
    assert reasons(tail, second) == ["AcceptedByDevice", "Terminated"]
    assert call_status(st, second)["Direction"] == "Incoming"
    assert call_status(st, call_id)["CallState"] == "Terminated"

    heard = mulaw_to_pcm(bytes(rx.data))
    assert tone_blocks(heard, 8000, MIC_HZ, [h for h in OTHER_HZ if h != MIC_HZ]) >= 20   # >= 2 s of mic tone

    st.stop()                                         # the speaker's WAV is complete once closed
    played, rate = read_wav(st.speaker)
    blocks = tone_blocks(played, rate, TX_HZ, [h for h in OTHER_HZ if h != TX_HZ])
    assert blocks >= 15, f"{blocks} blocks of {TX_HZ} Hz on the speaker"   # 2 s sent: >= 1.5 s heard


def test_16khz_transmit_and_a_second_transmitter_is_refused(station):
    st = station
    vms_config(st, 0, 1)
    stop = threading.Event()
    first: dict = {}
    t = threading.Thread(target=lambda: first.setdefault(
        "r", transmit(st, paced_tone(10.0, rate=16000, stop=stop), "audio/axis-mulaw-128")), daemon=True)
    t.start()
    wait_until(lambda: st.ok("GetCallStatuses")["CallStatus"], 10, "the transmitter's call")
    second = transmit(st, b"\xff" * 800)
    assert second.status_code == 503, second.text
    wrong = transmit(st, b"\xff" * 800, content_type="audio/wav")
    assert wrong.status_code == 415
    viewer = transmit(st, b"\xff" * 800, user=VIEWER)
    assert viewer.status_code == 403
    time.sleep(2.0)                  # 2 s more of the first transmitter's tone, then it ends
    stop.set()
    t.join(20)
    assert first["r"].status_code == 200
    # the answer comes once the audio has played and the stream is gone: sending again at once works
    again = transmit(st, paced_tone(0.3, rate=16000), "audio/axis-mulaw-128")
    assert again.status_code == 200, again.text
    st.stop()
    played, rate = read_wav(st.speaker)
    assert tone_blocks(played, rate, TX_HZ, [h for h in OTHER_HZ if h != TX_HZ]) >= 5


def test_thresholds_zero_disable_counts_and_no_answer_after_timeout(station):
    st = station
    vms_config(st, 0, 0, timeout=2)
    tail = EventTail(st)
    call_id = st.ok("Call", {"To": "VMS_CALL"})["CallId"]
    rx = Receiver(st)
    rx.wait_bytes(4000)
    r = transmit(st, paced_tone(0.5))
    assert r.status_code == 200
    assert call_status(st, call_id)["CallState"] == "Calling"     # no count is used
    wait_until(lambda: call_status(st, call_id)["CallState"] == "Terminated", 10, "NoAnswer")
    rx.stop()
    tail.poll()
    assert reasons(tail, call_id) == ["Initiated", "NoAnswer"]
    assert [e for e in tail.events if e["topic"] == TOPIC_STATE_CHANGE and e["data"]["CallId"] != call_id] == []


def test_terminate_call_closes_its_streams(station):
    st = station
    vms_config(st, 1, 0)
    call_id = st.ok("Call", {"To": "VMS_CALL"})["CallId"]
    rx = Receiver(st)
    rx.wait_bytes(4000)
    assert call_status(st, call_id)["CallState"] == "Active"
    rx.wait_bytes(8000 * 2)                   # the level meter's one-second window has filled
    levels = json.loads(doorstation("status", state_dir=st.state_dir).stdout)["Hardware"]["Audio"]["levels"]
    assert -30 < levels["mic_dbfs"] < -3, levels          # the simulated mic: a tone at half scale
    st.ok("TerminateCall", {"CallId": call_id})
    assert rx.ended.wait(10), "the receive stream should end with its call"
    assert call_status(st, call_id)["CallStateReason"] == "Terminated"
    statuses = st.ok("GetCallStatuses")["CallStatus"]
    assert not [s for s in statuses if s["CallState"] in ("Calling", "Active")]
    # `doorstation status`: the stream is gone with its counters, and the hub's clock is off
    status = json.loads(doorstation("status", state_dir=st.state_dir).stdout)
    assert status["AudioStreams"]["Counts"] == {"receive": 0, "transmit": 0}
    assert status["Hardware"]["Audio"]["active"] is False
    assert status["Hardware"]["Audio"]["levels"] == {"mic_dbfs": None, "speaker_dbfs": None}


def test_sip_call_and_vms_streams_share_the_audio(station, baresip_factory):  # noqa: F811
    """A SIP call is Active (baresip loops the station's microphone back: 1000 Hz comes back to the
    speaker); a VMS client then opens receive.cgi and transmit.cgi (600 Hz). Nothing is refused or
    cut: the hub is a conference. The VMS streams are their own VMS calls (no VMS call was
    waiting: AcceptedByDevice), the speaker plays the SIP call and the VMS mixed, the receiver hears
    the microphone, and the SIP call is still Active when the VMS streams end."""
    st = station
    bob = baresip_factory(account_params="answermode=auto;audio_codecs=PCMU/8000/1")
    enable_sip(st)
    vms_config(st, 1, 1)
    sip_id = st.ok("Call", {"To": bob.aor})["CallId"]
    wait_call_state(st, sip_id, "Active")
    tail = EventTail(st)
    rx = Receiver(st)
    rx.wait_bytes(8000)
    r = transmit(st, paced_tone(3.0))
    assert r.status_code == 200
    rx.stop()
    tail.wait_for(lambda e: e["topic"] == TOPIC_STATE_CHANGE and e["data"]["Reason"] == "Terminated"
                  and len([x for x in tail.events if x["data"].get("Reason") == "Terminated"]) == 2,
                  what="both VMS calls to end")
    vms_ids = {e["data"]["CallId"] for e in tail.events if e["topic"] == TOPIC_STATE_CHANGE}
    assert sip_id not in vms_ids and len(vms_ids) == 2
    assert all(reasons(tail, c) == ["AcceptedByDevice", "Terminated"] for c in vms_ids)
    assert call_status(st, sip_id)["CallState"] == "Active"
    heard = mulaw_to_pcm(bytes(rx.data))
    assert tone_blocks(heard, 8000, MIC_HZ, [425.0, 600.0, 1500.0]) >= 20
    st.ok("TerminateCall", {"CallId": sip_id})
    st.stop()
    played, rate = read_wav(st.speaker)
    both = [i for i in range(0, len(played) - rate // 10, rate // 10)
            if tone_blocks(played[i:i + rate // 10], rate, TX_HZ, [425.0, 1500.0])
            and tone_blocks(played[i:i + rate // 10], rate, MIC_HZ, [425.0, 1500.0])]
    assert len(both) >= 15, f"{len(both)} blocks hold the SIP call's and the VMS's audio together"


def test_a_transmitter_that_stops_sending_ends_its_call(station):
    """A VMS that stops sending without closing (the spec: the call ends when the VMS stops
    sending): after the idle bound (5 s) the stream ends and its call is Terminated, while the
    client still holds the connection open."""
    st = station
    vms_config(st, 0, 1)
    stalled = threading.Event()
    release = threading.Event()

    def stalling_body():
        yield from paced_tone(0.5)
        stalled.set()
        release.wait(20)                 # holds the request open, sending nothing
        yield b""

    done: dict = {}
    t = threading.Thread(target=lambda: done.setdefault("r", _swallow(lambda: transmit(st, stalling_body()))),
                         daemon=True)
    t.start()
    assert stalled.wait(15)
    call = wait_until(lambda: [s for s in st.ok("GetCallStatuses")["CallStatus"] if s["CallState"] == "Active"],
                      10, "the transmitter's call")[0]
    wait_until(lambda: call_status(st, call["CallId"])["CallState"] == "Terminated", 15, "the idle stream to end")
    assert not release.is_set()          # ended by the station, the client never closed
    assert call_status(st, call["CallId"])["CallStateReason"] == "Terminated"
    release.set()
    t.join(30)


def _swallow(fn):
    """The client's view of a stream the station ended is not what this test is about."""
    try:
        return fn()
    except requests.RequestException as e:
        return e
