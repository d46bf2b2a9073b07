"""The intercom on real kernel lines (gpio-sim), driven by a poll loop like the supervisor's:
a press on CALL_BUTTON starts a call, the LED blinks then stays lit, a bound DTMF event pulses
DOOR_LOCK (read back from gpio-sim's sim_gpioN/value), and the relay re-locks on its own."""
import select
import time

from daemon.hwconfig import ButtonConfig, GpioConfig, InputConfig, LedConfig, OutputConfig, RelayConfig
from daemon.intercom import ACTIVE, CALLING, Intercom
from daemon.sip.calls import LiveCalls
from hw.backends import open_lines
from hw.gpio import Bias, Button, Led, Relay
from hw.timers import TimerQueue
from tests.hw.fakes import FakeRingback, FakeSip
from tests.vm.gpiosim import CHIP, SYSFS, sim  # noqa: F401


class Loop:
    """The part of the supervisor's loop that concerns hardware."""

    def __init__(self, lines, timers, intercom):
        self.lines, self.timers, self.intercom = lines, timers, intercom
        self.poller = select.poll()
        self.poller.register(lines.fileno(), select.POLLIN)

    def run_until(self, predicate, timeout_s=5.0):
        end = time.monotonic() + timeout_s
        for _ in range(10_000):
            if predicate():
                return True
            left = end - time.monotonic()
            if left <= 0:
                return False
            t = self.timers.timeout()
            if self.poller.poll(1000 * min(left, t if t is not None else left, 0.05)):
                for ev in self.lines.read_edge_events():
                    if ev.role == "call_button":
                        self.intercom.on_button(ev)
            self.timers.run_due()
        return False


def test_button_call_dtmf_relay_on_real_lines():
    cfg = GpioConfig(simulated=False, chip="doorstation-sim", consumer="intercom-test",
                     call_button=InputConfig("CALL_BUTTON", True, Bias.PULL_UP, 30),
                     call_led=OutputConfig("CALL_LED"), door_relay=OutputConfig("DOOR_LOCK", active_low=True))
    lines = open_lines(cfg)
    timers = TimerQueue()
    sip, events = FakeSip(), []
    led, relay = Led(lines, timers), Relay(lines, timers)
    calls = LiveCalls()
    intercom = Intercom(sip=sip, scheduler=timers, button=Button(lines), led=led, relay=relay, calls=calls,
                        ringback=FakeRingback(), emit=lambda t, d: events.append((t, d)),
                        button_cfg=ButtonConfig(recipient="sip:desk@127.0.0.1"),
                        led_cfg=LedConfig(100, 100), relay_cfg=RelayConfig(400, ("open",)))
    loop = Loop(lines, timers, intercom)
    btn, led_off, lock_off = (lines.offset(r) for r in ("call_button", "call_led", "door_relay"))
    try:
        intercom.start()
        assert sim(lock_off, "value") == "1"                    # active-low relay: locked = high
        sim(btn, "pull", "pull-down")                           # press (active-low button)
        assert loop.run_until(lambda: sip.calls)
        sim(btn, "pull", "pull-up")
        assert intercom.state == CALLING
        seen = set()
        assert loop.run_until(lambda: seen.add(sim(led_off, "value")) or seen == {"0", "1"})  # blinking
        calls.set("Out-1", "Active")
        intercom.on_call_state({"CallId": "Out-1", "CallState": "Active", "Reason": "AcceptedByRemote"})
        assert intercom.state == ACTIVE and sim(led_off, "value") == "1"
        intercom.on_dtmf({"DTMFEventId": "open", "CallId": "Out-1"})
        assert sim(lock_off, "value") == "0"                    # unlocked
        assert loop.run_until(lambda: sim(lock_off, "value") == "1", timeout_s=5)   # re-locked by the timer
        assert [d["State"] for t, d in events if t == "doorstation:Relay"] == ["Locked", "Unlocked", "Locked"]
    finally:
        intercom.shutdown()
        lines.close()
        for off in range(8):
            sim(off, "pull", "pull-down")
