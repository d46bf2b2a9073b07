"""Starts a real `doorstation run` (supervisor + gunicorn) on loopback ports with a fresh state
directory, for the integration tests and the benchmarks."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from requests.auth import HTTPDigestAuth

REPO = Path(__file__).resolve().parent.parent
ADMIN = ("admin", "admin-secret-1")
OPERATOR = ("oper", "oper-secret-1")
VIEWER = ("viewer", "viewer-secret-1")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_sip_port() -> int:
    """A port free for both UDP and TCP (pjsua2 binds both)."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free SIP port")


def doorstation(*args: str, state_dir: Path, input: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args, "--state-dir", str(state_dir)],
                          input=input, capture_output=True, text=True, timeout=timeout, cwd=REPO)


class Station:
    """One running `doorstation run`. Use as a context manager."""

    def __init__(self, state_dir: Path, http_port: int | None = None, sip_port: int | None = None,
                 extra_env: dict | None = None, netns: str | None = None, http_host: str = "127.0.0.1",
                 extra_args: list[str] | None = None, with_users: bool = True):
        """`sip_port` given: passed as --sip-port (stored as SIPPort). Not given: a free port is
        picked for tests to configure through the API, and the stored default (5060) is kept.
        `netns`: run inside that network namespace (`ip netns exec`), serving HTTP on `http_host`,
        an address of the namespace the tests reach; SIP then listens on all its interfaces.
        `extra_args`: more `doorstation run` options (e.g. --https HOST:PORT).
        `with_users=False`: a fresh state gets no users (with --first-use: the web page's first use)."""
        self.with_users = with_users
        self.state_dir = Path(state_dir)
        self.http_port = http_port or free_port()
        self.pass_sip_port = sip_port is not None
        self.sip_port = sip_port or free_sip_port()
        self.http_host = http_host
        self.url = f"http://{http_host}:{self.http_port}"
        self.netns = netns
        self.extra_env = extra_env or {}
        self.extra_args = list(extra_args or [])   # more `doorstation run` options, e.g. --rtsp
        self.proc: subprocess.Popen | None = None
        self.output: list[str] = []

    # -- lifecycle --------------------------------------------------------------------------
    def add_users(self) -> None:
        for (name, password), role in ((ADMIN, "admin"), (OPERATOR, "operator"), (VIEWER, "viewer")):
            done = doorstation("user", "add", name, "--role", role, "--password-stdin", "--replace",
                               state_dir=self.state_dir, input=password + "\n")
            assert done.returncode == 0, done.stderr

    def start(self, timeout: float = 60) -> "Station":
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.with_users and not (self.state_dir / "doorstation.sqlite3").exists():
            self.add_users()
        env = {**os.environ, **self.extra_env, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [*(["ip", "netns", "exec", self.netns] if self.netns else []),
             sys.executable, "-m", "daemon.cli", "run", "--state-dir", str(self.state_dir),
             "--http", f"{self.http_host}:{self.http_port}",
             *(["--sip-port", str(self.sip_port)] if self.pass_sip_port else []), *self.extra_args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env,
            start_new_session=True)
        ready = threading.Event()

        def pump() -> None:
            for line in self.proc.stdout:
                self.output.append(line)
                if "doorstation running" in line:
                    ready.set()
        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not ready.is_set():
            if self.proc.poll() is not None:
                break
            ready.wait(0.1)
        if not ready.is_set():
            self.kill()
            raise RuntimeError("doorstation did not start:\n" + "".join(self.output[-60:]))
        return self

    def stop(self, timeout: float = 30) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        """kill -9 the whole process group: `doorstation run`, the supervisor and gunicorn."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)

    def __enter__(self) -> "Station":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- requests ---------------------------------------------------------------------------
    def session(self, user: tuple[str, str] = ADMIN) -> requests.Session:
        s = requests.Session()
        s.auth = HTTPDigestAuth(*user)
        return s

    def call(self, command: str, params: dict | None = None, user: tuple[str, str] = ADMIN,
             session: requests.Session | None = None) -> requests.Response:
        s = session or self.session(user)
        return s.post(f"{self.url}/vapix/call", json={f"axcall:{command}": params or {}}, timeout=30)

    def ok(self, command: str, params: dict | None = None, **kw) -> dict:
        r = self.call(command, params, **kw)
        assert r.status_code == 200, f"{command}: HTTP {r.status_code} {r.text}"
        return r.json()

    def simple(self, query: str, user: tuple[str, str] = ADMIN, method: str = "GET") -> requests.Response:
        s = self.session(user)
        if method == "GET":
            return s.get(f"{self.url}/vapix/call?{query}", timeout=30)
        return s.post(f"{self.url}/vapix/call", data=query,
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)


def axis_hardware_toml(pulse_ms: int = 2000, door_contact: bool = True) -> str:
    """Simulated GPIO with the ports the Axis tests and benches use: call button (port 0), door
    relay (1), the extra input door_contact (2) and the extra output light (last)."""
    contact = '[gpio.inputs.door_contact]\nline = "DOOR_CONTACT"\n' if door_contact else ""
    return ('[gpio]\nsimulated = true\n[gpio.call_button]\nline = "CALL_BUTTON"\n[gpio.call_led]\n'
            f'line = "CALL_LED"\n[gpio.door_relay]\nline = "DOOR_LOCK"\npulse_ms = {pulse_ms}\n{contact}'
            '[gpio.outputs.light]\nline = "LIGHT"\n')
