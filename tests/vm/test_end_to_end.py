"""The whole door station on real kernel devices (inside the VM lane): a real `doorstation run`
with hardware.toml pointing at the gpio-sim chip and at snd-aloop, calling a baresip peer whose
audio device echoes what it receives.

  button (gpio-sim pull) -> INVITE at baresip; LED blinks and ring-back plays while Calling
  baresip answers -> LED steady; a tone fed into the station's microphone comes back, through
      pjsua2 -> RTP -> baresip's echo -> RTP -> pjsua2, on the station's speaker; muting the
      tone silences the speaker (so what we heard was the echo, not something else)
  baresip sends #1234# (RFC 2833) -> the DTMF event bound to the relay -> DOOR_LOCK unlocked,
      re-locked by the station after pulse_ms
  button again -> hang-up (while_active = "hangup") -> baresip sees the call close, LED off
"""
import json
import math
import os
import time
from itertools import pairwise

import pytest

from tests.vm.rig import analyse, start_rig, wait_until

pytestmark = pytest.mark.skipif(not os.environ.get("DOORSTATION_GPIOSIM_SYSFS"),
                                reason="needs the VM lane's gpio-sim and snd-aloop devices")

OUT = os.environ.get("VMLANE_OUT")
PULSE_MS = 800
TONE_HZ, TONE_LEVEL = 1000.0, 0.3
RINGBACK_HZ = 425            # hw/audio.py RingbackTone default (docs/hardware.md)
CALLING_S = 1.6              # how long baresip lets it ring: > 2 blink periods, inside ring-back's 1 s "on"
ECHO_SETTLE_S = 1.5          # jitter buffers on both sides fill before the window we analyse
ECHO_WINDOW_S = 2.5
MUTE_SETTLE_S = 1.0
MUTE_WINDOW_S = 1.0
# The LED and relay are checked in windows that start when /api/events delivers the call's
# transition: the supervisor appends the event and updates the LED in the same loop callback, and
# the long-poll is answered only after that callback, so the line is already set by then.
# TCG is 10-50x slower than the hardware this runs on: waits are generous, and all bounded
SIP_TIMEOUT_S = 45


def stage(name, timeline):
    timeline[name] = time.monotonic()


def is_state_change(reason):
    return lambda e: e["topic"] == "tnsaxis:Call/StateChange" and e["data"].get("Reason") == reason


