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
from typing import Any

from daemon import hwconfig
from daemon.intercom import Emit, Intercom, SipControl
from hw.audio import AudioBridge
from hw.backends import open_audio, open_lines
from hw.gpio import Button, Led, Lines, Relay
from hw.timers import Scheduler

TOPIC_INPUT = "doorstation:Input"


@dataclass
class StationHardware:
    config: hwconfig.HwConfig
    lines: Lines
    audio: AudioBridge
    intercom: Intercom
    emit: Emit

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
            self.lines.close()
            self.audio.close()


def build_station_hardware(state_dir: str | Path, *, sip: SipControl, scheduler: Scheduler,
                           emit: Emit) -> StationHardware:
    """Raises HwConfigError, GpioError (ChipNotFoundError, LineNotFoundError, LineBusyError) or
    AudioDeviceError with a message fit for the log; nothing is left open on failure."""
    cfg = hwconfig.load(state_dir)
    lines = open_lines(cfg.gpio)
    try:
        relay = Relay(lines, scheduler)          # lock first, before anything else can fail
        audio = open_audio(cfg.audio)
    except BaseException:
        lines.close()
        raise
    intercom = Intercom(sip=sip, scheduler=scheduler, button=Button(lines), led=Led(lines, scheduler),
                        relay=relay, ringback=audio, emit=emit, button_cfg=cfg.button,
                        led_cfg=cfg.led, relay_cfg=cfg.relay)
    return StationHardware(cfg, lines, audio, intercom, emit)
