"""`doorstation` command line: run the station, manage users, and talk to a running supervisor."""
from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from daemon.control.client import ControlClient, ControlError
from daemon.faults import VapixFault
from daemon.fileperms import private_umask, secure_state_dir

DEFAULT_STATE_DIR = "/var/lib/doorstation"
DEFAULT_HTTP = "127.0.0.1:8080"
START_WAIT_S = 120          # for the supervisor, the API and the RTSP process to come up


def state_dir_of(args) -> Path:
    return Path(args.state_dir or os.environ.get("DOORSTATION_STATE_DIR") or DEFAULT_STATE_DIR).resolve()


def control_client(state: Path, timeout: float = 10.0) -> ControlClient:
    from daemon.supervisor import control_socket_path
    return ControlClient(str(control_socket_path(state)), timeout=timeout)


def supervisor_running(state: Path) -> bool:
    try:
        control_client(state, timeout=2.0).request("ping")
        return True
    except VapixFault:
        return False


# --------------------------------------------------------------------------------------------- run
def parse_hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def bind_text(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


WORKER_CLASS = "daemon.api.lazy_worker.LazyStationWorker"


def gunicorn_command(binds: list[str], workers: int = 1,
                     app: str = "daemon.api.app:get_app()") -> list[str]:
    """One process, one greenlet per connection (gevent; see README "HTTP front end"): a long-poll
    costs a greenlet, not a thread; Digest nonce-count tracking lives in the worker's memory, and a
    door station never needs more than one CPU for its API. --keep-alive must be > 0: the worker's
    header deadline is applied in gunicorn's keep-alive loop (its value is Limits.header_timeout)."""
    command = [sys.executable, "-m", "gunicorn"]
    for bind in binds:
        command += ["--bind", bind]
    return command + ["--workers", str(workers), "--worker-class", WORKER_CLASS,
                      "--keep-alive", "5", "--graceful-timeout", "5", "--timeout", "60",
                      # No peer is a trusted proxy: X-Forwarded-* headers change nothing.
                      "--forwarded-allow-ips", "",
                      "--log-level", "warning", app]


def api_environment(args, state: Path) -> dict[str, str]:
    """What the API worker reads from its environment: the HTTPS port and the station's
    certificate, the HTTP policy (redirect, Basic), and the limits."""
    env = {"DOORSTATION_STATE_DIR": str(state),
           "DOORSTATION_BASIC_OVER_HTTP": "0" if args.no_basic_over_http else "1",
           # glibc: allocations of 1 MiB and more are mmap()ed and returned to the system when
           # freed. scrypt (HTTP Basic, 16 MiB per check) otherwise leaves the worker 16 MiB
           # larger for good, because glibc's adaptive threshold moves those blocks to the heap.
           "MALLOC_MMAP_THRESHOLD_": "1048576"}
    if args.https is not None:
        from daemon.api.worker import TLS_CERT_ENV, TLS_KEY_ENV, TLS_PORTS_ENV
        cert, key = api_certificate(state)
        env.update({TLS_PORTS_ENV: str(args.https[1]), TLS_CERT_ENV: cert, TLS_KEY_ENV: key})
        if args.http_redirect:
            env["DOORSTATION_HTTPS_REDIRECT_PORT"] = str(args.https[1])
    elif args.http_redirect:
        raise SystemExit("doorstation: --http-redirect needs --https")
    return env


def api_certificate(state: Path) -> tuple[str, str]:
    """The station's certificate and key (<state>/tls/station.{crt,key}; made self-signed by the
    supervisor at its first start, or here if the API starts first). Replace both files with your
    own and restart to serve that instead (README "HTTPS")."""
    import logging

    from daemon.tls import station_tls_files
    files = station_tls_files(state, logging.getLogger("doorstation"))
    if not files.get("tls_cert_file"):
        raise SystemExit(f"doorstation: no certificate in {state / 'tls'} and openssl could not make one")
    return files["tls_cert_file"], files["tls_key_file"]


def api_binds(args) -> list[str]:
    binds = [bind_text(*args.http)]
    if args.https is not None:
        if args.https[1] == args.http[1]:
            raise SystemExit("doorstation: --http and --https need different ports")
        binds.append(bind_text(*args.https))
    return binds


def wait_until(predicate, timeout: float, processes: list[subprocess.Popen]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            return False
        if predicate():
            return True
        time.sleep(0.05)
    return False


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def http_answers(host: str, port: int) -> bool:
    """Does an HTTP server answer on host:port (any status: a redirect to HTTPS counts)?"""
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.settimeout(0.5)
            s.sendall(b"HEAD /ui/app.css HTTP/1.0\r\nHost: localhost\r\n\r\n")
            return s.recv(5) == b"HTTP/"
    except OSError:
        return False


def stop_process(proc: subprocess.Popen, grace: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def cmd_run(args) -> int:
    from daemon import users
    from daemon.store import Store
    state = secure_state_dir(state_dir_of(args))
    host, port = args.http
    store = Store.open(state)
    try:
        # --first-use: no generated password; the web page asks for it (docs/web.md "First use")
        password = None if args.first_use else users.ensure_initial_admin(store)
        waiting_for_admin = not users.admin_exists(store)
    finally:
        store.close()
    if waiting_for_admin:
        print(f"No admin yet: open http://{bind_text(host, port)}/ from the local network and set the "
              "admin password there; until then the API answers 503", flush=True)
    if password:
        print(f"Created user 'admin' with password: {password}")
        print("  (shown only this once; change it with: doorstation user add admin --role admin "
              "--password-stdin --replace)", flush=True)

    env = {**os.environ, "DOORSTATION_STATE_DIR": str(state)}
    binds = api_binds(args)
    stop = {"signal": None}

    def on_signal(signum, _frame):
        stop["signal"] = signum
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    sup_cmd = [sys.executable, "-m", "daemon.supervisor", "--state-dir", str(state)]
    if args.sip_port is not None:
        sup_cmd += ["--sip-port", str(args.sip_port)]
    # On a loopback HTTP address (development, tests) SIP stays on loopback too.
    loopback = host in ("127.0.0.1", "::1", "localhost")
    sip_bind = args.sip_bind if args.sip_bind is not None else (host if loopback else "")
    if sip_bind:
        sup_cmd += ["--sip-bind", "127.0.0.1" if sip_bind == "localhost" else sip_bind]
    supervisor = subprocess.Popen(sup_cmd, env=env)
    api = None
    rtsp = RtspProcess(args.rtsp, state, env) if args.rtsp else None
    try:
        # Generous: a first start makes its TLS key, and slow boards (or the VM lane's emulated
        # CPU on a busy host) take a while; a supervisor that exits ends the wait at once.
        if not wait_until(lambda: supervisor_running(state), START_WAIT_S, [supervisor]):
            print("doorstation: the supervisor did not start (see its messages above)", file=sys.stderr)
            return 1
        api = subprocess.Popen(gunicorn_command(binds, args.workers),
                               env={**env, **api_environment(args, state)})
        listeners = [args.http] + ([args.https] if args.https else [])
        # gunicorn's master listens before its worker has loaded the app (about a second):
        # "running" is said once the worker answers on the HTTP listener.
        if not wait_until(lambda: all(port_open(h, p) for h, p in listeners) and http_answers(*args.http),
                          START_WAIT_S, [supervisor, api]):
            print(f"doorstation: the API did not start on {', '.join(binds)}", file=sys.stderr)
            return 1
        if rtsp is not None and not rtsp.start():
            return 1
        urls = [f"http://{bind_text(host, port)}/vapix/call"]
        if args.https:
            urls.append(f"https://{bind_text(*args.https)}/vapix/call")
        print(f"doorstation running: {' and '.join(urls)} (state {state}); Ctrl-C stops",
              flush=True)
        restarts: list[float] = []
        while stop["signal"] is None:
            if api.poll() is not None:
                print("doorstation: the API exited unexpectedly; stopping", file=sys.stderr)
                return 1
            if supervisor.poll() is not None:
                # As systemd's Restart=on-failure would: the API stays up and answers 503 meanwhile.
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < 60] + [now]
                if len(restarts) > 5:
                    print("doorstation: the supervisor keeps exiting; stopping", file=sys.stderr)
                    return 1
                print(f"doorstation: the supervisor exited ({supervisor.returncode}); restarting",
                      file=sys.stderr, flush=True)
                time.sleep(1)
                supervisor = subprocess.Popen(sup_cmd, env=env)
            if rtsp is not None and not rtsp.keep_running():
                return 1
            time.sleep(0.2)
        return 0
    finally:
        if rtsp is not None:
            rtsp.stop()
        if api is not None:
            stop_process(api, 10)
        stop_process(supervisor, 20)


class RtspProcess:
    """The RTSP event stream (`python -m daemon.rtsp`) next to the API: its own process, so a
    crash there never touches the supervisor; restarted if it exits, within a bound."""

    def __init__(self, listen: tuple[str, int], state: Path, env: dict):
        self.host, self.port = listen
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.cmd = [sys.executable, "-m", "daemon.rtsp", "--state-dir", str(state), "--listen", f"{shown}:{self.port}"]
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.restarts: list[float] = []

    def start(self) -> bool:
        self.proc = subprocess.Popen(self.cmd, env=self.env)
        if not wait_until(lambda: port_open(self.host, self.port), START_WAIT_S, [self.proc]):
            print(f"doorstation: the RTSP server did not start on {self.host}:{self.port}", file=sys.stderr)
            return False
        return True

    def keep_running(self) -> bool:
        if self.proc is None or self.proc.poll() is None:
            return True
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < 60] + [now]
        if len(self.restarts) > 5:
            print("doorstation: the RTSP server keeps exiting; stopping", file=sys.stderr)
            return False
        print(f"doorstation: the RTSP server exited ({self.proc.returncode}); restarting", file=sys.stderr, flush=True)
        time.sleep(1)
        self.proc = subprocess.Popen(self.cmd, env=self.env)
        return True

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 5)


