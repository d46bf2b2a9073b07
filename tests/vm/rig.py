"""A whole door station inside the VM lane, for tests/vm/test_end_to_end.py and bench/vm.py.

A real `doorstation run` (supervisor + gunicorn) whose hardware.toml points at the gpio-sim chip
(by label and line names) and at snd-aloop devices, a baresip peer on loopback whose audio device
echoes what it receives, and the "far side" of the station's hardware:

  - the button is pressed by writing gpio-sim's sim_gpioN/pull, the LED and relay are read from
    sim_gpioN/value (a sampler thread keeps a timeline of both);
  - the microphone: a tone is played on hw:Loopback,0,0, the station captures it on hw:Loopback,1,0;
  - the speaker: the station plays on hw:Loopback,0,1, a recorder captures it on hw:Loopback,1,1.

Nothing here asserts; the callers decide what to check or measure.
"""
from __future__ import annotations

import array
import json
import math
import threading
import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, Callable

from tests.harness import Station, doorstation, free_sip_port
from tests.sip_peers import Baresip, wait_until
from tests.vm.gpiosim import CHIP as GPIOSIM_CHIP
from tests.vm.gpiosim import LABEL as GPIOSIM_LABEL
from tests.vm.gpiosim import sim

RATE = 16000
FRAME = RATE // 50                          # 20 ms of samples
# the station's devices and, on the loopback's other end, ours (substream 0: mic, 1: speaker)
STATION_CAPTURE, MIC_FEED = "hw:Loopback,1,0", "hw:Loopback,0,0"
STATION_PLAYBACK, SPEAKER_TAP = "hw:Loopback,0,1", "hw:Loopback,1,1"
LINE_NAMES = ("CALL_BUTTON", "CALL_LED", "DOOR_LOCK")


def hardware_toml(recipient: str, pulse_ms: int, blink_ms: int = 150, aec: bool = False) -> str:
    """`aec`: the echo canceller on (bench/vm.py's AEC on/off comparison); off by default (below)."""
    return f"""
[gpio]
chip = "{GPIOSIM_LABEL}"
consumer = "doorstation-e2e"

[gpio.call_button]
line = "CALL_BUTTON"
active_low = true
bias = "pull-up"
debounce_ms = 30

[gpio.call_led]
line = "CALL_LED"
blink_on_ms = {blink_ms}
blink_off_ms = {blink_ms}

[gpio.door_relay]
line = "DOOR_LOCK"
active_low = true
pulse_ms = {pulse_ms}

[button]
recipient = "{recipient}"
while_calling = "hangup"
while_active = "hangup"

[audio]
capture_device = "{STATION_CAPTURE}"
playback_device = "{STATION_PLAYBACK}"
sample_rate = {RATE}
fifo_ms = 200
target_ms = 40
[audio.aec]
# the test's far end listens for the station's own loopback (snd-aloop): an echo path, which the
# canceller would remove; this rig measures the audio path, not the canceller
enabled = {"true" if aec else "false"}
"""


# ---- gpio-sim -------------------------------------------------------------------------------------
def line_offsets(chip: str = GPIOSIM_CHIP) -> dict[str, int]:
    """Offsets of our line names on the gpio-sim chip (read through libgpiod, no hard-coding)."""
    import gpiod
    with gpiod.Chip(chip) as c:
        return {name: c.line_offset_from_id(name) for name in LINE_NAMES}


def sim_write(offset: int, attr: str, value: str) -> None:
    sim(offset, attr, value)


def sim_read(offset: int, attr: str = "value") -> str:
    return sim(offset, attr)


class Lines:
    """The outside of the station's three lines: press the button, read the LED and the relay."""

    def __init__(self) -> None:
        off = line_offsets()
        self.button, self.led, self.lock = off["CALL_BUTTON"], off["CALL_LED"], off["DOOR_LOCK"]
        sim_write(self.button, "pull", "pull-up")          # released (the button is active-low)

    def press(self) -> None:
        sim_write(self.button, "pull", "pull-down")

    def release(self) -> None:
        sim_write(self.button, "pull", "pull-up")

    def click(self, hold_s: float = 0.15) -> None:
        """A press held longer than the 30 ms debounce, then released."""
        self.press()
        time.sleep(hold_s)
        self.release()

    def led_on(self) -> bool:
        return sim_read(self.led) == "1"

    def door_unlocked(self) -> bool:
        return sim_read(self.lock) == "0"                  # active-low relay: unlocked = low


