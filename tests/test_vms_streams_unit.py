"""VMS call rules over stream counts (daemon/audiostream/vms.py), the codec, and the hub's stream
taps on the simulated device (manual clock): logic only, no processes."""
from __future__ import annotations

import array
import math

from daemon.audiostream.vms import VmsStreamCalls
from hw.audio import AudioBridge, StreamTap
from hw.audio_sim import SimPcm
from hw.g711 import Resampler, mulaw_decode, mulaw_encode
from hw.timers import ManualClock
from tests.audio_analysis import goertzel, mulaw_to_pcm, pcm_to_mulaw


class Table:
    """A fake VMS call table that records what was asked of it."""

    def __init__(self, waiting: list[str] | None = None) -> None:
        self.waiting = list(waiting or [])
        self.log: list[tuple[str, str]] = []
        self.n = 0

    def answer_waiting_vms_call(self):
        if not self.waiting:
            return None
        call_id = self.waiting.pop(0)
        self.log.append(("AcceptedByRemote", call_id))
        return call_id

    def start_incoming_vms_call(self):
        self.n += 1
        self.log.append(("AcceptedByDevice", f"in{self.n}"))
        return f"in{self.n}"

    def end_vms_call(self, call_id, reason):
        self.log.append((reason, call_id))


def config(out=1, into=1, video=0, enabled=True):
    return {"Enabled": enabled, "AudioFromDeviceToNetworkStreams": out,
            "AudioFromNetworkToDeviceStreams": into, "VideoFromDeviceToNetworkStreams": video}


def make(cfg, waiting=None):
    table, closed = Table(waiting), []
    return VmsStreamCalls(lambda: cfg, table, closed.append), table, closed


def test_first_count_answers_the_waiting_call_second_is_another_call():
    calls, table, _ = make(config(1, 1), ["out1"])
    calls.counts_changed({"receive": 1, "transmit": 0})
    calls.counts_changed({"receive": 1, "transmit": 1})
    calls.counts_changed({"receive": 0, "transmit": 1})
    calls.counts_changed({"receive": 0, "transmit": 0})
    assert table.log == [("AcceptedByRemote", "out1"), ("AcceptedByDevice", "in1"),
                         ("Terminated", "out1"), ("Terminated", "in1")]


def test_zero_or_negative_thresholds_and_disabled_count_nothing():
    for cfg in (config(0, 0), config(-1, -5), config(1, 1, enabled=False)):
        calls, table, _ = make(cfg, ["out1"])
        calls.counts_changed({"receive": 3, "transmit": 3})
        assert table.log == []


def test_threshold_two_needs_two_streams():
    calls, table, _ = make(config(0, 2), ["out1"])
    calls.counts_changed({"receive": 0, "transmit": 1})
    assert table.log == []
    calls.counts_changed({"receive": 0, "transmit": 2})
    calls.counts_changed({"receive": 0, "transmit": 1})
    assert table.log == [("AcceptedByRemote", "out1"), ("Terminated", "out1")]


def test_a_call_ended_elsewhere_closes_its_streams_only():
    calls, table, closed = make(config(1, 1), ["out1"])
    calls.counts_changed({"receive": 1, "transmit": 1})
    calls.call_ended("out1")
    assert closed == ["receive"]
    calls.counts_changed({"receive": 0, "transmit": 1})     # the closed streams go: no second end
    assert table.log == [("AcceptedByRemote", "out1"), ("AcceptedByDevice", "in1")]
    calls.call_ended("unknown")
    assert closed == ["receive"]


def test_mulaw_matches_an_independent_codec_and_resampling_keeps_a_tone():
    pcm = array.array("h", (int(12000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(800)))
    assert mulaw_encode(pcm.tobytes()) == pcm_to_mulaw(pcm)
    data = bytes(range(256))
    assert list(array.array("h", mulaw_decode(data))) == mulaw_to_pcm(data)
    up = array.array("h", Resampler(8000, 16000).process(pcm.tobytes()))
    assert len(up) == 1600 and goertzel(up, 16000, 440) > 100 * goertzel(up, 16000, 1000)
    down = Resampler(16000, 8000)
    halves = down.process(up[:801].tobytes()) + down.process(up[801:].tobytes())   # odd split joins
    assert len(halves) == 1600


def test_hub_fans_the_mic_out_and_mixes_a_transmitter_into_the_speaker():
    clock = ManualClock()
    pcm = SimPcm(16000, "tone:1000", clock=clock)
    hub = AudioBridge(pcm, 16000)
    rx, tx = StreamTap(1, "receive", 32000), StreamTap(2, "transmit", 32000)
    woken = []
    hub.on_received = lambda: woken.append(1)
    hub.add_stream(rx)
    hub.add_stream(tx)
    assert hub.active
    tone = array.array("h", (int(8000 * math.sin(2 * math.pi * 600 * i / 16000)) for i in range(16000)))
    tx.fifo.push(tone.tobytes())
    for _ in range(50):                      # one second of 20 ms ticks
        clock.advance(0.02)
        hub.frame_for_call()
        hub.frame_from_call(bytes(hub.frame_bytes))
    heard = mulaw_to_pcm(rx.fifo.drain())                # mu-law 8 kHz, encoded once for all receivers
    assert len(heard) >= 7500 and goertzel(heard, 8000, 1000) > 100 * goertzel(heard, 8000, 600)
    assert len(woken) == 50 and tx.frames == 50 and tx.fifo.underruns == 0
    assert pcm.played_bytes > 0 and hub.stats()["streams"][1]["Frames"] == 50
    hub.remove_stream(rx)
    hub.remove_stream(tx)
    assert not hub.active                    # nothing open: the clock may stop


def test_silent_transmitter_is_not_counted_as_underrunning_until_it_starts():
    hub = AudioBridge(SimPcm(16000, "silence", clock=ManualClock()), 16000)
    tx = StreamTap(1, "transmit", 32000)
    hub.add_stream(tx)
    for _ in range(10):
        hub.frame_from_call(bytes(hub.frame_bytes))
    assert (tx.frames, tx.fifo.underruns, tx.started) == (0, 0, False)
    tx.fifo.push(bytes(hub.frame_bytes))
    for _ in range(3):
        hub.frame_from_call(bytes(hub.frame_bytes))
    assert (tx.frames, tx.fifo.underruns) == (3, 2)