def cmd_rtsp(args) -> int:
    """Run only the RTSP event stream in the foreground (the systemd unit uses this)."""
    from daemon.rtsp.__main__ import main as rtsp_main
    host, port = args.listen
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return rtsp_main(["--state-dir", str(state_dir_of(args)), "--listen", listen])


def cmd_supervisor(args) -> int:
    from daemon.supervisor import main as supervisor_main
    argv = ["--state-dir", str(secure_state_dir(state_dir_of(args)))]
    if args.sip_port is not None:
        argv += ["--sip-port", str(args.sip_port)]
    if args.sip_bind:
        argv += ["--sip-bind", args.sip_bind]
    return supervisor_main(argv)


def cmd_api(args) -> int:
    """Run only the HTTP API in the foreground (the systemd unit uses this)."""
    state = state_dir_of(args)
    binds = api_binds(args)
    os.environ.update(api_environment(args, state))
    os.execv(sys.executable, gunicorn_command(binds, args.workers))


# --------------------------------------------------------------------------------------------- users
def read_password(args) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise SystemExit("doorstation: passwords differ")
    return first


def with_writer(state: Path, control_command: str, control_args: dict, direct):
    """Writes go through the supervisor when it runs (it is the single writer); otherwise this
    process is the only one with the store open and writes directly."""
    if supervisor_running(state):
        return control_client(state).request(control_command, control_args)
    from daemon.store import Store
    store = Store.open(secure_state_dir(state))
    try:
        return direct(store)
    finally:
        store.close()


