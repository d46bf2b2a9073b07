"""Real SIP peers on loopback, shared by tests/sip and the full-stack tests/benchmarks: baresip
(ctrl_tcp), kamailio (registrar + proxy) and a second pjsua2 agent (tests/sip_agent.py), plus the
pytest fixtures that start them (`baresip_factory`, `baresip`, `kamailio_factory`, `agent_factory`;
import them into a conftest or test module to use them).

Every peer listens on random free loopback ports, is bounded in time (its own quit timer plus a kill
at teardown) and writes its log into the test's tmp_path (shown on failure).
"""
from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

PEERS = Path(__file__).resolve().parent / "peers"
AGENT = Path(__file__).resolve().parent / "sip_agent.py"
PEER_MAX_SECONDS = 900   # safety net only: fixtures stop every peer at teardown

# ---- ports ------------------------------------------------------------------------------------------
def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1, with the next one free for TCP (baresip's
    SIP/TLS listener takes the SIP port + 1)."""
    for _ in range(100):
        port = random.randint(20000, 59000)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t, \
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t1:
                u.bind(("127.0.0.1", port))
                t.bind(("127.0.0.1", port))
                t1.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port found")


def rtp_base() -> int:
    """Start of an RTP port range (pjsua moves on to the next free pair by itself)."""
    return random.randrange(30000, 60000, 2)


def wait_until(pred: Callable[[], Any], timeout: float, what: str, step: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(step)



def terminate(proc: subprocess.Popen | None, grace: float = 5.0) -> None:
    """SIGTERM a peer, SIGKILL it if it has not gone after `grace` seconds."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ---- netstring JSON client for baresip's ctrl_tcp ---------------------------------------------------
