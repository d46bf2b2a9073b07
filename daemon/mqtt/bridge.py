"""The supervisor's MQTT component: configuration commands, the event-log follower, the link to
the broker, and Home Assistant's lock commands.

Runs on the supervisor's loop thread, which it never blocks:
  * events: a task follows the event log (EventSink.wait_after, like a long-poll), feeds the
    shared AxisEventModel and hands each rendered message to the link with a put_nowait;
  * configuration: stored at once; the link is (re)built off the loop (stopping a paho client
    joins its thread), the new one started when the old one is gone, so an old "offline"
    disconnect message can never land after the new "online";
  * commands: paho's thread hands a lock command over with call_soon_threadsafe; it opens the
    door through runtime.door_open(), the same door policy and relay event (with its cause) as
    POST /api/door/open.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

from daemon.axis_events import AxisEventModel, Notification
from daemon.commands import role_allows
from daemon.faults import VapixFault, action_failed, invalid_arg
from daemon.mqtt import config as cfg
from daemon.mqtt.homeassistant import LOCK, UNLOCK, HaIdentity, HomeAssistant
from daemon.mqtt.link import LinkSettings, MqttLink
from daemon.mqtt.render import EventRenderer, Outgoing

MIN_UNLOCK_INTERVAL_S = 1.0     # Home Assistant commands closer together than this are ignored
MQTT_USER = "mqtt"              # the user name door pulses from MQTT are logged with
STOP_WAIT_S = 3.0


class MqttBridge:
    def __init__(self, store, sink, runtime, loop: asyncio.AbstractEventLoop, log: logging.Logger,
                 key_dir: Path, identity: HaIdentity,
                 link_factory: Callable[..., MqttLink] = MqttLink, clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.sink = sink
        self.runtime = runtime
        self.loop = loop
        self.log = log
        self.key_dir = key_dir
        self.identity = identity
        self.link_factory = link_factory
        self.clock = clock
        self.model = AxisEventModel()
        self.link: MqttLink | None = None
        self.renderer: EventRenderer | None = None
        self.ha: HomeAssistant | None = None
        self._after = 0
        self._task: asyncio.Task | None = None
        self._generation = 0
        self._last_unlock = -1e9
        self.commands = {"unlock": 0, "lock": 0, "refused": 0, "ignored": 0, "failed": 0}

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """After the runtime started (its initial events are logged): snapshot, follow, connect."""
        self.model = self._snapshot()
        row = self.store.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        self._after = int(row[0])
        self._task = self.loop.create_task(self._follow())
        doc = self.client_doc()
        if doc and doc.get("active"):
            if doc.get("activateOnReboot", True):
                self._restart()
            else:                           # Axis: the client stays off after a restart
                doc["active"] = False
                self._store(cfg.CLIENT_KEY, doc)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._generation += 1
        link, self.link = self.link, None
        if link is not None:
            stopper = threading.Thread(target=link.stop, name="mqtt-stop", daemon=True)
            stopper.start()
            stopper.join(STOP_WAIT_S)

    def _snapshot(self) -> AxisEventModel:
        hardware = getattr(self.runtime, "hardware", None)
        ports = None
        if hardware is not None:
            from daemon.device import port_layout, port_to_wire
            ports = {"Ports": [port_to_wire(p, bool(hardware.lines.get_value(p.role)))
                               for p in port_layout(hardware.gpio_config)]}
        return AxisEventModel.from_snapshot(self.runtime.status(), ports)

    # -- stored configuration -------------------------------------------------------------------
    def client_doc(self) -> dict | None:
        return self.store.get_setting(cfg.CLIENT_KEY)

    def events_doc(self) -> dict:
        return {**cfg.default_events(), **(self.store.get_setting(cfg.EVENTS_KEY) or {})}

    def _store(self, key: str, doc: dict) -> None:
        with self.store.transaction() as tx:
            tx.put_setting(key, doc)

    # -- control socket -------------------------------------------------------------------------
    def control_handlers(self) -> dict[str, Callable[[dict], Any]]:
        return {"mqtt.client.configure": self.configure_client, "mqtt.client.activate": self.activate,
                "mqtt.client.deactivate": self.deactivate, "mqtt.client.status": self.client_status,
                "mqtt.events.configure": self.configure_events, "mqtt.events.get": self.get_events}

    def configure_client(self, args: dict) -> dict:
        stored = self.client_doc() or {}
        try:
            doc = cfg.validate_client(args.get("params"), self.identity.serial, stored)
        except cfg.ConfigError as e:
            raise invalid_arg(str(e)) from None
        self._store(cfg.CLIENT_KEY, doc)
        if doc["active"]:
            self._restart()
        return {}

    def activate(self, args: dict) -> dict:
        doc = self.client_doc()
        if not doc:
            raise action_failed("The MQTT client is not configured: configureClient first")
        doc["active"] = True
        self._store(cfg.CLIENT_KEY, doc)
        self._restart()
        return {}

    def deactivate(self, args: dict) -> dict:
        doc = self.client_doc()
        if doc and doc.get("active"):
            doc["active"] = False
            self._store(cfg.CLIENT_KEY, doc)
        self._restart()
        return {}

    def configure_events(self, args: dict) -> dict:
        try:
            doc = cfg.validate_events(args.get("params"), self.store.get_setting(cfg.EVENTS_KEY))
        except cfg.ConfigError as e:
            raise invalid_arg(str(e)) from None
        self._store(cfg.EVENTS_KEY, doc)
        client = self.client_doc()
        if self.link is not None and client:
            self.renderer = EventRenderer(doc, client["deviceTopicPrefix"], self.identity.serial)
            self._offer_all(self._initial_axis())
        return {}

    def get_events(self, args: dict) -> dict:
        return {"eventPublicationConfig": self.events_doc()}

    def client_status(self, args: dict | None = None) -> dict:
        doc = self.client_doc()
        if doc:
            config = cfg.public_client(doc)
        else:
            config = {"server": {"host": "", "port": 1883, "protocol": "tcp"},
                      "deviceTopicPrefix": cfg.default_prefix(self.identity.serial)}
        link = self.link
        status = {"state": "active" if doc and doc.get("active") else "inactive",
                  **(link.status() if link is not None else {"connectionStatus": "disconnected"}),
                  "homeAssistantCommands": dict(self.commands)}
        return {"config": config, "status": status}

    def status(self) -> dict:
        """For `doorstation status`."""
        s = self.client_status()
        return {"Configured": bool(self.client_doc()), **s["status"],
                "Broker": "{host}:{port}".format(**s["config"]["server"]) if self.client_doc() else None}

    # -- the link -------------------------------------------------------------------------------
    def _restart(self) -> None:
        """Stop the current link (off the loop), then start a new one if the client is active."""
        self._generation += 1
        generation = self._generation
        old, self.link = self.link, None

        def stop_then_start() -> None:
            if old is not None:
                stopper = threading.Thread(target=old.stop, name="mqtt-stop", daemon=True)
                stopper.start()
                stopper.join(STOP_WAIT_S)
            self.loop.call_soon_threadsafe(self._start_link, generation)

        if old is None:
            self._start_link(generation)
        else:
            threading.Thread(target=stop_then_start, name="mqtt-restart", daemon=True).start()

    def _start_link(self, generation: int) -> None:
        if generation != self._generation:
            return                         # a newer configuration came meanwhile
        doc = self.client_doc()
        if not doc or not doc.get("active"):
            return
        messages = cfg.connection_messages(doc, self.identity.serial)
        ha_cfg = doc.get("homeAssistant") or {}
        online, offline = messages["connectMessage"], messages["lastWillTestament"]
        availability = ({"topic": offline["topic"], "online": online["message"], "offline": offline["message"]}
                        if online and offline and online["topic"] == offline["topic"] else None)
        ha = HomeAssistant(self.identity, ha_cfg.get("discoveryPrefix", "homeassistant"), availability,
                           dict(self.model.inputs))
        self.ha = ha if ha_cfg.get("discovery", True) else None
        self.renderer = EventRenderer(self.events_doc(), doc["deviceTopicPrefix"], self.identity.serial)
        server, ssl = doc["server"], doc.get("ssl") or {}
        settings = LinkSettings(
            host=server["host"], port=server["port"], protocol=server["protocol"], client_id=doc["clientId"],
            keepalive=doc["keepAliveInterval"], connect_timeout=doc["connectTimeout"],
            clean_session=doc["cleanSession"], auto_reconnect=doc["autoReconnect"], username=doc["username"],
            password=doc["password"], basepath=server.get("basepath", "/mqtt"),
            validate_server_cert=ssl.get("validateServerCert", True), ca_pem=ssl.get("caCertificate", ""),
            client_cert_pem=ssl.get("clientCertificate", ""), client_key_pem=ssl.get("clientKey", ""),
            will=messages["lastWillTestament"], connect_message=messages["connectMessage"],
            disconnect_message=messages["disconnectMessage"],
            subscriptions=[self.ha.command_topic] if self.ha is not None else [])
        link = self.link_factory(settings, self._command_from_broker, self.log, self.key_dir)
        try:
            link.start()
        except (OSError, ValueError) as e:     # e.g. an unreadable CA certificate
            self.log.error("MQTT client could not start: %s", e)
            link.last_error = str(e)
            link.connection = "disconnected"
        self.link = link
        if self.ha is None:
            self._offer_all(ha.removal())      # switched off: Home Assistant removes the entities
        else:
            self._offer_all(self.ha.discovery())
            for n in self.model.initialized():
                self._offer_all(self.ha.on_notification(n))
        self._offer_all(self._initial_axis())

    def _initial_axis(self) -> list[Outgoing]:
        if self.renderer is None:
            return []
        return [m for m in (self.renderer.render(n) for n in self.model.initialized()) if m is not None]

    def _offer_all(self, messages: list[Outgoing]) -> None:
        link = self.link
        if link is not None:
            for m in messages:
                link.offer(m)

    # -- events ---------------------------------------------------------------------------------
    async def _follow(self) -> None:
        while True:
            try:
                page = await self.sink.wait_after(self._after, 30.0, 200)
                for event in page["events"]:
                    self._after = event["seq"]
                    for n in self.model.apply(event):
                        self._dispatch(n, event)
            except asyncio.CancelledError:
                raise
            except Exception:               # a bug must not end the follower: log, go on
                self.log.exception("MQTT event follower")
                await asyncio.sleep(1.0)

    def _dispatch(self, n: Notification, event: dict) -> None:
        if self.link is None:
            return
        if self.renderer is not None:
            message = self.renderer.render(n)
            if message is not None:
                self.link.offer(message)
        if self.ha is not None:
            source = event.get("source") if isinstance(event.get("source"), dict) else None
            self._offer_all(self.ha.on_notification(n, source))

    # -- commands from the broker -----------------------------------------------------------------
    def _command_from_broker(self, topic: str, payload: bytes) -> None:
        """paho's network thread: hand over, nothing else."""
        self.loop.call_soon_threadsafe(self._command, topic, payload)

    def _command(self, topic: str, payload: bytes) -> None:
        ha = self.ha
        doc = self.client_doc() or {}
        if ha is None or topic != ha.command_topic:
            return
        word = payload.decode("utf-8", "replace").strip().upper()
        if word == LOCK:
            # the door locks itself when the pulse ends; answer with the relay's state
            self.commands["lock"] += 1
            self._offer_all([m for n in self.model.initialized() for m in ha.on_notification(n)
                             if m.topic.endswith("/door/state")])
            return
        if word not in (UNLOCK, "OPEN"):
            self.commands["ignored"] += 1
            return
        role = (doc.get("homeAssistant") or {}).get("lockCommandRole", "operator")
        if role == "none" or not role_allows(role, "operator"):
            self.commands["refused"] += 1
            self.log.warning("MQTT door command refused: lockCommandRole is %s", role)
            return
        now = self.clock()
        if now - self._last_unlock < MIN_UNLOCK_INTERVAL_S:
            self.commands["ignored"] += 1
            return
        self._last_unlock = now
        try:
            self.runtime.door_open(cause={"api": MQTT_USER})
            self.commands["unlock"] += 1
            self.log.info("door opened by an MQTT command on %s (role %s)", topic, role)
        except VapixFault as e:
            self.commands["failed"] += 1
            self.log.warning("MQTT door command failed: %s", e.reason)


def open_bridge(store, sink, runtime, loop: asyncio.AbstractEventLoop, log: logging.Logger,
                state_dir: Path) -> MqttBridge:
    from daemon.api.axis.identity import read_identity
    ident = read_identity()
    return MqttBridge(store, sink, runtime, loop, log, Path(state_dir) / "run",
                      HaIdentity(serial=ident.serial_number, version=ident.version, board=ident.board))
