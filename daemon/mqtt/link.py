"""The connection to the broker: paho-mqtt's network thread plus one publisher thread, fed by a
bounded queue. Nothing here is called on the supervisor's loop except `offer()` (a put_nowait)
and `status()` (reads counters).

Threads:
    paho's network thread   connect, reconnect with backoff (1 s doubling to 60 s), keep-alive,
                            incoming commands (handed to `on_command`, which must not block)
    publisher thread        takes messages from the queue while connected and gives them to paho

Order: messages leave in the order they were offered. A QoS>0 message handed to paho just as the
connection dropped is kept by paho and resent right after the next CONNACK; newer messages wait
until it is acknowledged (bounded), so an old value can never overtake a newer one.

Outage behaviour (docs/mqtt.md): a message offered while the broker is away waits in the queue
and is published after the reconnect, unless it waited longer than `max_age` seconds (counted as
`expired`: a doorbell that rings minutes late is worse than none); a message offered while the
queue is full is counted as `dropped`. Retained messages (states, discovery, Axis property events
with retain) are also kept by topic: after every (re)connect, once the queue is drained, any
retained value the broker has not received in this session is published again, so a broker that
restarted without persistence gets the current state back.
"""
from __future__ import annotations

import logging
import queue
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from daemon.mqtt.render import Outgoing

QUEUE_SIZE = 256
MAX_AGE_S = 60.0
MAX_RETAINED = 512          # distinct retained topics kept for republishing
MAX_COMMAND_BYTES = 64
MAX_COMMANDS_PER_S = 10     # commands handed to the loop; a flood beyond that is counted, not queued
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 60
PAHO_QUEUE = 64             # paho's own queue of QoS>0 messages not yet acknowledged


@dataclass
class LinkSettings:
    host: str
    port: int
    protocol: str                       # tcp | ssl | ws | wss
    client_id: str
    keepalive: int = 60
    connect_timeout: int = 60
    clean_session: bool = True
    auto_reconnect: bool = True
    username: str = ""
    password: str = ""
    basepath: str = "/mqtt"
    validate_server_cert: bool = True
    ca_pem: str = ""
    client_cert_pem: str = ""
    client_key_pem: str = ""
    will: dict | None = None            # {topic, message, retain, qos}
    connect_message: dict | None = None
    disconnect_message: dict | None = None
    subscriptions: list[str] = field(default_factory=list)


@dataclass
class _Queued:
    message: Outgoing
    at: float