class Baresip:
    def __init__(self, workdir: Path, account_params: str = "answermode=auto",
                 user: str = "bob", extra_modules: tuple[str, ...] = (),
                 accounts_line: Callable[["Baresip"], str] | None = None, host: str = "127.0.0.1"):
        """`host`: the address baresip listens on and uses for media (`::1` for an IPv6-only peer)."""
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sip_port = free_port()
        self.ctrl_port = free_port()
        self.user = user
        self.host = f"[{host}]" if ":" in host else host
        self.aor = f"sip:{user}@{self.host}:{self.sip_port}"
        config = (PEERS / "baresip.config.tmpl").read_text()
        config = (config.replace("@SIP_LISTEN@", f"{self.host}:{self.sip_port}")
                  .replace("net_interface\t\t127.0.0.1", f"net_interface\t\t{host}")
                  .replace("@CTRL_LISTEN@", f"127.0.0.1:{self.ctrl_port}")
                  .replace("@EXTRA_MODULES@", "\n".join(f"module\t\t\t{m}" for m in extra_modules)))
        (self.dir / "config").write_text(config)
        self.set_accounts(accounts_line(self) if accounts_line else f"<{self.aor}>;regint=0;{account_params}")
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.responses: dict[str, dict] = {}
        self.events: list[dict] = []
        self._cond = threading.Condition()
        self._token = 0

    def set_accounts(self, line: str) -> None:
        (self.dir / "accounts").write_text(line + "\n")

    def start(self) -> "Baresip":
        log = open(self.dir / "baresip.log", "wb")
        self.proc = subprocess.Popen(["baresip", "-f", str(self.dir), "-t", str(PEER_MAX_SECONDS)],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.sock = wait_until(self._connect, 10.0, "baresip ctrl_tcp")
        threading.Thread(target=self._reader, daemon=True).start()
        return self

    def _connect(self) -> socket.socket | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"baresip exited: {(self.dir / 'baresip.log').read_text()[-2000:]}")
        try:
            return socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1.0)
        except OSError:
            return None

    def _reader(self) -> None:
        buf = b""
        self.sock.settimeout(None)
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b":" in buf:
                head, rest = buf.split(b":", 1)
                n = int(head)
                if len(rest) < n + 1:
                    break
                msg = json.loads(rest[:n])
                buf = rest[n + 1:]
                with self._cond:
                    if msg.get("response"):
                        self.responses[str(msg.get("token"))] = msg
                    else:
                        self.events.append(msg)
                    self._cond.notify_all()

    def command(self, command: str, params: str = "", timeout: float = 5.0) -> dict:
        self._token += 1
        token = f"t{self._token}"
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        self.sock.sendall(str(len(body)).encode() + b":" + body + b",")
        deadline = time.monotonic() + timeout
        with self._cond:
            while token not in self.responses:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"baresip did not answer {command}")
                self._cond.wait(left)
            return self.responses.pop(token)

    def wait_event(self, type_: str, timeout: float = 5.0, since: int = 0) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events[since:]:
                    if ev.get("type") == type_:
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"baresip event {type_} not seen; got {self.events!r}")
                self._cond.wait(left)

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def stop(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        terminate(self.proc)


@pytest.fixture
def baresip_factory(tmp_path):
    started: list[Baresip] = []

    def make(name: str = "bob", **kw) -> Baresip:
        peer = Baresip(tmp_path / f"baresip-{name}-{len(started)}", user=name, **kw)
        started.append(peer)
        return peer.start()

    yield make
    for p in started:
        p.stop()


@pytest.fixture
def baresip(baresip_factory) -> Baresip:
    return baresip_factory()


# ---- kamailio -----------------------------------------------------------------------------------------
class Kamailio:
    def __init__(self, workdir: Path, users: dict[str, str], port: int | None = None, host: str = "127.0.0.1"):
        """`host`: the loopback address it listens on (`::1` for a registrar reached over IPv6)."""
        self.host = host
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.users = users
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Kamailio":
        conds = []
        for i, (user, pw) in enumerate(self.users.items()):
            kw = "if" if i == 0 else "else if"
            conds.append(f'{kw} ($fU == "{user}") {{ $var(pw) = "{pw}"; }}')
        listen = f"[{self.host}]" if ":" in self.host else self.host
        cfg = ((PEERS / "kamailio.cfg.tmpl").read_text().replace("@PORT@", str(self.port))
               .replace("127.0.0.1:", f"{listen}:").replace("@USERS@", "\n        ".join(conds)))
        (self.dir / "kamailio.cfg").write_text(cfg)
        rundir = self.dir / "run"
        rundir.mkdir(exist_ok=True)
        log = open(self.dir / "kamailio.log", "ab")
        self.proc = subprocess.Popen(["timeout", str(PEER_MAX_SECONDS), "kamailio", "-f",
                                      str(self.dir / "kamailio.cfg"), "-DD", "-E", "-Y", str(rundir)],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        wait_until(self._listening, 10.0, "kamailio to listen")
        return self

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"kamailio exited: {(self.dir / 'kamailio.log').read_text()[-3000:]}")
        try:
            socket.create_connection((self.host, self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        terminate(self.proc)


@pytest.fixture
def kamailio_factory(tmp_path):
    started: list[Kamailio] = []

    def make(users: dict[str, str] | None = None, port: int | None = None, host: str = "127.0.0.1") -> Kamailio:
        k = Kamailio(tmp_path / f"kamailio-{len(started)}", users or {"door": "door-secret", "bob": "bob-secret"},
                     port, host)
        started.append(k)
        return k.start()

    yield make
    for k in started:
        k.stop()


# ---- the second pjsua2 agent ----------------------------------------------------------------------------
class Agent:
    def __init__(self, workdir: Path, *args: str, port: int | None = None):
        self.port = port or free_port()
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.events: list[dict] = []
        self._cond = threading.Condition()
        cmd = [sys.executable, str(AGENT), "--port", str(self.port), "--rtp-port", str(rtp_base()),
               "--max-seconds", str(PEER_MAX_SECONDS), *args]
        self._stderr = open(self.dir / "agent.stderr", "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        threading.Thread(target=self._reader, daemon=True).start()
        self.wait_event("ready", timeout=10.0)

    def _reader(self) -> None:
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            with self._cond:
                self.events.append(msg)
                self._cond.notify_all()

    def uri(self, transport: str = "udp", host: str = "127.0.0.1") -> str:
        base = f"sip:agent@{host}:{self.port}"
        return base if transport == "udp" else f"{base};transport={transport}"

    def send(self, **cmd: Any) -> None:
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def wait_event(self, name: str, timeout: float = 5.0, pred: Callable[[dict], bool] = lambda e: True,
                   since: int = 0) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events[since:]:
                    if ev.get("event") == name and pred(ev):
                        return ev
                if self.proc.poll() is not None and not any(e.get("event") == name for e in self.events):
                    err = (self.dir / "agent.stderr").read_text()[-2000:]
                    raise AssertionError(f"agent exited before {name}: {err}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"agent event {name} not seen; got {self.events!r}")
                self._cond.wait(min(left, 0.5))

    def of(self, name: str) -> list[dict]:
        with self._cond:
            return [e for e in self.events if e.get("event") == name]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send(cmd="quit")
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)
        self._stderr.close()


@pytest.fixture
def agent_factory(tmp_path):
    started: list[Agent] = []

    def make(*args: str, port: int | None = None) -> Agent:
        a = Agent(tmp_path / f"agent-{len(started)}", *args, port=port)
        started.append(a)
        return a

    yield make
    for a in started:
        a.stop()