def cmd_user(args) -> int:
    from daemon import users
    state = state_dir_of(args)
    try:
        if args.user_command == "add":
            password = read_password(args)
            with_writer(state, "user.add", {"name": args.name, "role": args.role, "password": password,
                                            "replace": args.replace},
                        lambda s: users.add_user(s, args.name, args.role, password, replace=args.replace))
            print(f"user {args.name} ({args.role}) saved")
        elif args.user_command == "remove":
            with_writer(state, "user.remove", {"name": args.name}, lambda s: users.remove_user(s, args.name))
            print(f"user {args.name} removed")
        else:
            rows = with_writer(state, "user.list", {}, users.list_users)
            for row in rows:
                print(f"{row['name']}\t{row['role']}")
        return 0
    except (users.UserError, ControlError) as e:
        print(f"doorstation: {e}", file=sys.stderr)
        return 1


# --------------------------------------------------------------------------------------------- station
def cmd_station(command: str, args_for_control: dict):
    def run(args) -> int:
        state = state_dir_of(args)
        try:
            data = control_client(state).request(command, args_for_control)
        except VapixFault as fault:
            print(f"doorstation: {fault.reason}", file=sys.stderr)
            return 1
        except ControlError as e:
            print(f"doorstation: {e}", file=sys.stderr)
            return 1
        print(json.dumps(data, indent=2))
        return 0
    return run


def cmd_door_binding(verb: str):
    def run(args) -> int:
        state = state_dir_of(args)
        try:
            client = control_client(state)
            ids = list(client.request("door.bindings", {})["DTMFEventIds"])
            if verb == "bind" and args.event_id not in ids:
                ids.append(args.event_id)
            elif verb == "unbind":
                ids = [i for i in ids if i != args.event_id]
            print(json.dumps(client.request("door.bindings.set", {"DTMFEventIds": ids}), indent=2))
            return 0
        except (VapixFault, ControlError) as e:
            print(f"doorstation: {getattr(e, 'reason', e)}", file=sys.stderr)
            return 1
    return run


