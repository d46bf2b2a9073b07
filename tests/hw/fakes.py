"""Hand-written fakes for the intercom's collaborators (unit tests of logic only)."""
from __future__ import annotations

from daemon.hwconfig import SIMULATED_GPIO, ButtonConfig, LedConfig, RelayConfig
from daemon.intercom import Intercom
from daemon.sip.calls import LiveCalls
from hw.gpio import Button, Led, Relay
from hw.gpio_sim import SimLines
from hw.timers import ManualClock, TimerQueue


class FakeSip:
    """Implements daemon.intercom.SipControl; records what was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, str]] = []
        self.hangups: list[str] = []
        self.fail_with: Exception | None = None
        self.on_call = None   # optional hook: lets a test emit events from inside call()

    def call(self, account_id, to):
        if self.fail_with is not None:
            raise self.fail_with
        self.calls.append((account_id, to))
        call_id = f"Out-{len(self.calls)}"
        if self.on_call:
            self.on_call(call_id)
        return call_id

    def hangup(self, call_id):
        self.hangups.append(call_id)


class FakeRingback:
    def __init__(self) -> None:
        self.playing = False
        self.starts = 0

    def start(self):
        assert not self.playing, "ring-back started twice"
        self.playing = True
        self.starts += 1

    def stop(self):
        assert self.playing, "ring-back stopped while silent"
        self.playing = False


class Rig:
    """An Intercom on simulated lines with a manual clock: the whole door station minus SIP/audio."""

    def __init__(self, button_cfg=ButtonConfig(recipient="sip:desk@127.0.0.1", account_id="acc0"),
                 relay_cfg=RelayConfig(pulse_ms=3000, dtmf_events=("open",)),
                 led_cfg=LedConfig(blink_on_ms=200, blink_off_ms=300), debounce_ms=30):
        self.clock = ManualClock()
        self.timers = TimerQueue(self.clock)
        specs = [s if s.role != "call_button" else s.__class__(
            s.role, s.line, s.direction, True, s.bias, debounce_ms) for s in SIMULATED_GPIO.line_specs()]
        self.lines = SimLines(specs, clock_ns=lambda: int(self.clock() * 1e9))
        self.sip = FakeSip()
        self.ringback = FakeRingback()
        self.events: list[tuple[str, dict]] = []
        self.led = Led(self.lines, self.timers)
        self.relay = Relay(self.lines, self.timers, wall_clock=self.clock)
        self.calls = LiveCalls()          # the runtime's sequencer keeps these in the supervisor
        self.intercom = Intercom(
            sip=self.sip, scheduler=self.timers, button=Button(self.lines), led=self.led,
            relay=self.relay, ringback=self.ringback, emit=lambda t, d: self.events.append((t, d)),
            button_cfg=button_cfg, led_cfg=led_cfg, relay_cfg=relay_cfg, calls=self.calls)
        self.intercom.start()

    def advance(self, seconds: float, step: float = 0.01) -> None:
        """Move time forward, running timers and delivering GPIO edges as the loop would."""
        end = self.clock() + seconds
        for _ in range(100_000):
            if self.clock() >= end - 1e-9:
                break
            due = self.timers.timeout()
            nxt = min(end, self.clock() + step, self.clock() + due if due is not None else end)
            self.clock.t = nxt              # land exactly on timer deadlines
            self.timers.run_due()
            for ev in self.lines.read_edge_events():
                self.intercom.on_button(ev)

    def call_state(self, call_id: str, state: str, reason: str = "", direction: str | None = None) -> None:
        """A call transition as the supervisor delivers it: the live calls updated, then the intercom told."""
        self.calls.set(call_id, state)
        event = {"CallId": call_id, "CallState": state, "Reason": reason}
        if direction is not None:
            event["Direction"] = direction
        self.intercom.on_call_state(event)

    def press(self, hold_s: float = 0.1) -> None:
        self.lines.press()
        self.advance(hold_s)
        self.lines.release()
        self.advance(0.1)

    def relay_levels(self):
        return [c.active for c in self.lines.outputs("door_relay")]

    def topics(self, topic):
        return [d for t, d in self.events if t == topic]
