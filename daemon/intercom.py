"""The door station's call flow: button -> call, call state -> LED and ring-back, DTMF -> door relay.

Pure logic. Everything is passed in: the SIP side (`sip.call(account_id, to) -> call_id`, which
answers without waiting for the SIP stack — a later failure comes back as `call_failed()` —, and
`sip.hangup(call_id)`), the loop's timer scheduler, the LED and relay devices, a ring-back
switch, and an event sink `emit(topic, data)`. All methods run on the supervisor's loop thread.

Inputs:
  on_button(event)        an EdgeEvent from the GPIO lines (already debounced by the backend)
  press()                 a logical press without GPIO (the CLI's `press`, development)
  on_call_state(event)    {"CallId", "CallState", "Reason", optional "Direction"}
                          (or positionally: on_call_state(call_id, state, reason))
  on_dtmf(event)          {"DTMFEventId", "CallId"} (or on_dtmf(event_id, call_id))
  open_door(user) / door_open(cause)   an API/CLI request to pulse the relay
Lifecycle: start(), shutdown() (alias stop()); status() for a status command.
States (the door station's overall state): Idle, Calling, Active.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol

from daemon.hwconfig import ButtonConfig, LedConfig, RelayConfig
from daemon.sip.calls import ACTIVE, CALLING, IDLE, LiveCalls, aggregate_state
from hw.gpio import Button, EdgeEvent, Led, Relay
from hw.timers import Scheduler

_ENDED = {"Idle", "Terminating", "Terminated"}

# topics of the events this module emits (payloads are documented in docs/hardware.md)
TOPIC_RELAY = "doorstation:Relay"
TOPIC_BUTTON = "doorstation:Button"
TOPIC_CALL_FAILED = "doorstation:Intercom/CallFailed"
TOPIC_INPUT = "doorstation:Input"       # every input's edges: {"Input": role, "Active": bool}


class SipControl(Protocol):
    def call(self, account_id: str | None, to: str) -> str: ...

    def hangup(self, call_id: str) -> None: ...


class Ringback(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


Emit = Callable[[str, dict[str, Any]], None]


class Intercom:
    def __init__(self, *, sip: SipControl, scheduler: Scheduler, button: Button, led: Led,
                 relay: Relay, ringback: Ringback, emit: Emit, button_cfg: ButtonConfig,
                 led_cfg: LedConfig, relay_cfg: RelayConfig, calls: LiveCalls,
                 opens_door: Callable[[str], bool] | None = None) -> None:
        """`calls`: the live calls' states, kept by their owner (the runtime's event sequencer)
        before `on_call_state` is called; the intercom only reads them.
        `opens_door(DTMFEventId)`: whether that DTMF event opens the door, asked when it happens
        (the supervisor answers from hardware.toml and the stored bindings; no copy is kept here).
        Default: the events listed in hardware.toml's [relay]."""
        self._sip = sip
        self._scheduler = scheduler
        self._button = button
        self._led = led
        self._relay = relay
        self._ringback = ringback
        self._emit = emit
        self._button_cfg = button_cfg
        self._led_cfg = led_cfg
        self._relay_cfg = relay_cfg
        self._opens_door = opens_door or (lambda event_id: event_id in relay_cfg.dtmf_events)
        self._calls = calls
        self._placing: set[str] = set()         # calls the button started that no state reported yet
        self._outgoing: set[str] = set()        # calls whose Calling state should ring back
        self._ended_in_call: set[str] | None = None   # calls that ended while sip.call() ran
        self._ringing = False
        self.state = IDLE

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._relay.lock()
        self._emit(TOPIC_RELAY, {"State": "Locked", "Cause": "Startup"})
        self._apply()

    def stop(self) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        self._relay.lock()
        self._emit(TOPIC_RELAY, {"State": "Locked", "Cause": "Shutdown"})
        self._led.off()
        if self._ringing:
            self._ringback.stop()
            self._ringing = False

    # --- inputs -------------------------------------------------------------------------------
    def on_button(self, event: EdgeEvent) -> None:
        if self._button.handle(event) == "pressed":
            self._pressed()

    def press(self) -> dict[str, Any]:
        """A press that did not come from the GPIO line (CLI/development); returns what it did.
        Logged as the line would log it: pressed, then released."""
        self._emit(TOPIC_INPUT, {"Input": self._button.role, "Active": True})
        try:
            return self._pressed()
        finally:
            self._emit(TOPIC_INPUT, {"Input": self._button.role, "Active": False})

    def _pressed(self) -> dict[str, Any]:
        cfg = self._button_cfg
        if self.state == IDLE:
            self._emit(TOPIC_BUTTON, {"Action": "Call", "To": cfg.recipient})
            call_id = self._start_call()
            return {"Action": "Call", "To": cfg.recipient, "CallId": call_id}
        action = cfg.while_active if self.state == ACTIVE else cfg.while_calling
        done = {"Action": "Hangup" if action == "hangup" else "Ignored", "CallState": self.state}
        self._emit(TOPIC_BUTTON, done)
        if action == "hangup":
            for call_id, st in self._states().items():
                if st == self.state:
                    self._sip.hangup(call_id)
        return done

    def on_call_state(self, event: dict[str, Any] | str, state: str | None = None,
                      reason: str = "", direction: str | None = None) -> None:
        if not isinstance(event, dict):
            event = {"CallId": event, "CallState": state, "Reason": reason, "Direction": direction}
        call_id, state = str(event["CallId"]), str(event["CallState"])
        self._placing.discard(call_id)
        if state in _ENDED:
            self._outgoing.discard(call_id)
            if self._ended_in_call is not None:
                self._ended_in_call.add(call_id)
        elif state == CALLING and event.get("Direction") == "Outgoing":
            self._outgoing.add(call_id)
        self._apply()

    def call_failed(self, call_id: str, to: str, error: str) -> None:
        """The SIP side could not place a call that sip.call() had already returned (it answers
        without waiting for the engine): report it and forget the call."""
        self._emit(TOPIC_CALL_FAILED, {"To": to, "Error": error, "CallId": call_id})
        self.on_call_state(call_id, "Terminated", "Failed")

    def on_dtmf(self, event: dict[str, Any] | str, call_id: str | None = None) -> None:
        if not isinstance(event, dict):
            event = {"DTMFEventId": event, "CallId": call_id}
        event_id, call_id = str(event["DTMFEventId"]), event.get("CallId")
        if self._opens_door(event_id):
            self._pulse({"Cause": "DTMF", "DTMFEventId": event_id, "CallId": call_id})

    def open_door(self, user: str, pulse_ms: int | None = None) -> dict[str, Any]:
        """Door opened from the API or CLI; `user` is who asked (recorded with the event)."""
        ms = self._pulse({"Cause": "User", "User": user}, pulse_ms)
        return {"Relay": "Unlocked", "PulseMs": ms, "User": user}

    def door_open(self, cause: dict[str, Any]) -> dict[str, Any]:
        """The supervisor's form: cause = {"api": user} (or {"User": user})."""
        user = cause.get("User") or cause.get("api") or cause.get("user") or "unknown"
        return self.open_door(str(user))

    def status(self) -> dict[str, Any]:
        return {"State": self.state, "Relay": "Unlocked" if self._relay.unlocked else "Locked",
                "LED": self._led.mode if isinstance(self._led.mode, str) else "blink",
                "ButtonPressed": self._button.pressed, "RingBack": self._ringing,
                "Calls": self._states()}

    # --- internals ----------------------------------------------------------------------------
    def _start_call(self) -> str | None:
        cfg = self._button_cfg
        self._ended_in_call = set()   # an engine may report the call (even its end) before returning
        try:
            call_id = str(self._sip.call(cfg.account_id, cfg.recipient))
        except Exception as e:  # the engine's own error types: report, stay Idle
            self._emit(TOPIC_CALL_FAILED, {"To": cfg.recipient, "Error": f"{type(e).__name__}: {e}"})
            self._apply()
            return None
        finally:
            ended, self._ended_in_call = self._ended_in_call, None
        if call_id not in ended:
            # our call is Calling from now on, even before the engine's first event arrives
            if self._calls.get(call_id) is None:
                self._placing.add(call_id)
            self._outgoing.add(call_id)
        self._apply()
        return call_id

    def _pulse(self, cause: dict[str, Any], pulse_ms: int | None = None) -> int:
        """Unlock for pulse_ms. The re-lock is the relay's own (its timer thread in the supervisor);
        the events carry the wall-clock times at which the line really changed."""
        ms = pulse_ms or self._relay_cfg.pulse_ms
        unlocked_at = self._relay.pulse(ms, on_locked=lambda locked_at: self._emit(
            TOPIC_RELAY, {"State": "Locked", "Cause": "PulseEnded", "At": round(locked_at, 6),
                          "UnlockedMs": round((locked_at - unlocked_at) * 1000, 1)}))
        self._emit(TOPIC_RELAY, {"State": "Unlocked", **cause, "PulseMs": ms, "At": round(unlocked_at, 6)})
        return ms

    def _states(self) -> dict[str, str]:
        """The live calls' states, with the button's calls not reported yet as Calling."""
        states = dict(self._calls.items())
        for call_id in self._placing:
            states.setdefault(call_id, CALLING)
        return states

    def _apply(self) -> None:
        states = self._states()
        self.state = aggregate_state(states.values())
        if self.state == ACTIVE:
            self._led.on()
        elif self.state == CALLING:
            self._led.blink(self._led_cfg.blink_on_ms, self._led_cfg.blink_off_ms)
        else:
            self._led.off()
        ring = self.state == CALLING and any(states.get(c) == CALLING for c in self._outgoing)
        if ring and not self._ringing:
            self._ringback.start()
        elif not ring and self._ringing:
            self._ringback.stop()
        self._ringing = ring
