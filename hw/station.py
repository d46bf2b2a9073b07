"""Everything hardware, built from `<state>/hardware.toml` in one call, for the supervisor.

    hw = build_station_hardware(state_dir, sip=sip_control, scheduler=AsyncioScheduler(loop), emit=publish)
    loop.add_reader(hw.fileno(), hw.on_readable)        # or register hw.fileno() in a poll loop
    runtime = StationRuntime(..., intercom=hw.intercom)
    # SIP engine thread: hw.audio.open_port(ep); hw.audio.attach(call_audio_media); hw.audio.detach()
    hw.close()                                          # at shutdown: relay locked, LED off, lines released

Edges of the call button go to the intercom; edges of extra inputs (e.g. door_contact) are
published as `doorstation:Input` {"Input": role, "Active": bool}.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from daemon import hwconfig
from daemon.intercom import Emit, Intercom, SipControl
from hw.audio import AudioBridge
from hw.backends import open_audio, open_lines
from hw.gpio import Button, Led, Lines, Relay
from hw.timers import Scheduler, ThreadTimers

TOPIC_INPUT = "doorstation:Input"


@dataclass
class StationHardware:
    config: hwconfig.HwConfig
    lines: Lines
    audio: AudioBridge
    intercom: Intercom
    emit: Emit
    relay_timers: ThreadTimers | None = None   # the door guard's own thread, closed last

    def fileno(self) -> int:
        return self.lines.fileno()

    def on_readable(self) -> None:
        for ev in self.lines.read_edge_events():
            if ev.role == "call_button":
                self.intercom.on_button(ev)
            else:
                self.emit(TOPIC_INPUT, {"Input": ev.role, "Active": ev.active})

    def status(self) -> dict[str, Any]:
        return {**self.intercom.status(), "SimulatedGPIO": self.config.gpio.simulated,
                "SimulatedAudio": self.config.audio.simulated, "Audio": self.audio.stats()}

    def close(self) -> None:
        """After the SIP engine has stopped: relay locked, LED off, lines and sound device closed."""
        try:
            self.intercom.shutdown()
        finally:
            if self.relay_timers is not None:
                self.relay_timers.close()
            self.lines.close()
            self.audio.close()


def build_station_hardware(state_dir: str | Path, *, sip: SipControl, scheduler: Scheduler,
                           emit: Emit, notify: Callable[[Callable[[], None]], object] | None = None,
                           door_guard: bool = True) -> StationHardware:
    """Raises HwConfigError, GpioError (ChipNotFoundError, LineNotFoundError, LineBusyError) or
    AudioDeviceError with a message fit for the log; nothing is left open on failure.

    With `door_guard` the relay re-locks on a thread of its own (ThreadTimers) and hands its
    "locked" notice to the loop through `notify` (loop.call_soon_threadsafe): the door's safety
    does not depend on the loop being responsive (docs/hardware.md "Door guard")."""
    cfg = hwconfig.load(state_dir)
    lines = open_lines(cfg.gpio)
    relay_timers = ThreadTimers("door-guard") if door_guard else None
    try:
        relay = Relay(lines, relay_timers or scheduler, notify=notify)   # locked first
        audio = open_audio(cfg.audio)
    except BaseException:
        if relay_timers is not None:
            relay_timers.close()
        lines.close()
        raise
    intercom = Intercom(sip=sip, scheduler=scheduler, button=Button(lines), led=Led(lines, scheduler),
                        relay=relay, ringback=audio, emit=emit, button_cfg=cfg.button,
                        led_cfg=cfg.led, relay_cfg=cfg.relay)
    return StationHardware(cfg, lines, audio, intercom, emit, relay_timers)
