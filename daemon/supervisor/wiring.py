"""Builds the supervisor's parts in order and tears them down in reverse: the one place that
knows how they connect.

    store -> event sink -> hardware (relay locked first) -> SIP engine -> runtime -> intercom
          -> MQTT bridge (daemon/mqtt: follows the event log, opens the door through the runtime)

`open_station()` builds all of it (nothing is left open when a step fails); `Station.start()`
starts the engine and the door; `Station.close()` stops them in reverse: calls ended, engine
stopped, door locked, lines and sound device released, store closed.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager

from daemon.intercom import Intercom
from daemon.store import Store
from daemon.supervisor.eventsink import EventSink
from daemon.supervisor.runtime import StationRuntime

STARTED_KEY = "supervisor_started"


class StationConfigError(Exception):
    """The station cannot start with this configuration (message names what is wrong)."""


class AlreadyRunning(Exception):
    """Another supervisor runs on this state directory (it holds the live stamp's lock)."""


class EngineEvents:
    """Hands the SIP engine's events (engine thread) to a handler on the loop thread; the handler
    is connected once the runtime that handles them exists.

    Events are handled in batches, each inside one `batch()` context (the store's transaction):
    a call's transitions and its history row share one commit (one fsync) instead of one each.
    Under a flood of calls that is what keeps the loop free for the door, the control socket and
    the event readers (tests/test_door_guard.py). A batch is capped so a long queue is handled
    over several loop turns, with the loop's other work in between."""

    MAX_BATCH = 200

    def __init__(self, loop: asyncio.AbstractEventLoop, log: logging.Logger,
                 batch: Callable[[], ContextManager[Any]] = contextlib.nullcontext) -> None:
        self._loop = loop
        self._log = log
        self._batch = batch
        self._handler: Callable[[Any], None] | None = None
        self._lock = threading.Lock()
        self._pending: collections.deque[Any] = collections.deque()
        self._scheduled = False

    def connect(self, handler: Callable[[Any], None]) -> None:
        self._handler = handler

    def deliver(self, event: Any) -> None:           # engine thread: only hand over
        with self._lock:
            self._pending.append(event)
            if self._scheduled:
                return
            self._scheduled = True
        self._loop.call_soon_threadsafe(self._dispatch)

    def _dispatch(self) -> None:
        with self._lock:
            batch = [self._pending.popleft() for _ in range(min(len(self._pending), self.MAX_BATCH))]
            self._scheduled = bool(self._pending)
        if self._scheduled:                          # the rest on a later turn
            self._loop.call_soon(self._dispatch)
        if self._handler is None:
            return
        try:
            with self._batch():
                for event in batch:
                    self._handler(event)
        except Exception:                            # the commit itself failed (disk full, I/O error)
            self._log.exception("storing %d engine events failed", len(batch))


class ButtonCalls:
    """What the intercom calls on a button press: the same paths as axcall:Call/TerminateCall,
    without waiting: the CallId at once, a failure later through runtime.button_call_placed()."""

    def __init__(self, runtime: StationRuntime) -> None:
        self._runtime = runtime

    def call(self, account_id: str | None, to: str) -> str:
        call_id, placed = self._runtime.start_call(account_id, to)
        if placed is not None:
            placed.add_done_callback(lambda f: self._runtime.button_call_placed(call_id, account_id, to, f))
        return call_id

    def hangup(self, call_id: str) -> None:
        self._runtime.hang_up_nowait(call_id)


@dataclass
class Station:
    store: Store
    sink: EventSink
    runtime: StationRuntime
    hardware: Any = None
    intercom: Intercom | None = None
    audio_streams: Any = None           # daemon.audiostream.server.AudioStreamServer (started by serve)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("doorstation"))
    mqtt: Any = None                    # daemon.mqtt.bridge.MqttBridge (broker link, HA discovery)
    live: Any = None                    # daemon.control.livestamp.LiveStamp (its lock: this process's)

    def start(self) -> None:
        self.runtime.start()            # engine, configuration apply, door (locked), GPIO reader
        if self.mqtt is not None:
            self.mqtt.start()           # after the runtime's initial events: snapshot, then follow the log

    def stop_answering(self) -> None:
        """The API answers nothing from what it kept from now on (the shutdown may take seconds)."""
        if self.live is not None:
            self.live.stop()

    def close(self) -> None:
        """Reverse order; each step runs even if the one before failed."""
        self.stop_answering()
        if self.mqtt is not None:
            try:
                self.mqtt.close()       # "offline" to the broker, at most a few seconds
            except Exception:
                self.log.exception("closing the MQTT client")
        try:
            self.runtime.stop()             # calls hung up, engine stopped
        finally:
            try:
                if self.intercom is not None:
                    self.intercom.shutdown()    # relay locked (event logged), LED off
            finally:
                try:
                    if self.hardware is not None:
                        self.hardware.close()   # relay driven locked again, lines and sound device released
                finally:
                    self.store.close()
                    if self.live is not None:
                        self.live.close()   # the lock last: one supervisor until this one is done


def open_station(state_dir: Path, loop: asyncio.AbstractEventLoop, log: logging.Logger,
                 options: dict) -> Station:
    """Raises StoreError, StationConfigError for a bad hardware.toml, GPIO or sound device, or
    AlreadyRunning."""
    from daemon import hwconfig
    from daemon.control.livestamp import LiveStamp, live_stamp_path
    from daemon.sip.engine import SipEngine
    from daemon.tls import station_tls_files
    from hw.audio import AudioDeviceError
    from hw.gpio import GpioError
    from hw.station import open_station_hardware
    from hw.timers import AsyncioScheduler
    # The live state's change counter, locked for the process's life: first, so that a second
    # supervisor on the same state touches nothing (not even the store's migrations); written
    # before the commit below, since the API maps it again when it sees the store change.
    live = LiveStamp(live_stamp_path(state_dir))
    if not live.held:
        live.close()
        raise AlreadyRunning(f"another supervisor is running on {state_dir} (it holds "
                             f"{live_stamp_path(state_dir)}): one station, one supervisor")
    try:
        store = Store.open(state_dir)
    except BaseException:
        live.close()
        raise
    built: list[Callable[[], None]] = [live.close, store.close]
    try:
        # A new supervisor may answer differently (another SIP stack's codecs): this commit ends
        # the answers the API kept from the last one (daemon/api/answers.py).
        with store.transaction() as tx:
            tx.put_setting(STARTED_KEY, {"Started": time.time(), "Pid": os.getpid()})
        sink = EventSink(store)
        scheduler = AsyncioScheduler(loop)
        try:
            cfg = hwconfig.load(state_dir)
            hardware = open_station_hardware(cfg.gpio, cfg.audio, scheduler=scheduler,
                                             notify=loop.call_soon_threadsafe)
        except (hwconfig.HwConfigError, GpioError, AudioDeviceError) as e:
            raise StationConfigError(str(e)) from e
        built.append(hardware.close)
        audio = hardware.audio
        engine_events = EngineEvents(loop, log, batch=store.transaction)
        # history_size=0: finished calls have one home, the runtime's history (persisted in SQLite);
        # the engine keeps only the calls in progress
        engine = SipEngine(on_event=engine_events.deliver, log=log.getChild("sip"), history_size=0,
                           view_changed=live.bump,
                           media_hook=audio.media_hook,
                           # the port exists before the first call, so ring-back can play at once
                           on_endpoint_ready=audio.open_port,
                           media_end_hook=lambda call_id: audio.detach() if audio.call_id == call_id else None)
        audio.run_on_engine = engine.submit      # ring-back's clock is switched on the engine thread
        runtime = StationRuntime(store, engine, sink, loop, log, sip_port=options.get("sip_port"),
                                 bind_address=options.get("sip_bind") or "", hardware=hardware,
                                 relay_dtmf_events=cfg.relay.dtmf_events,
                                 tls_files=station_tls_files(state_dir, log), live_changed=live.bump)
        intercom = Intercom(sip=ButtonCalls(runtime), scheduler=scheduler, button=hardware.button,
                            led=hardware.led, relay=hardware.relay, ringback=audio, emit=sink.emit,
                            button_cfg=cfg.button, led_cfg=cfg.led, relay_cfg=cfg.relay, calls=runtime.calls,
                            opens_door=runtime.opens_door)
        runtime.attach_intercom(intercom)
        engine_events.connect(runtime.handle_engine_event)
        audio_streams = _audio_streams(state_dir, audio, runtime, store, loop, log)
        from daemon.mqtt.bridge import open_bridge
        mqtt = open_bridge(store, sink, runtime, loop, log.getChild("mqtt"), state_dir)
        return Station(store, sink, runtime, hardware, intercom, audio_streams, log, mqtt, live)
    except BaseException:
        for close in reversed(built):
            try:
                close()
            except Exception:
                log.exception("cleaning up after a failed start")
        raise


def _audio_streams(state_dir: Path, audio: Any, runtime: StationRuntime, store: Store,
                   loop: asyncio.AbstractEventLoop, log: logging.Logger) -> Any:
    """HTTP audio streams on the hub, and the VMS calls their counts make."""
    import os

    from daemon.audiostream import audio_socket_path
    from daemon.audiostream.server import AudioStreamServer
    from daemon.audiostream.vms import VmsStreamCalls
    from daemon.commands import vms
    per_address = int(os.environ.get("DOORSTATION_MAX_AUDIO_PER_ADDRESS", "4"))  # benches on loopback raise it
    server = AudioStreamServer(audio_socket_path(state_dir), audio, loop, log.getChild("audio"),
                               max_per_peer=max(1, per_address))
    calls = VmsStreamCalls(lambda: vms.load(store), runtime, server.close_kind)
    server.on_counts = calls.counts_changed
    runtime.vms_streams, runtime.audio_streams = calls, server
    return server