def test_button_call_echo_dtmf_relay_led(tmp_path):
    rig = start_rig(tmp_path / "e2e", pulse_ms=PULSE_MS, tone_hz=TONE_HZ, tone_level=TONE_LEVEL,
                    answer="manual")
    t: dict[str, float] = {}
    try:
        peer, lines, events = rig.peer, rig.lines, rig.events
        assert not lines.door_unlocked() and not lines.led_on()
        mark = peer.mark()

        stage("press", t)
        lines.click()
        incoming = peer.wait_event("CALL_INCOMING", timeout=SIP_TIMEOUT_S, since=mark)
        stage("invite", t)
        events.wait_for(is_state_change("Initiated"), SIP_TIMEOUT_S, "the station's call to start")
        stage("calling", t)
        time.sleep(CALLING_S)
        stage("calling_end", t)

        assert peer.command("accept")["ok"]
        peer.wait_event("CALL_ESTABLISHED", timeout=SIP_TIMEOUT_S, since=mark)
        events.wait_for(is_state_change("AcceptedByRemote"), SIP_TIMEOUT_S, "Active at the station")
        stage("active", t)
        time.sleep(ECHO_SETTLE_S + ECHO_WINDOW_S)
        stage("echo_end", t)
        rig.mic.muted = True
        time.sleep(MUTE_SETTLE_S + MUTE_WINDOW_S)
        stage("mute_end", t)
        status_active = rig.status()

        assert peer.command("sndcode", "#1234#")["ok"]
        wait_until(lines.door_unlocked, SIP_TIMEOUT_S, "DOOR_LOCK to be unlocked by #1234#", step=0.005)
        stage("unlocked", t)
        wait_until(lambda: not lines.door_unlocked(), PULSE_MS / 1000 + 20, "DOOR_LOCK to re-lock", step=0.005)
        stage("relocked", t)
        relay_events = [events.wait_for(lambda e, cause=cause: e["topic"] == "doorstation:Relay"
                                        and e["data"].get("Cause") == cause, SIP_TIMEOUT_S, f"relay event {cause}")
                        for cause in ("DTMF", "PulseEnded")]
        dtmf_event = events.wait_for(lambda e: e["topic"] == "tnsaxis:Call/DTMF", SIP_TIMEOUT_S, "the DTMF event")

        stage("hangup_press", t)
        lines.click()
        peer.wait_event("CALL_CLOSED", timeout=SIP_TIMEOUT_S, since=mark)
        events.wait_for(is_state_change("Terminated"), SIP_TIMEOUT_S, "the station to end the call")
        stage("idle", t)
        time.sleep(0.6)
        stage("idle_end", t)
    finally:
        rig.stop()

    ringback = analyse(rig.speaker.between(t["calling"], t["calling_end"]))
    echo = analyse(rig.speaker.between(t["active"] + ECHO_SETTLE_S, t["echo_end"]))
    muted = analyse(rig.speaker.between(t["echo_end"] + MUTE_SETTLE_S, t["mute_end"]))
    led = {phase: [s[1] for s in rig.sampler.between(t[a], t[b])]
           for phase, a, b in (("calling", "calling", "calling_end"), ("active", "active", "unlocked"),
                               ("idle", "idle", "idle_end"))}
    unlocked = [s for s in rig.sampler.samples if s[2]]
    figures = {
        "ringback": ringback, "echo": echo, "muted": muted,
        "led_transitions_while_calling": sum(1 for a, b in pairwise(led["calling"]) if a != b),
        "led_samples": {k: len(v) for k, v in led.items()},
        "relay_unlocked_observed_ms": round(1000 * (unlocked[-1][0] - unlocked[0][0])) if unlocked else None,
        "timeline_s": {k: round(v - t["press"], 3) for k, v in t.items()},
        "harness_gaps": {"mic_feed_xruns": rig.mic.xruns, "speaker_tap_overruns": rig.speaker.overruns},
        "audio_while_active": (status_active.get("Hardware") or {}).get("Audio", status_active),
    }
    if OUT:
        with open(os.path.join(OUT, "e2e.json"), "w") as f:
            json.dump(figures, f, indent=1)

    # SIP: the INVITE carried the station's identity, DTMF matched on this call
    assert incoming.get("peeruri", "").startswith("sip:"), incoming
    assert dtmf_event["source"]["DTMFEventId"] == rig.dtmf_event_id, dtmf_event
    # LED: blinking while Calling, steady while Active, off afterwards
    assert set(led["calling"]) == {True, False} and figures["led_transitions_while_calling"] >= 2, figures
    assert led["active"] and all(led["active"]), figures
    assert led["idle"] and not any(led["idle"]), figures
    # ring-back on the speaker while Calling
    assert ringback is not None and abs(ringback["freq_hz"] - RINGBACK_HZ) < 10, figures
    # the echo: the tone's frequency, its level within what G.711/G.722 and the paths keep
    expected_rms = TONE_LEVEL * 32767 / math.sqrt(2)
    assert echo is not None, f"no audio came back: {figures}"
    assert abs(echo["freq_hz"] - TONE_HZ) < 10, figures
    assert 0.5 * expected_rms < echo["rms"] < 1.5 * expected_rms, figures
    assert muted is None, f"the speaker kept playing with the microphone muted: {figures}"
    # relay: unlocked by the DTMF event, re-locked by the station after the pulse
    unlock, lock = relay_events
    assert unlock["data"]["Cause"] == "DTMF" and unlock["data"]["DTMFEventId"] == rig.dtmf_event_id, relay_events
    assert unlock["data"]["CallId"] == dtmf_event["data"]["CallId"], (relay_events, dtmf_event)
    assert (lock["data"]["State"], lock["data"]["Cause"]) == ("Locked", "PulseEnded"), relay_events
    assert figures["relay_unlocked_observed_ms"] >= PULSE_MS // 2, figures
