"""A real Mosquitto broker for the MQTT tests: started on a free loopback port with a generated
configuration (optionally TLS with client certificates made here with openssl, and a password file
made with mosquitto_passwd), plus a paho-mqtt observer that records every message it sees."""
from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.harness import free_port


def _run(*cmd: str, cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{cmd[0]}: {done.stderr[-2000:]}"


@dataclass
class Certificates:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    def make(self) -> "Certificates":
        d = self.dir
        d.mkdir(parents=True, exist_ok=True)
        _run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=doorstation test CA", cwd=d)
        for name, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
                          ("client", "extendedKeyUsage=clientAuth")):
            _run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
            (d / f"{name}.ext").write_text(ext + "\n")
            _run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
        return self

    def text(self, name: str) -> str:
        return (self.dir / name).read_text()


class Mosquitto:
    """One broker process. `users` {name: password} switches anonymous access off; `certs` adds
    TLS (client certificate required). Restartable on the same port."""

    def __init__(self, workdir: Path, users: dict[str, str] | None = None, certs: Certificates | None = None,
                 websockets: bool = False):
        assert shutil.which("mosquitto"), "mosquitto is not installed (scripts/test installs it)"
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.ws_port = free_port() if websockets else None
        lines = [f"listener {self.port} 127.0.0.1", "user root", "persistence false",
                 "log_dest file " + str(self.dir / "mosquitto.log"), "log_type all",
                 "max_keepalive 3600"]
        if users:
            pw = self.dir / "passwd"
            pw.write_text("")
            for name, password in users.items():
                _run("mosquitto_passwd", "-b", str(pw), name, password, cwd=self.dir)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines += ["allow_anonymous true"]
        if certs:
            lines += [f"cafile {certs.ca}", f"certfile {certs.dir / 'server.crt'}",
                      f"keyfile {certs.dir / 'server.key'}", "require_certificate true"]
        if self.ws_port:      # a second listener speaking MQTT over websockets (same options)
            lines += [f"listener {self.ws_port} 127.0.0.1", "protocol websockets"]
        (self.dir / "mosquitto.conf").write_text("\n".join(lines) + "\n")

    def start(self) -> "Mosquitto":
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.dir / "mosquitto.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("mosquitto did not listen")

    def kill(self) -> None:
        """SIGKILL: no goodbye to the clients, retained messages gone (persistence is off)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Seen:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    at: float

    def json(self):
        return json.loads(self.payload)


class Observer:
    """A paho-mqtt client subscribed to `topics`, recording every message (bounded waits)."""

    def __init__(self, port: int, topics: tuple[str, ...] = ("#",), **tls):
        self.messages: list[Seen] = []
        self._cond = threading.Condition()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"observer-{time.monotonic_ns()}")
        if tls.get("username"):
            self.client.username_pw_set(tls["username"], tls.get("password"))
        if tls.get("ca"):
            self.client.tls_set(ca_certs=str(tls["ca"]), certfile=str(tls["cert"]), keyfile=str(tls["key"]))
        self.topics = topics
        self.connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect_async("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(10), "observer could not connect"

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        for t in self.topics:
            client.subscribe(t, qos=1)
        self.connected.set()

    def _on_message(self, client, userdata, msg) -> None:
        with self._cond:
            self.messages.append(Seen(msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos, time.time()))
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.messages)

    def wait_for(self, pred, timeout: float = 10.0, since: int = 0, what: str = "a message") -> Seen:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages[since:]:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    topics = sorted({m.topic for m in self.messages})[:60]
                    raise AssertionError(f"{what} not seen in {timeout} s; topics seen: {topics}")
                self._cond.wait(left)

    def on(self, topic: str, since: int = 0) -> list[Seen]:
        with self._cond:
            return [m for m in self.messages[since:] if m.topic == topic]

    def publish(self, topic: str, payload: str, qos: int = 1) -> None:
        self.client.publish(topic, payload, qos=qos).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
