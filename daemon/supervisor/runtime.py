"""The supervisor's live state: the SIP engine, VMS calls, call history and the door (intercom).
Implements daemon.commands.Runtime for the command handlers. Built by daemon/supervisor/wiring.py.

Everything here runs on the supervisor's loop thread, and nothing here waits on the SIP engine:
requests go to the engine as futures that the commands await (asyncio.wrap_future), configuration
is applied in the background with its outcome reported as an event (`doorstation:SIP/Applied`) and
in `status()`. The SIP engine calls `on_engine_event` on its own thread; that only hands the event
over with call_soon_threadsafe.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Callable

from daemon.events import CallEventSequencer, Event, dtmf_event
from daemon.faults import action_failed, invalid_arg, not_found
from daemon.intercom import TOPIC_INPUT
from daemon.sip import calls as callmodel
from daemon.sip.calls import VMS_CALL
from daemon.sip.recorder import load_call_history, save_finished_call
from daemon.sip.types import (
    AccountStatusChanged,
    CallFinished,
    CallNotFound,
    CallTransition,
    DtmfBlocked,
    DtmfMatched,
    EngineError,
    EngineSuperseded,
)
from daemon.store import Store
from daemon.supervisor.eventsink import EventSink

if TYPE_CHECKING:
    from daemon.audiostream.server import AudioStreamServer
    from daemon.audiostream.vms import VmsStreamCalls
    from daemon.intercom import Intercom
    from daemon.sip.engine import SipEngine
    from hw.station import StationHardware

RELAY_BINDINGS_KEY = "relay_dtmf_events"
TOPIC_SIP_APPLIED = "doorstation:SIP/Applied"
TOPIC_ACCOUNT_STATUS = "doorstation:SIP/AccountStatus"
CALL_ANSWER_WAIT_S = 2.0      # Call waits this long for the INVITE; later failures come as events
HANGUP_WAIT_S = 5.0
SETTLE_WAIT_S = 2.0           # a status read waits this long for the configuration to be in force


class StationRuntime:
    def __init__(self, store: Store, engine: "SipEngine", sink: EventSink, loop: asyncio.AbstractEventLoop,
                 log: logging.Logger, *, sip_port: int | None = None, bind_address: str = "",
                 hardware: "StationHardware | None" = None, relay_dtmf_events: tuple[str, ...] = (),
                 tls_files: dict | None = None, clock: Callable[[], float] = time.time,
                 live_changed: Callable[[], None] = lambda: None):
        """live_changed: called on the loop right after a change of what call_status(es) read
        here (calls being placed, VMS calls, the history): the supervisor's live stamp
        (daemon/control/livestamp.py). The engine's own view calls it itself."""
        self.store = store
        self._live_changed = live_changed
        self.engine = engine
        self.sink = sink
        self.started_at = time.time()   # the web page's uptime
        self.loop = loop
        self.log = log
        self.sip_port = sip_port
        self.bind_address = bind_address
        self.tls_files = tls_files or {}
        self.hardware = hardware
        self.relay_dtmf_events = relay_dtmf_events   # hardware.toml [relay]: fixed door-opening events
        self.intercom: "Intercom | None" = None   # attach_intercom(): the intercom calls back in here
        self.clock = clock
        self.calls = callmodel.LiveCalls()          # written by the sequencer, read by the intercom
        self.sequencer = CallEventSequencer(calls=self.calls)
        self.history = callmodel.CallHistory()
        self.vms_calls: dict[str, callmodel.CallRecord] = {}
        self._vms_timers: dict[str, asyncio.TimerHandle] = {}
        self._vms_counter = 0
        self.vms_streams: "VmsStreamCalls | None" = None          # set by the wiring
        self.audio_streams: "AudioStreamServer | None" = None     # status only
        self._placing: dict[str, callmodel.CallRecord] = {}   # handed to the engine, not placed yet
        self._codecs: list[dict] = []
        self._applying: asyncio.Future | None = None    # the newest configuration apply
        self._apply_generation = 0
        self.apply_status: dict = {"State": "NotApplied"}

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        from daemon.commands import accounts, sip_config
        accounts.initialise(self.store)
        if self.sip_port is not None:
            self._store_sip_port(sip_config, self.sip_port)
        self.history.load(load_call_history(self.store))
        self._live_changed()
        self.engine.start()
        try:       # once, at start-up (the engine answers at once: it has nothing else to do yet)
            self._codecs = self.engine.supported_codecs()
        except EngineError as e:
            self.log.error("could not read the SIP stack's codecs: %s", e)
        # A failure is reported and the station keeps running: the API is how the owner fixes it
        # (e.g. a SIP port another program holds).
        self._apply("startup")
        if self.hardware is not None and self.intercom is not None:
            self.intercom.start()
            self.loop.add_reader(self.hardware.fileno(), self._on_hardware_readable)
        self._emit(self.sequencer.initial())

    def attach_intercom(self, intercom: "Intercom") -> None:
        """The intercom is built after the runtime (it calls and emits through it); connect them."""
        self.intercom = intercom

    def stop(self) -> None:
        """Calls ended and the engine stopped; the wiring then locks the door and closes the hardware."""
        for handle in self._vms_timers.values():
            handle.cancel()
        if self.hardware is not None and self.intercom is not None:
            self.loop.remove_reader(self.hardware.fileno())
        self.engine.stop()

    def _on_hardware_readable(self) -> None:
        if self.hardware is None or self.intercom is None:
            return
        try:
            for edge in self.hardware.read_edges():
                # every edge is logged (Axis IO/Port events follow the line: press and release)
                self.sink.emit(TOPIC_INPUT, {"Input": edge.role, "Active": edge.active})
                if edge.role == "call_button":
                    self.intercom.on_button(edge)
        except Exception:
            self.log.exception("handling a GPIO edge failed")

    def heartbeat_age(self) -> float:
        return self.engine.heartbeat_age()

    def _store_sip_port(self, sip_config, port: int) -> None:
        """`--sip-port N` is written into the stored configuration, so the API shows what is used:
        SIPPort N and SIPTLSPort N+1 (the TLS listener follows, as 5060/5061 do by default)."""
        with self.store.transaction() as tx:
            config = sip_config.load(tx)
            tls_port = port + 1 if port < 65535 else port - 1
            if (config.get("SIPPort"), config.get("SIPTLSPort")) != (port, tls_port):
                config["SIPPort"], config["SIPTLSPort"] = port, tls_port
                tx.put_setting(sip_config.SETTING_KEY, config)

    # -- configuration -----------------------------------------------------------------------
    def engine_config(self):
        from daemon.commands import accounts, codecs, sip_config
        from daemon.sip.config import engine_config_from_vapix
        return engine_config_from_vapix(
            sip_config.load(self.store), accounts.stored_accounts(self.store),
            dtmf_configurations=self.store.list_objects("dtmf_configuration"),
            dtmf_triggers=self.store.list_objects("dtmf_trigger"),
            dtmf_events=self.store.list_objects("dtmf_event"),
            codecs=codecs.current_list(self.store, self),
            bind_address=self.bind_address, **self.tls_files)

    def _apply(self, what: str) -> None:
        """Hand the stored configuration to the engine; never waits. The engine applies requests
        in order (a later Call runs after this apply); the outcome arrives in _applied()."""
        self._apply_generation += 1
        generation = self._apply_generation
        try:
            future = asyncio.wrap_future(self.engine.apply_async(self.engine_config()), loop=self.loop)
        except EngineError as e:                       # the engine is not running
            self._report_apply(generation, what, str(e))
            return
        self._applying = future
        self.apply_status = {"State": "Applying", "What": what, "Generation": generation}
        future.add_done_callback(lambda f: self._applied(generation, what, f))

    def _applied(self, generation: int, what: str, future: asyncio.Future) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if isinstance(error, EngineSuperseded):
            return                                     # a newer apply reports for both
        self._report_apply(generation, what, str(error) if error else "")

    def _report_apply(self, generation: int, what: str, error: str) -> None:
        if error:
            self.log.error("could not apply %s: %s", what, error)
        self.apply_status = {"State": "Failed" if error else "Applied", "What": what,
                             "Generation": generation, **({"Error": error} if error else {})}
        self.sink.emit(TOPIC_SIP_APPLIED, dict(self.apply_status))

    def config_changed(self, what: str) -> None:
        if what == "vms":
            if self.vms_streams is not None:   # a changed threshold may start or end a call
                self.vms_streams.evaluate()
            return
        self._apply(what)

    async def config_settled(self) -> None:
        """Wait (bounded, never blocking the loop) for the newest configuration apply."""
        applying = self._applying
        if applying is not None and not applying.done():
            await asyncio.wait({applying}, timeout=SETTLE_WAIT_S)

    def supported_codecs(self) -> list[dict]:
        return [dict(c) for c in self._codecs]

    # -- calls -------------------------------------------------------------------------------
    def start_call(self, account_id: str | None, to: str) -> tuple[str, asyncio.Future | None]:
        """The CallId at once, and the engine's answer to await (None for a VMS call)."""
        if to.strip().upper() == VMS_CALL:
            return self._vms_call(), None
        from daemon.commands import sip_config
        if not sip_config.load(self.store).get("SIPEnabled"):
            raise action_failed("SIP is disabled: enable it with SetSIPConfiguration first")
        try:
            call_id, future = self.engine.start_call(account_id, to)
        except EngineError as e:
            raise action_failed(f"Failed to initiate the call: {e}") from e
        # Until the engine has placed it (it may wait for a configuration's ports), the call is
        # known here, so that the CallId the caller got always names a call.
        record = callmodel.CallRecord(call_id=call_id, direction="Outgoing", account_id=account_id or "",
                                      device_uri="", remote_uri=to, start_time=self.clock())
        self._placing[call_id] = record
        self._live_changed()
        placed = asyncio.wrap_future(future, loop=self.loop)
        placed.add_done_callback(lambda f: self._placed(call_id))
        return call_id, placed

    def _placed(self, call_id: str) -> None:
        if self._placing.pop(call_id, None) is not None:
            self._live_changed()

    async def call(self, account_id: str | None, to: str) -> str:
        """axcall:Call. Answers once the INVITE is on its way; if the engine is slower than
        CALL_ANSWER_WAIT_S, answers with the CallId anyway and a late failure is recorded as a
        Failed call (events + history), so nothing is lost."""
        call_id, placed = self.start_call(account_id, to)
        if placed is None:
            return call_id
        done, _ = await asyncio.wait({placed}, timeout=CALL_ANSWER_WAIT_S)
        if not done:
            placed.add_done_callback(lambda f: self._late_call_failure(call_id, account_id, to, f))
            return call_id
        error = placed.exception()
        if error is not None:
            raise action_failed(f"Failed to initiate the call: {error}") from error
        return call_id

    def _late_call_failure(self, call_id: str, account_id: str | None, to: str, future: asyncio.Future) -> None:
        error = None if future.cancelled() else future.exception()
        if error is None:
            return
        self.log.warning("call %s to %s failed after Call answered: %s", call_id, to[:100], error)
        self._record_failed_call(call_id, account_id, to)

    def _record_failed_call(self, call_id: str, account_id: str | None, to: str) -> None:
        """A call whose CallId was handed out but that the engine could not place: Initiated then
        Failed events and a Failed call in the history, so the CallId names a call to the end."""
        record = callmodel.CallRecord(call_id=call_id, direction="Outgoing", account_id=account_id or "",
                                      device_uri="", remote_uri=to, start_time=self.clock())
        record.state, record.reason, record.stop_time = callmodel.TERMINATED, "Failed", self.clock()
        self._call_transition(call_id, "Initiated", record.status())
        self._call_transition(call_id, "Failed", record.status())
        self._call_finished(record.status())

    def hang_up_nowait(self, call_id: str) -> None:
        """Hang up without waiting (the button): a failure is only logged."""
        if call_id in self.vms_calls:
            self._vms_end(call_id, "Terminated")
            return
        try:
            future = self.engine.hangup_async(call_id)
        except EngineError as e:
            self.log.warning("hanging up %s: %s", call_id, e)
            return
        future.add_done_callback(lambda f: None if f.cancelled() or f.exception() is None else
                                 self.log.warning("hanging up %s: %s", call_id, f.exception()))

    async def terminate_call(self, call_id: str) -> None:
        if call_id in self.vms_calls:
            self._vms_end(call_id, "Terminated")
            return
        try:
            future = asyncio.wrap_future(self.engine.hangup_async(call_id), loop=self.loop)
            await asyncio.wait_for(future, HANGUP_WAIT_S)
        except CallNotFound:
            raise not_found(f"There is no ongoing call with CallId {call_id}") from None
        except EngineError as e:
            raise action_failed(f"Failed to terminate the call: {e}") from e
        except asyncio.TimeoutError:
            raise action_failed("Failed to terminate the call: the SIP engine did not answer in time") from None

    def call_status(self, call_id: str) -> dict | None:
        if call_id in self.vms_calls:
            return self._vms_status(self.vms_calls[call_id])
        status = self.engine.call_status(call_id)
        if status is None and call_id in self._placing:
            status = self._placing[call_id].status()
        return status if status is not None else self.history.get(call_id)

    def call_statuses(self) -> list[dict]:
        by_id = {s["CallId"]: s for s in self.history.all()}
        for record in self._placing.values():
            by_id[record.call_id] = record.status()
        for status in self.engine.call_statuses():
            by_id[status["CallId"]] = status
        for record in self.vms_calls.values():
            by_id[record.call_id] = self._vms_status(record)
        return sorted(by_id.values(), key=lambda s: s.get("StartTime", ""))

    def account_status(self, account_id: str) -> dict | None:
        return self.engine.account_status(account_id)

    # -- VMS calls (simulated through the event system; no SIP) --------------------------------
    def _vms_call(self) -> str:
        from daemon.commands import vms
        config = vms.load(self.store)
        if not config.get("Enabled", True):
            raise action_failed("VMS calls are disabled in the VMSCallConfiguration")
        self._vms_counter += 1
        call_id = callmodel.new_call_id("Outgoing", self._vms_counter, self.clock())
        record = callmodel.CallRecord(call_id=call_id, direction="Outgoing", account_id="",
                                      device_uri="", remote_uri=VMS_CALL, start_time=self.clock())
        self.vms_calls[call_id] = record
        self._call_transition(call_id, "Initiated", self._vms_status(record))
        timeout = max(1, int(config.get("Timeout", 30)))
        self._vms_timers[call_id] = self.loop.call_later(timeout, self._vms_end, call_id, "NoAnswer")
        return call_id

    def _vms_end(self, call_id: str, reason: str) -> None:
        record = self.vms_calls.pop(call_id, None)
        handle = self._vms_timers.pop(call_id, None)
        if handle is not None:
            handle.cancel()
        if record is None:
            return
        record.state, record.reason, record.stop_time = callmodel.TERMINATED, reason, self.clock()
        status = self._vms_status(record)
        self._call_transition(call_id, reason, status)
        self._call_finished(status)
        if self.vms_streams is not None:          # its streams close with it
            self.vms_streams.call_ended(call_id)

    # the VMS call table that daemon.audiostream.vms drives from the stream counts
    def answer_waiting_vms_call(self) -> str | None:
        call_id = next((c for c, r in self.vms_calls.items() if r.state == callmodel.CALLING), None)
        if call_id is None:
            return None
        handle = self._vms_timers.pop(call_id, None)
        if handle is not None:
            handle.cancel()
        record = self.vms_calls[call_id]
        record.state, record.reason = callmodel.ACTIVE, "AcceptedByRemote"
        self._call_transition(call_id, "AcceptedByRemote", self._vms_status(record))
        return call_id

    def start_incoming_vms_call(self) -> str:
        self._vms_counter += 1
        call_id = callmodel.new_call_id("Incoming", self._vms_counter, self.clock())
        record = callmodel.CallRecord(call_id=call_id, direction="Incoming", account_id="",
                                      device_uri="", remote_uri=VMS_CALL, start_time=self.clock(),
                                      state=callmodel.ACTIVE, reason="AcceptedByDevice")
        self.vms_calls[call_id] = record
        self._call_transition(call_id, "AcceptedByDevice", self._vms_status(record))
        return call_id

    def end_vms_call(self, call_id: str, reason: str) -> None:
        self._vms_end(call_id, reason)

    @staticmethod
    def _vms_status(record: callmodel.CallRecord) -> dict:
        status = record.status()
        status["CallType"] = "VMS"
        status.pop("SIPAccountId", None)
        return status

    # -- engine events -----------------------------------------------------------------------
    def handle_engine_event(self, event) -> None:
        """An engine event, on the loop thread (wiring.EngineEvents hands them over)."""
        try:
            if isinstance(event, CallTransition):
                self._call_transition(event.call_id, event.reason, event.status)
            elif isinstance(event, CallFinished):
                self._call_finished(event.status)
            elif isinstance(event, DtmfMatched):
                self._emit([dtmf_event(event.call_id, event.event_id, event.event_name)])
                if self.intercom is not None:
                    self.intercom.on_dtmf(event.event_id, event.call_id)
            elif isinstance(event, DtmfBlocked):
                self.log.warning("call %s: %d wrong DTMF sequences, further DTMF ignored",
                                 event.call_id, event.wrong_sequences)
            elif isinstance(event, AccountStatusChanged):
                self.log.info("account %s: %s %s", event.account_id, event.status.get("Status"),
                              event.status.get("StatusText"))
                # into the event log too: the web page shows registration changes as they happen
                self.sink.emit(TOPIC_ACCOUNT_STATUS, {"SIPAccountId": event.account_id, **event.status})
        except Exception:
            self.log.exception("handling engine event %r failed", event)

    def _call_transition(self, call_id: str, reason: str, status: dict) -> None:
        # Every change of a VMS call's record comes here in the same loop callback, after it.
        self._live_changed()
        self._emit(self.sequencer.transition(call_id, reason, status.get("RemoteURI", ""),
                                             status.get("DeviceURI", "")))
        if self.intercom is not None:
            self.intercom.on_call_state({"CallId": call_id, "CallState": status.get("CallState", ""),
                                         "Reason": reason, "Direction": status.get("Direction")})

    def _call_finished(self, status: dict) -> None:
        self.history.add(status)
        self._live_changed()
        save_finished_call(self.store, status)

    def emit_hardware_event(self, topic: str, data: dict) -> None:
        """Relay activations (with their cause), button actions and extra inputs, into the log."""
        self.sink.emit(topic, data)

    def _emit(self, events: list[Event]) -> None:
        self.sink.append(events)

    # -- the door ---------------------------------------------------------------------------
    def status(self) -> dict:
        accounts = self.store.list_objects("sip_account")
        hardware = None
        if self.hardware is not None and self.intercom is not None:
            hardware = {**self.intercom.status(), **self.hardware.status()}
        return {
            "CallState": self.sequencer.aggregate,
            "Calls": [s for s in self.call_statuses() if s.get("CallState") in ("Calling", "Active")],
            "Accounts": [self.engine.account_status(a["Id"]) for a in accounts],
            "Hardware": hardware,
            "SIPConfiguration": dict(self.apply_status),
            "EngineHeartbeatAge": round(self.engine.heartbeat_age(), 3),
            "StartedAt": self.started_at,
            "HardwareConfig": self._hardware_config(),
            **({"AudioStreams": self.audio_streams.status()} if self.audio_streams is not None else {}),
        }

    def _hardware_config(self) -> dict | None:
        """What hardware.toml configured, for the web page's hardware section."""
        if self.hardware is None:
            return None
        gpio, audio = self.hardware.gpio_config, self.hardware.audio_config
        lines = {"call_button": gpio.call_button.line, "call_led": gpio.call_led.line,
                 "door_relay": gpio.door_relay.line,
                 **{name: c.line for name, c in gpio.inputs.items()},
                 **{name: o.line for name, o in gpio.outputs.items()}}
        from hw.inventory import gpio_chips, sound_cards
        return {"GPIOChip": None if gpio.simulated else gpio.chip, "Lines": lines,
                "CaptureDevice": None if audio.simulated else audio.capture_device,
                "PlaybackDevice": None if audio.simulated else audio.playback_device,
                # what the board has, configured or not: the names hardware.toml can use
                "Present": {"GPIOChips": gpio_chips(), "SoundCards": sound_cards()}}

    def door_open(self, cause: dict) -> dict:
        if self.intercom is None:
            raise action_failed("No door relay is configured")
        return self.intercom.door_open(cause)

    def press(self) -> dict:
        if self.intercom is None:
            raise action_failed("No call button is configured")
        return self.intercom.press()

    def relay_bindings(self) -> dict:
        """DTMF events that open the door: fixed ones from hardware.toml plus those bound through
        the API/CLI (stored in SQLite). Bindings to events that no longer exist are not effective."""
        fixed = list(self.relay_dtmf_events) if self.hardware is not None else []
        stored = (self.store.get_setting(RELAY_BINDINGS_KEY) or {}).get("DTMFEventIds", [])
        existing = set(self.store.object_ids("dtmf_event"))
        effective = [e for e in dict.fromkeys(fixed + stored) if e in existing]
        return {"DTMFEventIds": stored, "FromHardwareConfig": fixed, "Effective": effective}

    def opens_door(self, event_id: str) -> bool:
        """Does this DTMF event open the door? Read when it happens (the store and hardware.toml
        are the only places the bindings live)."""
        return event_id in self.relay_bindings()["Effective"]

    def set_relay_bindings(self, event_ids) -> dict:
        if not isinstance(event_ids, list) or not all(isinstance(e, str) for e in event_ids):
            raise invalid_arg("DTMFEventIds must be a list of DTMF event ids")
        existing = set(self.store.object_ids("dtmf_event"))
        unknown = [e for e in event_ids if e not in existing]
        if unknown:
            raise invalid_arg(f"No such DTMF event: {', '.join(unknown[:5])}")
        with self.store.transaction() as tx:
            tx.put_setting(RELAY_BINDINGS_KEY, {"DTMFEventIds": list(dict.fromkeys(event_ids))})
        return self.relay_bindings()

    def button_call_placed(self, call_id: str, account_id: str | None, to: str, future: asyncio.Future) -> None:
        """The engine's answer to a button's call: a failure is recorded as axcall:Call's late
        failures are (events + history), and the intercom reports it (CallFailed) and goes idle."""
        error = None if future.cancelled() else future.exception()
        if error is None:
            return
        self.log.warning("button call %s to %s failed: %s", call_id, to[:100], error)
        self._record_failed_call(call_id, account_id, to)
        if self.intercom is not None:
            self.intercom.call_failed(call_id, to, f"{type(error).__name__}: {error}")