class LineSampler:
    """Samples LED and relay every `period_s` on its own thread: [(monotonic, led_on, unlocked)]."""

    def __init__(self, lines: Lines, period_s: float = 0.005, max_s: float = 600) -> None:
        self.lines, self.period_s, self.max_s = lines, period_s, max_s
        self.samples: list[tuple[float, bool, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="line-sampler", daemon=True)

    def start(self) -> "LineSampler":
        self._thread.start()
        return self

    def _run(self) -> None:
        end = time.monotonic() + self.max_s
        while not self._stop.is_set() and time.monotonic() < end:
            self.samples.append((time.monotonic(), self.lines.led_on(), self.lines.door_unlocked()))
            self._stop.wait(self.period_s)

    def between(self, t0: float, t1: float) -> list[tuple[float, bool, bool]]:
        return [s for s in list(self.samples) if t0 <= s[0] <= t1]

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


# ---- audio: the far side of the station's microphone and speaker -----------------------------------
def tone(hz: float, seconds: float, level: float) -> bytes:
    amp = int(32767 * level)
    return array.array("h", (int(amp * math.sin(2 * math.pi * hz * i / RATE))
                             for i in range(int(RATE * seconds)))).tobytes()


def _pcm(kind: str, device: str) -> Any:
    import alsaaudio
    k = alsaaudio.PCM_PLAYBACK if kind == "playback" else alsaaudio.PCM_CAPTURE
    return alsaaudio.PCM(k, alsaaudio.PCM_NORMAL, device=device, channels=1, rate=RATE,
                         format=alsaaudio.PCM_FORMAT_S16_LE, periodsize=FRAME, periods=4)


class MicFeed:
    """Plays a looped tone into the station's microphone (blocking writes, paced by snd-aloop).
    `muted` switches to silence without closing the stream."""

    def __init__(self, hz: float, level: float, max_s: float = 600) -> None:
        self.loop = tone(hz, 1.0, level)               # whole periods in 1 s: loops seamlessly
        self.silence = bytes(len(self.loop))
        self.muted = False
        self.xruns = 0
        self.max_s = max_s
        import alsaaudio
        self._xrun_state = alsaaudio.PCM_STATE_XRUN
        self._stop = threading.Event()
        self._pcm = _pcm("playback", MIC_FEED)
        self._thread = threading.Thread(target=self._run, name="mic-feed", daemon=True)

    def start(self) -> "MicFeed":
        self._thread.start()
        return self

    def _run(self) -> None:
        end = time.monotonic() + self.max_s
        n = FRAME * 2
        pos = 0
        while not self._stop.is_set() and time.monotonic() < end:
            src = self.silence if self.muted else self.loop     # checked every frame
            if self._pcm.state() == self._xrun_state:
                self.xruns += 1          # we fell behind: a gap in the station's microphone
            self._pcm.write(src[pos:pos + n])
            pos = (pos + n) % len(src)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._pcm.close()


class SpeakerTap:
    """Records what the station plays on its speaker: [(monotonic after the read, pcm bytes)]."""

    def __init__(self, max_s: float = 600) -> None:
        self.chunks: list[tuple[float, bytes]] = []
        self.overruns = 0
        self.max_s = max_s
        self._stop = threading.Event()
        self._pcm = _pcm("capture", SPEAKER_TAP)
        self._thread = threading.Thread(target=self._run, name="speaker-tap", daemon=True)

    def start(self) -> "SpeakerTap":
        self._thread.start()
        return self

    def _run(self) -> None:
        end = time.monotonic() + self.max_s
        while not self._stop.is_set() and time.monotonic() < end:
            n, data = self._pcm.read()
            if n > 0:
                self.chunks.append((time.monotonic(), data))
            elif n < 0:
                self.overruns += 1       # we fell behind: a gap in what we recorded

    def between(self, t0: float, t1: float) -> bytes:
        return b"".join(d for t, d in list(self.chunks) if t0 <= t <= t1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._pcm.close()


def analyse(pcm: bytes, threshold: int = 1000) -> dict | None:
    """RMS and frequency of a tone in pcm (None: only silence). The frequency is the median period
    between rising zero crossings, so a dropped or padded frame (which drift handling does by
    design) does not skew it; `glitches` counts periods more than 10 % off the median, and
    `silent_frames` the 20 ms frames below the threshold (gaps in the stream)."""
    s = array.array("h", pcm)
    if not s or max(abs(x) for x in s) < threshold:
        return None
    rms = math.sqrt(sum(x * x for x in s) / len(s))
    rising = [i - 1 + s[i - 1] / (s[i - 1] - s[i]) for i in range(1, len(s)) if s[i - 1] < 0 <= s[i]]
    periods = sorted(b - a for a, b in pairwise(rising))
    silent = sum(1 for i in range(0, len(s) - FRAME + 1, FRAME)
                 if max(abs(x) for x in s[i:i + FRAME]) < threshold)
    if not periods:
        return {"rms": round(rms), "freq_hz": 0.0, "glitches": 0, "silent_frames": silent, "seconds": len(s) / RATE}
    median = periods[len(periods) // 2]
    return {"rms": round(rms), "freq_hz": round(RATE / median, 1),
            "glitches": sum(1 for p in periods if abs(p - median) > 0.1 * median),
            "silent_frames": silent, "seconds": round(len(s) / RATE, 2)}


# ---- the station and its peer ---------------------------------------------------------------------
class Events:
    """The station's /api/events, read forward from where the last read stopped."""

    def __init__(self, station: Station) -> None:
        self.st, self.session, self.after, self.seen = station, station.session(), 0, []

    def poll(self, wait_s: float = 1.0) -> list[dict]:
        page = self.session.get(f"{self.st.url}/api/events?after={self.after}&wait={wait_s}",
                                timeout=wait_s + 30).json()
        self.after = page["next"]
        self.seen += page["events"]
        return page["events"]

    def wait_for(self, pred: Callable[[dict], bool], timeout: float, what: str, since: int = 0) -> dict:
        """The first event matching pred among those seen from index `since` on (len(seen) = only new)."""
        for e in self.seen[since:]:
            if pred(e):
                return e
        deadline = time.monotonic() + timeout
        while True:
            for e in self.poll(min(2.0, max(0.1, deadline - time.monotonic()))):
                if pred(e):
                    return e
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; events: "
                                     f"{[(e['topic'], e['data']) for e in self.seen[-30:]]}")


@dataclass
class Rig:
    station: Station
    peer: Baresip
    lines: Lines
    sampler: LineSampler
    mic: MicFeed
    speaker: SpeakerTap
    events: Events
    dtmf_event_id: str
    pulse_ms: int
    extra: dict = field(default_factory=dict)

    def status(self) -> dict:
        """`doorstation status` (call state, LED, relay, the audio bridge's counters)."""
        done = doorstation("status", state_dir=self.station.state_dir, timeout=60)
        return json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr[-500:]}

    def stop(self) -> None:
        for part in (self.sampler, self.mic, self.speaker):
            try:
                part.stop()
            except Exception:
                pass
        try:
            self.station.stop(timeout=60)
        finally:
            self.peer.stop()


def configure_station(st: Station, events: Events) -> str:
    """SIP on (loopback, the peer-to-peer account), #1234# -> DTMF event, the event bound to the
    door relay through PUT /api/door/bindings. Returns the DTMF event id."""
    st.ok("SetSIPConfiguration", {"SIPConfiguration": {"SIPEnabled": True, "CallingTimeout": 120}})
    event_id = st.ok("SetDTMFEvent", {"DTMFEvent": {"Name": "OpenDoorEvent"}})["DTMFEventId"]
    trigger = st.ok("SetDTMFTrigger",
                    {"DTMFTrigger": {"DTMFSequence": "#1234#", "DTMFEventId": event_id}})["DTMFTriggerId"]
    conf = st.ok("SetDTMFConfiguration", {"DTMFConfiguration": {"Name": "Door", "DTMFTriggerId": [trigger]}})
    st.ok("SetSIPAccount", {"SIPAccount": {"Id": "peer-to-peer", "DTMFConfigurationId": conf["DTMFConfigurationId"]}})
    r = st.session().put(f"{st.url}/api/door/bindings", json={"DTMFEventIds": [event_id]}, timeout=30)
    assert r.status_code == 200 and r.json()["Effective"] == [event_id], r.text
    return event_id


def start_rig(workdir: Path, *, pulse_ms: int = 800, tone_hz: float = 1000.0, tone_level: float = 0.3,
              answer: str = "manual", station_timeout: float = 180, sample_lines: bool = True,
              aec: bool = False) -> Rig:
    """Everything up and idle. `answer`: "manual" (the caller accepts through ctrl_tcp, so the
    Calling phase lasts as long as it wants) or "auto" (baresip answers at once). `aec`: the
    station's echo canceller on (hardware_toml)."""
    workdir.mkdir(parents=True, exist_ok=True)
    peer = Baresip(workdir / "baresip", account_params=f"answermode={answer}")
    peer.start()
    lines = sampler = mic = speaker = station = None
    try:
        lines = Lines()
        state = workdir / "state"
        state.mkdir(exist_ok=True)
        (state / "hardware.toml").write_text(hardware_toml(peer.aor, pulse_ms, aec=aec))
        station = Station(state, sip_port=free_sip_port()).start(timeout=station_timeout)
        events = Events(station)
        event_id = configure_station(station, events)
        sampler = LineSampler(lines)
        if sample_lines:            # (a benchmark leaves the CPU to the station instead)
            sampler.start()
        speaker = SpeakerTap().start()
        mic = MicFeed(tone_hz, tone_level).start()
        return Rig(station, peer, lines, sampler, mic, speaker, events, event_id, pulse_ms)
    except BaseException:
        for part in (sampler, mic, speaker):
            if part is not None:
                part.stop()
        if station is not None:
            station.stop(timeout=60)
        peer.stop()
        raise


def wait_established(peer: Baresip, since: int, timeout: float) -> dict:
    return peer.wait_event("CALL_ESTABLISHED", timeout=timeout, since=since)


__all__ = ["Rig", "start_rig", "analyse", "wait_until", "wait_established", "RATE"]