class MqttLink:
    def __init__(self, settings: LinkSettings, on_command: Callable[[str, bytes], None], log: logging.Logger,
                 key_dir: Path, queue_size: int = QUEUE_SIZE, max_age: float = MAX_AGE_S,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self._on_command = on_command
        self._log = log
        self._key_dir = key_dir
        self._clock = clock
        self._max_age = max_age
        self._queue: queue.Queue[_Queued] = queue.Queue(maxsize=queue_size)
        self._retained: dict[str, Outgoing] = {}
        self._sent: dict[str, bytes] = {}        # retained topic -> payload sent in this session
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._resync = threading.Event()
        self._stopping = threading.Event()
        self._publisher: threading.Thread | None = None
        self._client: paho.Client | None = None
        self.counters = {"published": 0, "dropped": 0, "expired": 0, "connects": 0, "disconnects": 0,
                         "commands": 0, "commandsTooLarge": 0, "commandsFlooded": 0}
        self.connection = "disconnected"
        self.last_error = ""
        self.connected_since: float | None = None
        self._refused = False
        self._command_window = (0.0, 0)           # (window start, commands handed over in it)
        self._paho_held: list[paho.MQTTMessageInfo] = []   # QoS>0 messages paho keeps for the reconnect

    # -- loop side ------------------------------------------------------------------------------
    def offer(self, message: Outgoing) -> bool:
        """Never blocks. False when the queue is full (counted as dropped)."""
        if message.retain:
            with self._lock:
                if message.topic in self._retained or len(self._retained) < MAX_RETAINED:
                    self._retained[message.topic] = message
        try:
            self._queue.put_nowait(_Queued(message, self._clock()))
            return True
        except queue.Full:
            self.counters["dropped"] += 1
            return False

    def status(self) -> dict:
        return {"connectionStatus": self.connection, "queued": self._queue.qsize(),
                "queueSize": self._queue.maxsize, **self.counters,
                **({"lastError": self.last_error} if self.last_error else {})}

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        s = self.settings
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id, clean_session=s.clean_session,
                             protocol=paho.MQTTv311,
                             transport="websockets" if s.protocol in ("ws", "wss") else "tcp",
                             reconnect_on_failure=s.auto_reconnect)
        if s.protocol in ("ws", "wss"):
            client.ws_set_options(path=s.basepath)
        if s.username:
            client.username_pw_set(s.username, s.password or None)
        if s.will:
            client.will_set(s.will["topic"], s.will["message"], int(s.will["qos"]), bool(s.will["retain"]))
        if s.protocol in ("ssl", "wss"):
            client.tls_set_context(self._tls_context())
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.connect_timeout = float(s.connect_timeout)
        client.max_queued_messages_set(PAHO_QUEUE)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_connect_fail = self._on_connect_fail
        self._client = client
        self.connection = "connecting"
        client.connect_async(s.host, s.port, keepalive=s.keepalive)
        client.loop_start()
        self._publisher = threading.Thread(target=self._publish_loop, name="mqtt-publisher", daemon=True)
        self._publisher.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Blocks up to about `timeout` s: call it off the loop (the bridge uses a thread)."""
        self._stopping.set()
        client = self._client
        if client is None:
            return
        if self._connected.is_set() and self.settings.disconnect_message:
            m = self.settings.disconnect_message
            try:
                client.publish(m["topic"], m["message"], int(m["qos"]), bool(m["retain"])).wait_for_publish(1.0)
            except (RuntimeError, ValueError):
                pass
        client.disconnect()
        client.loop_stop()
        if self._publisher is not None:
            self._publisher.join(timeout)
        self.connection = "disconnected"

    def _tls_context(self) -> ssl.SSLContext:
        s = self.settings
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if s.ca_pem:
            ctx.load_verify_locations(cadata=s.ca_pem)
        if not s.validate_server_cert:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if s.client_cert_pem and s.client_key_pem:
            # ssl loads a certificate chain from files only: a private temporary file, removed at once
            self._key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            with tempfile.NamedTemporaryFile("w", dir=self._key_dir, suffix=".pem") as f:
                f.write(s.client_cert_pem.rstrip() + "\n" + s.client_key_pem.rstrip() + "\n")
                f.flush()
                ctx.load_cert_chain(f.name)
        return ctx

    # -- paho's network thread ------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.last_error = f"broker refused the connection: {reason_code}"
            self._refused = True          # the disconnect that follows must not hide why
            self.connection = "connecting"
            return
        self._refused = False
        self.counters["connects"] += 1
        self.connected_since = time.time()
        self.last_error = ""
        for topic in self.settings.subscriptions:
            client.subscribe(topic, qos=1)
        m = self.settings.connect_message
        with self._lock:
            self._sent = {}
        if m:
            client.publish(m["topic"], m["message"], int(m["qos"]), bool(m["retain"]))
            if m["retain"]:
                with self._lock:
                    self._sent[m["topic"]] = m["message"].encode()
        self.connection = "connected"
        self._resync.set()
        self._connected.set()
        self._log.info("MQTT connected to %s:%d", self.settings.host, self.settings.port)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was:
            self.counters["disconnects"] += 1
            self._log.warning("MQTT connection to %s:%d lost: %s", self.settings.host, self.settings.port,
                              reason_code)
        if not self._stopping.is_set():
            self.connection = "connecting" if self.settings.auto_reconnect else "disconnected"
            if reason_code.is_failure and not self._refused:
                self.last_error = str(reason_code)

    def _on_connect_fail(self, client, userdata) -> None:
        self.last_error = "could not connect to the broker"

    def _on_message(self, client, userdata, message) -> None:
        if len(message.payload) > MAX_COMMAND_BYTES:
            self.counters["commandsTooLarge"] += 1
            return
        now = time.monotonic()
        start, count = self._command_window
        if now - start >= 1.0:
            start, count = now, 0
        if count >= MAX_COMMANDS_PER_S:
            self.counters["commandsFlooded"] += 1
            return
        self._command_window = (start, count + 1)
        self.counters["commands"] += 1
        self._on_command(message.topic, bytes(message.payload))

    # -- publisher thread -----------------------------------------------------------------------
    def _publish_loop(self) -> None:
        held: _Queued | None = None           # taken from the queue, not yet accepted by paho
        while not self._stopping.is_set():
            if not self._connected.wait(0.25):
                continue
            if self._paho_held and not self._paho_resent():
                continue
            if held is None:
                try:
                    held = self._queue.get(timeout=0.25)
                except queue.Empty:
                    if self._resync.is_set():
                        self._resync.clear()
                        self._republish_retained()
                    continue
            if not self._connected.is_set():
                continue                      # lost while we waited for the queue: keep it for later
            if self._clock() - held.at > self._max_age:
                self.counters["expired"] += 1
                held = None
                continue
            if self._send(held.message):
                held = None

    def _send(self, m: Outgoing) -> bool:
        client = self._client
        if client is None:
            return False
        try:
            info = client.publish(m.topic, m.payload, m.qos, m.retain)
        except ValueError as e:          # an invalid topic: never retried
            self.last_error = f"publish {m.topic[:80]}: {e}"
            return True
        if info.rc == paho.MQTT_ERR_QUEUE_SIZE:
            time.sleep(0.05)             # paho's own queue is full (broker not acknowledging): wait
            return False
        if info.rc == paho.MQTT_ERR_NO_CONN:
            if m.qos == 0:
                self._connected.clear()  # lost meanwhile: keep it until the reconnect
                return False
            # paho keeps a QoS>0 message and resends it right after the next CONNACK; newer
            # messages wait until it is acknowledged, or they would overtake it
            self._paho_held.append(info)
        self.counters["published"] += 1  # sent, or (QoS>0) kept by paho until the reconnect
        if m.retain:
            with self._lock:
                self._sent[m.topic] = m.payload
        return True

    def _paho_resent(self, wait: float = 2.0) -> bool:
        """After a reconnect: wait (bounded) until paho's own resends are acknowledged."""
        deadline = time.monotonic() + wait
        while not all(info.is_published() for info in self._paho_held):
            if not self._connected.is_set() or self._stopping.is_set():
                return False
            if time.monotonic() > deadline:
                break                        # not acknowledged in time: go on rather than stall
            time.sleep(0.01)
        self._paho_held.clear()
        return True

    def _republish_retained(self) -> None:
        with self._lock:
            missing = [m for t, m in self._retained.items() if self._sent.get(t) != m.payload]
        for m in missing:
            if not self._connected.is_set() or self._stopping.is_set():
                self._resync.set()
                return
            self._send(m)
