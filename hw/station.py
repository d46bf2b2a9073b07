"""The station's hardware devices, opened from `<state>/hardware.toml` in one call.

    hw = open_station_hardware(cfg.gpio, cfg.audio, scheduler=AsyncioScheduler(loop),
                               notify=loop.call_soon_threadsafe)
    loop.add_reader(hw.fileno(), lambda: [handle(ev) for ev in hw.read_edges()])
    # SIP engine thread: hw.audio.open_port(ep); hw.audio.attach(call_audio_media); hw.audio.detach()
    hw.close()                                          # last, after the intercom locked the door

Devices only: what a button press or a DTMF digit means is the call flow's business
(daemon/intercom.py, wired by the supervisor), not the hardware's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from hw.audio import AudioBridge
from hw.backends import open_audio, open_lines
from hw.config import AudioConfig, GpioConfig
from hw.gpio import Button, EdgeEvent, Led, Lines, Relay
from hw.timers import Scheduler, ThreadTimers


@dataclass
class StationHardware:
    gpio_config: GpioConfig
    audio_config: AudioConfig
    lines: Lines
    relay: Relay
    led: Led
    button: Button
    audio: AudioBridge
    relay_timers: ThreadTimers | None = None   # the door guard's own thread, closed last

    def fileno(self) -> int:
        return self.lines.fileno()

    def read_edges(self) -> list[EdgeEvent]:
        """Debounced edges of every input (call button, extra inputs); never blocks."""
        return self.lines.read_edge_events()

    def status(self) -> dict[str, Any]:
        return {"SimulatedGPIO": self.gpio_config.simulated, "SimulatedAudio": self.audio_config.simulated,
                "Audio": self.audio.stats()}

    def close(self) -> None:
        """Lines, door guard and sound device released; the relay is driven locked first."""
        try:
            self.relay.lock()
        finally:
            if self.relay_timers is not None:
                self.relay_timers.close()
            self.lines.close()
            self.audio.close()


def open_station_hardware(gpio: GpioConfig, audio: AudioConfig, *, scheduler: Scheduler,
                          notify: Callable[[Callable[[], None]], object] | None = None,
                          door_guard: bool = True) -> StationHardware:
    """The configs come from hardware.toml (daemon.hwconfig.load, hw.config's parsers).
    Raises GpioError (ChipNotFoundError, LineNotFoundError, LineBusyError) or
    AudioDeviceError with a message fit for the log; nothing is left open on failure.

    The relay is driven locked before anything else can fail. With `door_guard` it re-locks on a
    thread of its own (ThreadTimers) and hands its "locked" notice to the loop through `notify`
    (loop.call_soon_threadsafe): the door's safety does not depend on the loop being responsive
    (docs/hardware.md "Door guard"). The LED blinks on the loop's `scheduler`."""
    lines = open_lines(gpio)
    relay_timers = ThreadTimers("door-guard") if door_guard else None
    try:
        relay = Relay(lines, relay_timers or scheduler, notify=notify)
        sound = open_audio(audio)
    except BaseException:
        if relay_timers is not None:
            relay_timers.close()
        lines.close()
        raise
    return StationHardware(gpio, audio, lines, relay, Led(lines, scheduler), Button(lines), sound, relay_timers)
