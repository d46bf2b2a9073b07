"""The SIP engine: one thread owns the pjsua2 Endpoint and every Account and Call object.

Other threads never touch pjsua2. They call the public methods below, which either read a
lock-protected snapshot (statuses) or enqueue a function onto the engine thread and get a
concurrent Future for its result: the supervisor's loop awaits it (asyncio.wrap_future), tests and
tools may wait on it with a timeout (EngineTimeout). The engine loop: `libHandleEvents(timeout)`
until SIP traffic, a pjsip timer or a wake-up (daemon/sip/waker.py) — up to a second when idle, a
tenth of a second while calls, DTMF matchers or retries need our own timers — then drain the
message queues, run timers (CallingTimeout, MaxCallDuration, DTMF inter-digit timeouts), heartbeat.

Nothing here waits on a slow pjsip operation: a just-closed port that is not free yet is retried
from the timers (REBIND_RETRY_S) while other requests are served; an account with calls is deleted
once they are gone (or after ACCOUNT_DELETE_WAIT_S).

See docs/sip.md for the integration surface and pjsua2-specific rules (object lifetimes, shutdown).
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import gc
import itertools
import logging
import queue
import sys
import threading
import time
from typing import Any, Callable

import pjsua2 as pj

from daemon.dtmf_matcher import DtmfMatcher
from daemon.sip import callbacks as cb
from daemon.sip import families
from daemon.sip.accounts import (
    AccountSlot,
    account_status,
    bound_transport,
    build_account_config,
    registrar_unreachable,
)
from daemon.sip.admission import INCOMING_ACK_WAIT_S, CallRate, oldest_unconfirmed, suspect_host
from daemon.sip.calls import ACTIVE, CALLING, TERMINATED, TERMINATING, CallHistory, CallRecord, end_reason, new_call_id
from daemon.sip.codecs import CodecPriorities
from daemon.sip.config import AccountConfig, EngineConfig
from daemon.sip.stun import StunCheck
from daemon.sip.transports import Missing, SipTransports
from daemon.sip.types import (
    AccountStatusChanged,
    CallFinished,
    CallNotFound,
    CallTransition,
    DtmfBlocked,
    DtmfMatched,
    EngineError,
    EngineEvent,
    EngineNotRunning,
    EngineSuperseded,
    EngineTimeout,
)
from daemon.sip.uris import access_allows, parse_uri, with_transport
from daemon.sip.waker import Waker

DEFAULT_TIMEOUT = 5.0
MAX_MSGS_PER_TURN = 200
TRANSPORT_REBIND_WAIT = 8.0
REBIND_RETRY_S = 0.1
ACCOUNT_DELETE_WAIT_S = 1.0
IDLE_POLL_MS = 1000        # nothing of ours is due: sleep until SIP traffic, a pjsip timer or a wake-up
BUSY_POLL_MS = 100         # calls, DTMF matchers or retries: our own timers need a look this often


@dataclasses.dataclass
class _Rebind:
    """An apply waiting for SIP ports that a just-closed transport still holds."""
    config: EngineConfig
    future: concurrent.futures.Future
    missing: Missing                 # transports not open yet
    deadline: float
    next_try: float
    last_error: str = ""


@dataclasses.dataclass
class _Doomed:
    """A removed account whose pjsua object is deleted once its calls are gone."""
    slot: AccountSlot
    call_ids: list
    deadline: float


class SipEngine:
    def __init__(self, on_event: Callable[[EngineEvent], None], log: logging.Logger, *,
                 media_hook: Callable[[str, Any], None] | None = None,
                 media_end_hook: Callable[[str], None] | None = None,
                 on_endpoint_ready: Callable[[Any], None] | None = None,
                 poll_ms: int = 10, pj_log_level: int = 3, history_size: int = 100,
                 dtmf_inter_digit_timeout: float = 5.0, dtmf_max_wrong: int = 5,
                 clock: Callable[[], float] = time.monotonic,
                 view_changed: Callable[[], None] = lambda: None):
        """view_changed: called (any thread, inside the view lock) right after the view that
        call_status(es) and account_status read changed: the supervisor's live stamp
        (daemon/control/livestamp.py) bumps there."""
        self._on_event = on_event
        self._view_changed = view_changed
        self._log = log
        self._media_hook = media_hook
        self._media_end_hook = media_end_hook
        self._on_endpoint_ready = on_endpoint_ready
        self._poll_ms = poll_ms
        self._pj_log_level = pj_log_level
        self._dtmf_timeout = dtmf_inter_digit_timeout
        self._dtmf_max_wrong = dtmf_max_wrong
        self._clock = clock
        self._commands: queue.Queue = queue.Queue()
        self._inbox: queue.Queue = queue.Queue()       # callback messages from non-engine threads
        self._thread: threading.Thread | None = None
        self._owner_ident: int | None = None
        self._stopping = threading.Event()
        self._heartbeat = time.monotonic()
        # snapshot for readers (any thread)
        self._view_lock = threading.Lock()
        self._live_view: dict[str, dict] = {}
        self._history = CallHistory(history_size)
        self._account_view: dict[str, dict] = {}
        self._config_view = EngineConfig()
        # engine-thread state
        self._ep: pj.Endpoint | None = None
        self._log_writer: cb.EngineLogWriter | None = None
        self._config = EngineConfig()
        self._accounts: dict[str, AccountSlot] = {}
        # A call's one home while it lasts is its CallRecord (state, deadlines, DTMF matcher); its
        # pjsua2 Call object lives on until DISCONNECTED, which may come after the record ended (an
        # unanswered call that cannot be CANCELled yet); readers on other threads see _live_view.
        self._calls: dict[str, CallRecord] = {}          # live records by CallId
        self._pjcalls: dict[str, cb.EngineCall] = {}     # pjsua2 Call objects, until DISCONNECTED
        self._failovers: set[str] = set()
        self._ids = itertools.count(1)                   # CallId counter; next() is atomic, any thread
        self._waker = Waker()
        self._transports = SipTransports(lambda: self._lib, self._waker, log)
        self._stun = StunCheck(lambda: self._lib, log, clock)
        self._codecs = CodecPriorities(lambda: self._lib)
        self._rebind: _Rebind | None = None
        self._deferred: list[tuple] = []                 # new calls waiting for a pending rebind
        self._doomed: list[_Doomed] = []
        self._call_rate = CallRate()

    # ==== lifecycle (any thread) =================================================================
    def start(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            raise EngineError("engine already started")
        if self._stopping.is_set():
            raise EngineError("a stopped engine cannot be restarted: create a new SipEngine")
        ready: concurrent.futures.Future = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="sip-engine", daemon=True)
        self._thread.start()
        try:
            ready.result(timeout)
        except concurrent.futures.TimeoutError:
            raise EngineTimeout("SIP engine did not start in time") from None
        except Exception as e:
            self._thread.join(timeout)
            self._thread = None
            raise EngineError(f"SIP engine failed to start: {e}") from e

    def stop(self, timeout: float = 10.0) -> None:
        """Hang up every call, wait (bounded) until they are DISCONNECTED, destroy the library."""
        if self._thread is None:
            return
        self._stopping.set()
        self._waker.wake()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._log.error("SIP engine thread did not stop within %.1f s", timeout)
        self._thread = None

    def heartbeat_age(self) -> float:
        """Seconds since the engine loop last turned (the supervisor's watchdog reads this)."""
        return time.monotonic() - self._heartbeat

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping.is_set()

    # ==== requests (any thread) ==================================================================
    def apply_async(self, config: EngineConfig) -> concurrent.futures.Future:
        """Apply a configuration; the Future completes when it is in force (or failed: EngineError;
        replaced by a newer apply first: EngineSuperseded). Ports still held by a just-closed
        transport are retried for up to TRANSPORT_REBIND_WAIT s without holding other requests."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._post(self._apply_request, (config, fut), fut, owns_future=True)
        return fut

    def apply(self, config: EngineConfig, timeout: float = 15.0) -> None:
        self._wait(self.apply_async(config), timeout)

    def supported_codecs_async(self) -> concurrent.futures.Future:
        return self.submit(self._codecs.supported)

    def supported_codecs(self, timeout: float = DEFAULT_TIMEOUT) -> list[dict]:
        return self._wait(self.supported_codecs_async(), timeout)

    def start_call(self, account_id: str | None, to: str) -> tuple[str, concurrent.futures.Future]:
        """The CallId now (any thread), and a Future that completes once the INVITE is on its way
        (or fails with EngineError, the call then never existed)."""
        call_id = new_call_id("Outgoing", next(self._ids))
        return call_id, self.submit(self._make_call, call_id, account_id, to)

    def make_call(self, account_id: str | None, to: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        call_id, fut = self.start_call(account_id, to)
        self._wait(fut, timeout)
        return call_id

    def hangup_async(self, call_id: str) -> concurrent.futures.Future:
        return self.submit(self._hangup, call_id)

    def hangup(self, call_id: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._wait(self.hangup_async(call_id), timeout)

    def send_dtmf(self, call_id: str, digits: str, method: str = "RFC2833",
                  timeout: float = DEFAULT_TIMEOUT) -> None:
        """Send DTMF on a call (used by tests and for feedback tones)."""
        self._submit(self._send_dtmf, call_id, digits, method, timeout=timeout)

    def call_status(self, call_id: str) -> dict | None:
        with self._view_lock:
            st = self._live_view.get(call_id)
            return dict(st) if st else self._history.get(call_id)

    def call_statuses(self) -> list[dict]:
        """Finished calls (oldest first) then calls in progress."""
        with self._view_lock:
            return self._history.all() + [dict(s) for s in self._live_view.values()]

    def live_call_ids(self) -> list[str]:
        with self._view_lock:
            return list(self._live_view)

    def load_history(self, statuses: list[dict]) -> None:
        """Seed the history with calls persisted by a previous run (oldest first)."""
        with self._view_lock:
            self._history.load(statuses)
            self._view_changed()

    def account_status(self, account_id: str) -> dict | None:
        """SIPAccountStatus per the spec; None for an unknown account."""
        with self._view_lock:
            cfg = self._config_view
            st = self._account_view.get(account_id)
            acc = cfg.account(account_id)
        if acc is None:
            return None
        if not cfg.sip_enabled:
            return {"SIPAccountId": account_id, "SIPURI": st["SIPURI"] if st else "", "IsDefault": acc.is_default,
                    "RegURI": "", "Status": 0, "StatusText": "SIP disabled"}
        return dict(st) if st else {"SIPAccountId": account_id, "SIPURI": "", "IsDefault": acc.is_default,
                                    "RegURI": "", "Status": 0, "StatusText": "Does not register"}

    def submit(self, fn: Callable, *args: Any) -> concurrent.futures.Future:
        """Run fn(*args) on the engine thread; never blocks. Raises EngineNotRunning."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._post(fn, args, fut)
        return fut

    def _post(self, fn: Callable, args: tuple, fut: concurrent.futures.Future, owns_future: bool = False) -> None:
        if threading.get_ident() == self._owner_ident:
            self._execute(fn, args, fut, owns_future)   # from an on_event handler on the engine thread
            return
        if not self.running:
            raise EngineNotRunning("SIP engine is not running")
        self._commands.put((fn, args, fut, owns_future))
        self._waker.wake()

    @staticmethod
    def _wait(fut: concurrent.futures.Future, timeout: float) -> Any:
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise EngineTimeout(f"SIP engine did not answer within {timeout:.1f} s") from None

    def _submit(self, fn: Callable, *args: Any, timeout: float) -> Any:
        return self._wait(self.submit(fn, *args), timeout)

    # ==== the engine thread ======================================================================
    def _run(self, ready: concurrent.futures.Future) -> None:
        self._owner_ident = threading.get_ident()
        try:
            self._create_endpoint()
        except Exception as e:
            self._log.exception("cannot create the pjsua2 endpoint")
            self._destroy_endpoint()
            ready.set_exception(e)
            return
        ready.set_result(None)
        try:
            while not self._stopping.is_set():
                self._turn()
        finally:
            self._shutdown()

    def _turn(self) -> None:
        self._heartbeat = time.monotonic()
        timeout_ms = 0 if (self._commands.qsize() or self._inbox.qsize()) else self._poll_timeout_ms()
        try:
            if self._waker.has_target:
                self._lib.libHandleEvents(timeout_ms)     # a wake-up datagram ends the wait
            else:
                self._lib.libHandleEvents(0)
                self._waker.wait(timeout_ms / 1000)
        except Exception:
            self._log.exception("libHandleEvents failed")
        self._heartbeat = time.monotonic()
        self._waker.rearm()
        self._drain_inbox()
        for _ in range(MAX_MSGS_PER_TURN):
            try:
                fn, args, fut, owns_future = self._commands.get_nowait()
            except queue.Empty:
                break
            self._execute(fn, args, fut, owns_future)
        self._run_timers()

    def _poll_timeout_ms(self) -> int:
        """How long the engine may sleep: our own timers are the engine's calls, DTMF matchers,
        retries and the STUN re-check; pjsip's own timers shorten the wait by themselves."""
        if (self._calls or self._rebind or self._doomed or self._failovers
                or self._stun.resync):
            return BUSY_POLL_MS
        if self._stun.retry_at is not None:
            return max(0, min(IDLE_POLL_MS, int((self._stun.retry_at - self._clock()) * 1000) + 1))
        return IDLE_POLL_MS

    def _execute(self, fn: Callable, args: tuple, fut: concurrent.futures.Future, owns_future: bool) -> None:
        if self._rebind is not None and fn == self._make_call:
            # requests run in order: a call made after a configuration write uses that configuration,
            # whose accounts exist once its ports are open
            self._deferred.append((fn, args, fut, owns_future))
            return
        if not fut.set_running_or_notify_cancel():
            return
        if owns_future:       # fn completes the Future itself, possibly later (an apply's retries)
            fn(*args)
            return
        try:
            fut.set_result(fn(*args))
        except Exception as e:
            fut.set_exception(self._engine_error(e, fn))

    def _engine_error(self, e: Exception, fn: Any = None) -> EngineError:
        if isinstance(e, EngineError):
            return e
        if isinstance(e, pj.Error):
            return EngineError(f"SIP stack error: {e.reason} ({e.status})")
        self._log.error("engine command %s failed", getattr(fn, "__name__", fn), exc_info=e)
        return EngineError(f"internal error: {e}")

    def _create_endpoint(self) -> None:
        ep = cb.EngineEndpoint(self._sink, self._log)
        ep.libCreate()
        self._ep = ep
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = False
        cfg.uaConfig.maxCalls = 32
        cfg.uaConfig.userAgent = "doorstation"
        self._log_writer = cb.EngineLogWriter(self._log)
        cfg.logConfig.writer = self._log_writer
        cfg.logConfig.level = self._pj_log_level
        cfg.logConfig.consoleLevel = self._pj_log_level   # what reaches the LogWriter
        cfg.logConfig.decor = 0
        cfg.medConfig.noVad = True
        # RTP shares SIP's I/O queue, polled by this thread (woken by packets): pjmedia's own worker
        # thread would poll a second queue every 10 ms forever, 0.2-0.4 % of a core on an idle station.
        cfg.medConfig.hasIoqueue = False
        cfg.medConfig.threadCnt = 0
        ep.libInit(cfg)
        ep.libStart()
        adm = ep.audDevManager()
        adm.setNullDev()   # built without sound devices: mandatory before makeCall
        # The null device's clock (50 ticks a second through the conference bridge) is only needed
        # while something is connected; pjsua closes it 1 s after the last connection goes, and
        # reopens it on the next one, but only checks on a disconnect: one here arms that check.
        try:
            adm.getCaptureDevMedia().stopTransmit(adm.getPlaybackDevMedia())
        except pj.Error:
            pass
        if self._on_endpoint_ready is not None:
            try:   # e.g. the audio bridge opens its port now, so ring-back is clocked before any call
                self._on_endpoint_ready(ep)
            except Exception:
                self._log.exception("on_endpoint_ready hook failed")

    def _shutdown(self) -> None:
        self._settle_rebind(EngineNotRunning("SIP engine stopped"))
        self._fail_queued_commands()
        try:
            if self._ep is not None:
                for call_id, rec in list(self._calls.items()):
                    rec.local_reason = rec.local_reason or "Terminated"
                    self._hangup_pj(call_id, 0)
                    self._finish(call_id, rec.last_status_code)
                self._pump_until(lambda: not self._pjcalls, 2.0)
                for slot in self._accounts.values():
                    self._delete_account_object(slot)
                for doomed in self._doomed:
                    self._delete_account_object(doomed.slot)
                self._accounts.clear()
                self._doomed.clear()
        except Exception:
            self._log.exception("error while hanging up at shutdown")
        finally:
            self._destroy_endpoint()

    def _destroy_endpoint(self) -> None:
        # Any Call alive at libDestroy aborts the process: drop every reference, collect, destroy.
        self._pjcalls.clear()
        self._accounts.clear()
        sys.last_traceback = sys.last_value = sys.last_type = None
        gc.collect()
        if self._ep is not None:
            try:
                self._ep.libDestroy(pj.PJSUA_DESTROY_NO_RX_MSG)  # checked not None above
            except Exception:
                self._log.exception("libDestroy failed")
        self._ep = None
        self._log_writer = None
        self._transports.forget()
        self._waker.close()
        gc.collect()

    def _fail_queued_commands(self) -> None:
        for _, _, fut, _ in self._deferred:
            if fut.set_running_or_notify_cancel():
                fut.set_exception(EngineNotRunning("SIP engine stopped"))
        self._deferred.clear()
        while True:
            try:
                _, _, fut, _ = self._commands.get_nowait()
            except queue.Empty:
                return
            if fut.set_running_or_notify_cancel():
                fut.set_exception(EngineNotRunning("SIP engine stopped"))

    def _pump_until(self, done: Callable[[], bool], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            self._heartbeat = time.monotonic()
            self._lib.libHandleEvents(self._poll_ms)
            self._waker.rearm()
            self._drain_inbox()
        return done()

    # ---- messages from callbacks -----------------------------------------------------------------
    @property
    def _lib(self) -> "pj.Endpoint":
        """The endpoint, on the engine thread between its creation and its destruction."""
        if self._ep is None:
            raise EngineNotRunning("the pjsua2 endpoint does not exist")
        return self._ep

    def _sink(self, msg: object) -> None:
        if threading.get_ident() == self._owner_ident:
            self._handle(msg)
        else:
            self._inbox.put(msg)
            self._waker.wake()

    def _drain_inbox(self) -> None:
        for _ in range(MAX_MSGS_PER_TURN):
            try:
                msg = self._inbox.get_nowait()
            except queue.Empty:
                return
            try:
                self._handle(msg)
            except Exception:
                self._log.exception("handling %r failed", msg)

    def _handle(self, msg: object) -> None:
        if isinstance(msg, cb.CallState):
            self._on_call_state(msg)
        elif isinstance(msg, cb.MediaState):
            self._on_media_state(msg)
        elif isinstance(msg, cb.DtmfDigit):
            self._on_dtmf(msg)
        elif isinstance(msg, cb.IncomingCall):
            self._on_incoming(msg)
        elif isinstance(msg, cb.RegState):
            self._on_reg_state(msg)
        elif isinstance(msg, cb.StunChecked):
            self._stun.checked(msg, self._config)

    def _emit(self, event: EngineEvent) -> None:
        try:
            self._on_event(event)
        except Exception:
            self._log.exception("on_event handler failed for %r", event)

    # ---- configuration ---------------------------------------------------------------------------
    def _apply_request(self, new: EngineConfig, fut: concurrent.futures.Future) -> None:
        """Engine thread: apply `new` and complete `fut` now, or once the ports it needs are free."""
        self._settle_rebind(EngineSuperseded("replaced by a newer configuration"))
        try:
            pending = self._apply(new)
        except Exception as e:
            fut.set_exception(self._engine_error(e, self._apply))
            self._run_deferred()
            return
        if pending is None:
            fut.set_result(None)
            self._run_deferred()
        else:
            pending.future = fut
            self._rebind = pending

    def _run_deferred(self) -> None:
        deferred, self._deferred = self._deferred, []
        for item in deferred:
            self._execute(*item)
    def _settle_rebind(self, error: Exception | None) -> None:
        rb, self._rebind = self._rebind, None
        if rb is not None and not rb.future.done():
            if error is None:
                rb.future.set_result(None)
            else:
                rb.future.set_exception(error)

    def _retry_rebind(self, now: float) -> None:
        rb = self._rebind
        if rb is None or now < rb.next_try:
            return
        still, error = self._transports.retry(rb.missing)
        rb.missing, rb.last_error = still, error or rb.last_error
        if still and now < rb.deadline:
            rb.next_try = now + REBIND_RETRY_S
            return
        if still:
            self._log.error("%s (still in use after %.0f s)", rb.last_error, TRANSPORT_REBIND_WAIT)
            self._settle_rebind(EngineError(rb.last_error))
            self._run_deferred()
            return
        self._rebind = None
        self._transports.completed(rb.config)
        try:
            self._apply(rb.config)      # the transports match now: this adds the accounts
        except Exception as e:
            rb.future.set_exception(self._engine_error(e, self._apply))
        else:
            self._log.info("SIP transports open after waiting for their ports")
            rb.future.set_result(None)
        self._run_deferred()

    def _apply(self, new: EngineConfig) -> "_Rebind | None":
        """Bring pjsua in line with `new`. Returns a _Rebind when some ports were still held by a
        just-closed transport: the accounts are then added by _retry_rebind once they are open."""
        old = self._config
        self._stun.start(new)
        if not self._transports.matches(new):
            for acc_id in list(self._accounts):
                self._remove_account(acc_id)
            missing = self._transports.rebind(new)
            if missing:
                self._config = new
                self._publish_accounts()
                now = time.monotonic()
                return _Rebind(new, concurrent.futures.Future(), missing, now + TRANSPORT_REBIND_WAIT,
                               now + REBIND_RETRY_S)
        wanted = {a.id: a for a in new.accounts} if new.sip_enabled else {}
        for acc_id in list(self._accounts):
            acc = wanted.get(acc_id)
            if acc is None or not acc.enabled or self._accounts[acc_id].key != self._account_key(new, acc):
                self._remove_account(acc_id)
        self._config = new       # account creation and incoming-call checks read the new settings
        for acc in wanted.values():
            if acc.enabled and acc.id not in self._accounts:
                self._add_account(new, acc)
            elif acc.enabled:
                self._accounts[acc.id].config = acc   # DTMF / MaxCallDuration / IsDefault: no re-create
        self._sync_nat()
        self._set_default_account(new)
        if new.codecs != old.codecs or not self._codecs.applied:
            self._codecs.apply(new.codecs)
        self._publish_accounts()
        return None

    @staticmethod
    def _account_key(cfg: EngineConfig, acc: AccountConfig) -> tuple:
        # Settings read live from the config (not baked into the pjsua account) do not count.
        return cfg.account_key(dataclasses.replace(acc, dtmf=None, max_call_duration=0, is_default=False))

    def _nat_state(self, cfg: EngineConfig) -> tuple:
        return cfg.nat_key(), self._stun.on(cfg)

    def _sync_nat(self) -> None:
        """Bring every account's NAT settings up to date in place (pjsua modify keeps its calls)."""
        want = self._nat_state(self._config)
        for slot in self._accounts.values():
            if slot.pj_account is None or slot.nat == want:
                continue
            try:
                slot.pj_account.modify(self._pj_account_config(self._config, slot.config, slot.registrar()))
                slot.nat = want
            except pj.Error as e:
                self._log.error("account %s: modify failed: %s", slot.config.id, e.reason)

    def _add_account(self, cfg: EngineConfig, acc: AccountConfig) -> None:
        transport = self._transports.account_transport(acc)
        if transport not in self._transports.ids:
            self._log.warning("account %s: transport %s unavailable", acc.id, transport)
        ac = self._pj_account_config(cfg, acc, acc.registrar or acc.public_domain)
        slot = AccountSlot(acc, self._account_key(cfg, acc), None, nat=self._nat_state(cfg))
        self._accounts[acc.id] = slot
        account = cb.EngineAccount(acc.id, self._sink, self._log)
        try:
            account.create(ac, False)
        except pj.Error as e:
            del self._accounts[acc.id]
            raise EngineError(f"account {acc.id}: {e.reason}") from None
        slot.pj_account = account
        slot.reg_reason = "Registering" if acc.registers else ""

    def _pj_account_config(self, cfg: EngineConfig, acc: AccountConfig, registrar: str) -> "pj.AccountConfig":
        fams = (families.account_families(acc, self._transports.listeners, cfg.ice_enabled)
                if families.pjsua2_has_ipv6() else None)
        transport = self._transports.account_transport(acc)
        return build_account_config(cfg, acc, registrar, self._transports.local_host_port(transport),
                                    stun=self._stun.on(cfg), families=fams,
                                    transport_id=bound_transport(acc, self._transports.ids, transport))

    def _remove_account(self, acc_id: str) -> None:
        slot = self._accounts.get(acc_id)
        if slot is None:
            return
        mine = [cid for cid, rec in self._calls.items() if rec.account_id == acc_id]
        for cid in mine:
            self._calls[cid].local_reason = self._calls[cid].local_reason or "Terminated"
            self._hangup_pj(cid, 0)
        for cid in mine:             # our records end now; the pjsua calls end on their own
            if cid in self._calls:
                self._finish(cid, self._calls[cid].last_status_code)
        del self._accounts[acc_id]
        pending = [cid for cid in mine if cid in self._pjcalls]
        if pending:    # deleted once its calls are DISCONNECTED (a CANCEL waits for its 487)
            self._doomed.append(_Doomed(slot, pending, time.monotonic() + ACCOUNT_DELETE_WAIT_S))
        else:
            self._delete_account_object(slot)

    def _reap_doomed(self, now: float) -> None:
        keep = []
        for doomed in self._doomed:
            if now < doomed.deadline and any(cid in self._pjcalls for cid in doomed.call_ids):
                keep.append(doomed)
            else:
                self._delete_account_object(doomed.slot)
        self._doomed = keep

    def _delete_account_object(self, slot: AccountSlot) -> None:
        if slot.pj_account is not None:
            try:
                slot.pj_account.shutdown()
            except Exception:
                self._log.exception("account shutdown failed")
            slot.pj_account = None

    def _set_default_account(self, cfg: EngineConfig) -> None:
        default = cfg.default_account()
        slot = self._accounts.get(default.id) if default else None
        if default and slot and slot.pj_account is not None:
            try:
                slot.pj_account.setDefault()
            except pj.Error as e:
                self._log.warning("setDefault %s: %s", default.id, e.reason)

    def _publish_accounts(self) -> None:
        view = {}
        cfg = self._config
        for acc in cfg.accounts:
            view[acc.id] = self._account_status_now(cfg, acc)
        with self._view_lock:
            self._account_view = view
            self._config_view = cfg
            self._view_changed()

    def _account_status_now(self, cfg: EngineConfig, acc: AccountConfig) -> dict:
        slot = self._accounts.get(acc.id)
        local = (self._transports.local_host_port(self._transports.account_transport(acc))
                 if self._transports.ids else "")
        if slot is None:
            return account_status(cfg, acc, local, registered_at=None)
        return account_status(cfg, acc, local, registered_at=slot.registrar(), code=slot.reg_code,
                              reason=slot.reg_reason)

    def _on_reg_state(self, msg: cb.RegState) -> None:
        slot = self._accounts.get(msg.account_id)
        if slot is None:
            return
        slot.reg_code, slot.reg_reason = msg.code, msg.reason
        self._log.info("account %s registration: %d %s (expires %d)", msg.account_id, msg.code, msg.reason,
                       msg.expiration)
        self._publish_accounts()
        self._emit(AccountStatusChanged(msg.account_id, self._account_status_now(self._config, slot.config)))
        if slot.config.secondary_registrar and registrar_unreachable(msg.code):
            self._failovers.add(msg.account_id)     # switched in the loop, not inside the callback

    def _run_failovers(self) -> None:
        while self._failovers:
            slot = self._accounts.get(self._failovers.pop())
            if slot is None or slot.pj_account is None:
                continue
            slot.on_secondary = not slot.on_secondary
            self._log.warning("account %s: registrar unreachable, switching to %s", slot.config.id,
                              slot.registrar())
            try:   # modify() re-registers without touching the account's calls
                slot.pj_account.modify(self._pj_account_config(self._config, slot.config, slot.registrar()))
            except pj.Error as e:
                self._log.error("account %s: failover to %s failed: %s", slot.config.id, slot.registrar(),
                                e.reason)
            slot.reg_code, slot.reg_reason = 0, "Registering"
            self._publish_accounts()

    # ---- calls -----------------------------------------------------------------------------------
    def _new_record(self, direction: str, account_id: str, device_uri: str, remote_uri: str,
                    call_id: str | None = None) -> CallRecord:
        return CallRecord(call_id or new_call_id(direction, next(self._ids)), direction, account_id,
                          device_uri, remote_uri)

    def _make_call(self, call_id: str, account_id: str | None, to: str) -> str:
        cfg = self._config
        if not cfg.sip_enabled:
            raise EngineError("SIP is disabled")
        acc = cfg.account(account_id) if account_id else cfg.default_account()
        if acc is None:
            raise EngineError(f"no such SIP account: {account_id}" if account_id else "no SIP account")
        slot = self._accounts.get(acc.id)
        if not acc.enabled or slot is None or slot.pj_account is None:
            raise EngineError(f"SIP account {acc.id} is disabled")
        if len(self._calls) >= cfg.max_calls:
            raise EngineError(f"too many calls in progress (limit {cfg.max_calls})")
        now = time.monotonic()
        if not self._call_rate.allows(now):
            raise EngineError(f"too many new calls: at most {self._call_rate.per_second} per second")
        to = (to or "").strip()
        if not to.lower().startswith(("sip:", "sips:")) or self._lib.utilVerifySipUri(to) != 0:
            raise EngineError(f"not a SIP URI: {to[:100]}")
        uri = parse_uri(to)
        if uri is not None:
            self._check_family(acc, uri.host, to)
        dest = with_transport(to, acc.effective_transport)
        info_uri = slot.pj_account.getInfo().uri
        rec = self._new_record("Outgoing", acc.id, cb.bare_uri(info_uri), to, call_id)
        call = cb.EngineCall(slot.pj_account, rec.call_id, self._sink, self._log)
        self._call_rate.started(now)
        self._calls[rec.call_id] = rec
        self._pjcalls[rec.call_id] = call
        try:
            call.makeCall(dest, pj.CallOpParam(True))
        except pj.Error as e:
            self._calls.pop(rec.call_id, None)
            self._pjcalls.pop(rec.call_id, None)
            raise EngineError(f"failed to initiate the call: {e.reason}") from None
        if rec.call_id in self._calls and rec.state == CALLING:
            rec.calling_deadline = self._clock() + cfg.calling_timeout
        self._announce(rec)
        return rec.call_id

    def _check_family(self, acc: AccountConfig, host: str, to: str) -> None:
        """Refuse, with the reason, a destination address the account cannot reach (families.py)."""
        want = families.address_family(host)
        if want is None:
            return      # a name: pjsua resolves it with the account's preference
        if want == 6 and not families.pjsua2_has_ipv6():
            raise EngineError(f"IPv6 destinations need a pjsua2 built with IPv6 (scripts/build-pjsua2): {to[:100]}")
        lst = self._transports.listeners
        if (lst.v6 if want == 6 else lst.v4) is None:
            raise EngineError(f"the station has no IPv{want} SIP listener for {to[:100]}")
        fams = families.account_families(acc, lst, self._config.ice_enabled)
        if fams.strict and fams.family != want:
            raise EngineError(f"SIP account {acc.id} uses IPv{fams.family} media (PrioritizeIPv6="
                              f"{str(acc.prioritize_ipv6).lower()}): it cannot call the IPv{want} address in "
                              f"{to[:100]}")

    def _announce(self, rec: CallRecord) -> None:
        if rec.announced:
            return
        rec.announced = True
        self._publish_call(rec)
        self._emit(CallTransition(rec.call_id, "Initiated", rec.status()))

    def _hangup(self, call_id: str) -> None:
        rec = self._calls.get(call_id)
        if rec is None:
            raise CallNotFound(f"no call in progress with CallId {call_id}")
        rec.local_reason = rec.local_reason or "Terminated"
        rec.state = TERMINATING
        self._publish_call(rec)
        self._hangup_pj(call_id, 0)
        # An unanswered call with no provisional response yet cannot be CANCELled: pjsip only ends
        # it at the transaction timeout. Finish our record now; the Call object lingers until then.
        if call_id in self._calls and not self._is_answered(rec):
            self._finish(call_id, rec.last_status_code)

    @staticmethod
    def _is_answered(rec: CallRecord) -> bool:
        return rec.reason in ("AcceptedByRemote", "AcceptedByDevice")

    def _hangup_pj(self, call_id: str, code: int) -> None:
        call = self._pjcalls.get(call_id)
        if call is None:
            return
        prm = pj.CallOpParam()
        if code:
            prm.statusCode = code
        try:
            call.hangup(prm)
        except pj.Error as e:
            self._log.debug("hangup %s: %s", call_id, e.reason)

    def _send_dtmf(self, call_id: str, digits: str, method: str) -> None:
        call = self._pjcalls.get(call_id)
        if call is None or call_id not in self._calls:
            raise CallNotFound(f"no call in progress with CallId {call_id}")
        prm = pj.CallSendDtmfParam()
        prm.digits = digits
        prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO if method == "SIP_INFO" else pj.PJSUA_DTMF_METHOD_RFC2833
        call.sendDtmf(prm)

    def _on_incoming(self, msg: cb.IncomingCall) -> None:
        slot = self._accounts.get(msg.account_id)
        if slot is None or slot.pj_account is None:
            return
        cfg = self._config
        rec_placeholder = f"pending-{msg.pj_call_id}"
        call = cb.EngineCall(slot.pj_account, rec_placeholder, self._sink, self._log, msg.pj_call_id)
        ci = call.getInfo()
        rec = self._new_record("Incoming", msg.account_id, cb.bare_uri(ci.localUri), cb.bare_uri(ci.remoteUri))
        rec.peer_host = msg.source.rpartition(":")[0].strip("[]")
        call.call_id = rec.call_id
        live_before = len(self._calls)
        self._calls[rec.call_id] = rec
        self._pjcalls[rec.call_id] = call
        rec.announced = True                  # incoming calls have no Initiated event
        self._publish_call(rec)
        if not cfg.allow_incoming_calls:
            why, code = "incoming calls are not allowed", 603
        elif not access_allows(rec.remote_uri, cfg.access_list, cfg.access_list_policy, cfg.apply_access_list):
            why, code = "caller refused by the access list", 403
        elif suspect_host(self._calls.values(), rec.peer_host, rec.call_id, self._clock()):
            # a host sending INVITEs that it never ACKs (a Via pointing nowhere) holds the slots of
            # what it sent in its first second, not all of them for a minute
            why, code = f"a call from {rec.peer_host} is still waiting for its ACK", 486
        elif live_before >= cfg.max_calls and not self._evict_unconfirmed(rec.call_id):
            why, code = f"call limit {cfg.max_calls} reached", 486
        else:
            why, code = "", 200
        if code != 200:
            self._log.info("incoming call %s from %s denied: %s", rec.call_id, rec.remote_uri, why)
            rec.local_reason = "Denied"
            self._hangup_pj(rec.call_id, code)
            if rec.call_id in self._calls:
                self._finish(rec.call_id, code)
            return
        prm = pj.CallOpParam()
        prm.statusCode = 200
        rec.calling_deadline = self._clock() + INCOMING_ACK_WAIT_S
        try:
            call.answer(prm)
        except pj.Error as e:
            self._log.warning("answering %s failed: %s", rec.call_id, e.reason)
            rec.local_reason = "Failed"
            self._hangup_pj(rec.call_id, 500)
            if rec.call_id in self._calls:
                self._finish(rec.call_id, 500)

    def _evict_unconfirmed(self, newcomer: str) -> bool:
        """At the call limit, an incoming call answered but never confirmed (no ACK: a spoofed or
        unreachable caller) gives its slot to a new caller. Confirmed calls are never evicted."""
        oldest = oldest_unconfirmed(self._calls.values(), newcomer)
        if oldest is None:
            return False
        self._log.warning("incoming call %s from %s never confirmed: dropped for a new caller",
                          oldest.call_id, oldest.remote_uri[:100])
        self._drop_unconfirmed(oldest)
        return True

    def _drop_unconfirmed(self, rec: CallRecord) -> None:
        rec.local_reason = "Failed"
        self._hangup_pj(rec.call_id, 0)
        if rec.call_id in self._calls:
            self._finish(rec.call_id, rec.last_status_code)

    def _on_call_state(self, msg: cb.CallState) -> None:
        rec = self._calls.get(msg.call_id)
        if msg.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            # Drop the Call object now: its slot number is reused at once (see docs/sip.md).
            self._pjcalls.pop(msg.call_id, None)
            if self._media_end_hook is not None:
                try:
                    self._media_end_hook(msg.call_id)
                except Exception:
                    self._log.exception("media end hook failed for %s", msg.call_id)
            if rec is not None:
                self._finish(msg.call_id, msg.last_status_code)
            return
        if rec is None:
            return
        rec.last_status_code = msg.last_status_code
        if msg.remote_uri and rec.direction == "Incoming":
            rec.remote_uri = msg.remote_uri
        if msg.state == pj.PJSIP_INV_STATE_CONFIRMED and rec.state in (CALLING,):
            rec.state = ACTIVE
            rec.reason = "AcceptedByRemote" if rec.direction == "Outgoing" else "AcceptedByDevice"
            rec.calling_deadline = None
            acc = self._config.account(rec.account_id)
            if acc and acc.max_call_duration > 0:
                rec.active_deadline = self._clock() + acc.max_call_duration
            self._publish_call(rec)
            self._emit(CallTransition(rec.call_id, rec.reason, rec.status()))

    def _finish(self, call_id: str, status_code: int) -> None:
        rec = self._calls.pop(call_id, None)
        if rec is None:
            return
        if rec.direction == "Outgoing":
            self._announce(rec)
        rec.reason = end_reason(self._is_answered(rec), rec.local_reason, status_code)
        rec.state = TERMINATED
        rec.stop_time = time.time()
        rec.last_status_code = status_code or rec.last_status_code
        status = rec.status()
        with self._view_lock:
            self._live_view.pop(call_id, None)
            self._history.add(status)
            self._view_changed()
        self._log.info("call %s ended: %s (SIP %s)", call_id, rec.reason, status_code)
        self._emit(CallTransition(call_id, rec.reason, status))
        self._emit(CallFinished(status, rec.last_status_code))

    def _on_media_state(self, msg: cb.MediaState) -> None:
        rec = self._calls.get(msg.call_id)
        if rec is None:
            return
        rec.audio_codec = msg.audio_codec
        self._publish_call(rec)
        if msg.audio_media is None:
            return
        try:
            if self._media_hook is not None:
                self._media_hook(msg.call_id, msg.audio_media)
            else:
                # No audio bridge: connect the call to the null sound device both ways, so the
                # conference bridge clocks the stream (without it, RFC 2833 digits we send were seen
                # to lose their last digit on every second call).
                adm = self._lib.audDevManager()
                msg.audio_media.startTransmit(adm.getPlaybackDevMedia())
                adm.getCaptureDevMedia().startTransmit(msg.audio_media)
        except Exception:
            self._log.exception("connecting the audio of %s failed", msg.call_id)

    def _publish_call(self, rec: CallRecord) -> None:
        with self._view_lock:
            if rec.call_id in self._calls:
                self._live_view[rec.call_id] = rec.status()
                self._view_changed()

    # ---- DTMF -----------------------------------------------------------------------------------
    def _on_dtmf(self, msg: cb.DtmfDigit) -> None:
        rec = self._calls.get(msg.call_id)
        if rec is None:
            return
        self._log.debug("call %s: DTMF %r via %s", rec.call_id, msg.digit, msg.method)
        acc = self._config.account(rec.account_id)
        settings = acc.dtmf if acc else None
        if settings is None or not settings.triggers:
            self._log.info("call %s: DTMF %r ignored (account has no DTMF configuration)", rec.call_id, msg.digit)
            return
        allowed = settings.rfc2833 if msg.method == "RFC2833" else settings.sip_info
        if not allowed:
            self._log.info("call %s: DTMF %r over %s ignored (method disabled)", rec.call_id, msg.digit, msg.method)
            return
        matcher = rec.dtmf
        if matcher is None:
            matcher = rec.dtmf = DtmfMatcher({t.sequence: t.event_id for t in settings.triggers},
                                             inter_digit_timeout=self._dtmf_timeout,
                                             max_wrong=self._dtmf_max_wrong, clock=self._clock)
        was_locked = matcher.locked
        result = matcher.feed(msg.digit)
        if result.ignored and was_locked:
            self._log.warning("call %s: DTMF %r ignored after %d wrong sequences", rec.call_id, msg.digit,
                              matcher.wrong)
        self._dtmf_result(rec, settings, result, matcher)

    def _dtmf_result(self, rec: CallRecord, settings, result, matcher: DtmfMatcher) -> None:
        if result.wrong_added:
            self._log.info("call %s: wrong DTMF sequence (%d so far)", rec.call_id, matcher.wrong)
        if result.event_id:
            name = next((t.event_name for t in settings.triggers if t.event_id == result.event_id), "")
            self._log.info("call %s: DTMF event %s (%s)", rec.call_id, result.event_id, name)
            self._emit(DtmfMatched(rec.call_id, rec.account_id, result.event_id, name))
        if result.locked_now:
            self._log.warning("call %s: %d wrong DTMF sequences, further DTMF ignored", rec.call_id, matcher.wrong)
            self._emit(DtmfBlocked(rec.call_id, matcher.wrong))

    # ---- timers ---------------------------------------------------------------------------------
    def _run_timers(self) -> None:
        self._run_failovers()
        mono = time.monotonic()
        self._retry_rebind(mono)
        if self._doomed:
            self._reap_doomed(mono)
        now = self._clock()
        if self._stun.resync:
            self._stun.resync = False
            self._sync_nat()
        self._stun.retry_if_due(now, self._config)
        for call_id, rec in list(self._calls.items()):
            if rec.state == CALLING and rec.direction == "Outgoing" and rec.calling_deadline \
                    and now >= rec.calling_deadline:
                self._log.info("call %s not answered within CallingTimeout", call_id)
                rec.local_reason = "NoAnswer"
                self._hangup_pj(call_id, 0)
                if call_id in self._calls:
                    self._finish(call_id, rec.last_status_code)
            elif rec.state == CALLING and rec.direction == "Incoming" and rec.calling_deadline \
                    and now >= rec.calling_deadline:
                self._log.info("incoming call %s: no ACK within %.0f s, dropped", call_id, INCOMING_ACK_WAIT_S)
                self._drop_unconfirmed(rec)
            elif rec.state == ACTIVE and rec.active_deadline and now >= rec.active_deadline:
                self._log.info("call %s reached MaxCallDuration", call_id)
                rec.local_reason = "Terminated"
                rec.state = TERMINATING
                self._publish_call(rec)
                self._hangup_pj(call_id, 0)
        for live in list(self._calls.values()):
            if live.dtmf is None:
                continue
            result = live.dtmf.tick(now)
            if live.call_id in self._calls and (result.wrong_added or result.locked_now):
                acc = self._config.account(live.account_id)
                self._dtmf_result(live, acc.dtmf if acc else None, result, live.dtmf)