def add_api_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--https", type=parse_hostport, metavar="HOST:PORT",
                   help="also serve the API over HTTPS with <state>/tls/station.crt")
    p.add_argument("--http-redirect", action="store_true",
                   help="HTTP only redirects (308) to the --https port")
    p.add_argument("--no-basic-over-http", action="store_true",
                   help="accept HTTP Basic only over HTTPS (Digest works on both)")
    p.add_argument("--workers", type=int, default=1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="doorstation", description=__doc__)
    parser.add_argument("--state-dir", help=f"state directory (default $DOORSTATION_STATE_DIR or {DEFAULT_STATE_DIR})")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_state(p):
        p.add_argument("--state-dir", default=argparse.SUPPRESS, help="state directory")
        return p

    run = with_state(sub.add_parser("run", help="run supervisor + API in the foreground"))
    run.add_argument("--http", type=parse_hostport, default=parse_hostport(DEFAULT_HTTP))
    run.add_argument("--sip-port", type=int, help="SIP port (written into the stored SIPConfiguration)")
    run.add_argument("--sip-bind", help="SIP bind address (default: loopback when --http is loopback, else all)")
    add_api_options(run)
    run.add_argument("--first-use", action="store_true",
                     help="do not generate an admin password: the web page at / asks for it "
                          "(local network only) while no admin exists")
    run.add_argument("--rtsp", type=parse_hostport, metavar="HOST:PORT",
                     help="also serve the RTSP event stream there (554 on a real station; docs/events.md)")
    run.set_defaults(func=cmd_run)

    sup = with_state(sub.add_parser("supervisor", help="run only the supervisor (systemd unit)"))
    sup.add_argument("--sip-port", type=int)
    sup.add_argument("--sip-bind")
    sup.set_defaults(func=cmd_supervisor)

    api = with_state(sub.add_parser("api", help="run only the HTTP API (systemd unit)"))
    api.add_argument("--http", type=parse_hostport, default=parse_hostport(DEFAULT_HTTP))
    add_api_options(api)
    api.set_defaults(func=cmd_api)

    rtsp = with_state(sub.add_parser("rtsp", help="run only the RTSP event stream (systemd unit)"))
    rtsp.add_argument("--listen", type=parse_hostport, default=parse_hostport("0.0.0.0:554"))
    rtsp.set_defaults(func=cmd_rtsp)

    user = with_state(sub.add_parser("user", help="manage API users"))
    usub = user.add_subparsers(dest="user_command", required=True)
    add = with_state(usub.add_parser("add"))
    add.add_argument("name")
    add.add_argument("--role", choices=["admin", "operator", "viewer"], required=True)
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument("--replace", action="store_true", help="change an existing user's password/role")
    rm = with_state(usub.add_parser("remove"))
    rm.add_argument("name")
    with_state(usub.add_parser("list"))
    user.set_defaults(func=cmd_user)

    press = with_state(sub.add_parser("press", help="press the call button (simulated)"))
    press.set_defaults(func=cmd_station("press", {}))
    status = with_state(sub.add_parser("status", help="SIP registration, call state, relay, LED"))
    status.set_defaults(func=cmd_station("status", {}))
    door = with_state(sub.add_parser("door", help="door lock"))
    dsub = door.add_subparsers(dest="door_command", required=True)
    dopen = with_state(dsub.add_parser("open", help="pulse the door relay"))
    dopen.set_defaults(func=cmd_station("door.open", {"user": os.environ.get("SUDO_USER") or getpass.getuser()}))
    dlist = with_state(dsub.add_parser("bindings", help="DTMF events that open the door"))
    dlist.set_defaults(func=cmd_station("door.bindings", {}))
    for verb in ("bind", "unbind"):
        p = with_state(dsub.add_parser(verb, help=f"{verb} a DTMF event (DTMFEventId) to the door relay"))
        p.add_argument("event_id")
        p.set_defaults(func=cmd_door_binding(verb))
    return parser


def main(argv: list[str] | None = None) -> int:
    # Before anything can create a file: the state (database, keys, logs) is for our user only,
    # also in the supervisor and gunicorn, which inherit the umask.
    private_umask()
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
