"""pjsua2 callbacks translated into small typed messages, nothing else.

Every callback is wrapped: an exception escaping into pjsua2 can abort the process. The sink decides
whether a message is handled at once (engine thread) or queued (pjmedia thread: RFC 2833 DTMF).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import pjsua2 as pj

from daemon.sip import logguard
from daemon.sip.uris import bare_uri


@dataclass(frozen=True)
class RegState:
    account_id: str
    code: int
    reason: str
    expiration: int


@dataclass(frozen=True)
class IncomingCall:
    account_id: str
    pj_call_id: int
    source: str = ""        # the packet's source address, "ip:port"


@dataclass(frozen=True)
class CallState:
    call_id: str
    state: int              # pj.PJSIP_INV_STATE_*
    last_status_code: int
    last_reason: str
    remote_uri: str
    local_uri: str


@dataclass(frozen=True)
class MediaState:
    call_id: str
    audio_codec: str
    audio_media: Any        # pj.AudioMedia of the active audio stream, or None


@dataclass(frozen=True)
class DtmfDigit:
    call_id: str
    digit: str
    method: str             # "RFC2833" | "SIP_INFO"


@dataclass(frozen=True)
class StunChecked:
    ok: bool
    detail: str


Sink = Callable[[object], None]


def _guard(log: logging.Logger, what: str, fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:  # never let an exception unwind into pjsua2
        log.exception("SIP callback %s failed", what)


class EngineAccount(pj.Account):
    def __init__(self, account_id: str, sink: Sink, log: logging.Logger):
        super().__init__()
        self.account_id = account_id
        self._sink = sink
        self._log = log

    def onRegState(self, prm: "pj.OnRegStateParam") -> None:
        _guard(self._log, "onRegState", lambda: self._sink(
            RegState(self.account_id, int(prm.code), str(prm.reason), int(prm.expiration))))

    def onIncomingCall(self, prm: "pj.OnIncomingCallParam") -> None:
        _guard(self._log, "onIncomingCall", lambda: self._sink(
            IncomingCall(self.account_id, int(prm.callId), str(prm.rdata.srcAddress))))


class EngineCall(pj.Call):
    """`call_id` is our CallId (pjsua's call ids are slot numbers, reused at once)."""

    def __init__(self, account: pj.Account, call_id: str, sink: Sink, log: logging.Logger,
                 pj_call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(account, pj_call_id)
        self.call_id = call_id
        self._sink = sink
        self._log = log

    def onCallState(self, prm: "pj.OnCallStateParam") -> None:
        def run() -> None:
            ci = self.getInfo()
            self._sink(CallState(self.call_id, int(ci.state), int(ci.lastStatusCode), str(ci.lastReason),
                                 bare_uri(ci.remoteUri), bare_uri(ci.localUri)))
        _guard(self._log, "onCallState", run)

    def onCallMediaState(self, prm: "pj.OnCallMediaStateParam") -> None:
        def run() -> None:
            ci = self.getInfo()
            for idx, mi in enumerate(ci.media):
                if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    si = self.getStreamInfo(idx)
                    self._sink(MediaState(self.call_id, str(si.codecName), self.getAudioMedia(idx)))
                    return
        _guard(self._log, "onCallMediaState", run)

    def onDtmfDigit(self, prm: "pj.OnDtmfDigitParam") -> None:
        def run() -> None:
            method = "SIP_INFO" if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "RFC2833"
            self._sink(DtmfDigit(self.call_id, str(prm.digit), method))
        _guard(self._log, "onDtmfDigit", run)


class EngineEndpoint(pj.Endpoint):
    """The Endpoint, for the asynchronous STUN server check's completion callback."""

    def __init__(self, sink: Sink, log: logging.Logger):
        super().__init__()
        self._sink = sink
        self._log = log

    def onNatCheckStunServersComplete(self, prm: "pj.OnNatCheckStunServersCompleteParam") -> None:
        _guard(self._log, "onNatCheckStunServersComplete", lambda: self._sink(
            StunChecked(prm.status == 0, f"{prm.name} -> {prm.addr}" if prm.status == 0 else f"status {prm.status}")))


class EngineLogWriter(pj.LogWriter):
    """pjsip's log into Python logging (a collected LogWriter segfaults: the engine keeps it).

    pjsip quotes what peers send (an unparsable packet whole, CR/LF and all, at error level), so
    every line is escaped onto one line (daemon.sip.logguard); error and warning lines are cut to
    LINE_LIMIT characters and rate-limited by a token bucket, and the first line let through after
    a suppression says how many were dropped. Debug lines (only with a raised pjsip log level) are
    kept longer and not rate-limited."""

    DEBUG_LIMIT = 2000

    def __init__(self, log: logging.Logger, bucket: logguard.TokenBucket | None = None):
        super().__init__()
        self._log = log
        self._bucket = bucket or logguard.TokenBucket()

    def write(self, entry: "pj.LogEntry") -> None:
        try:
            self.emit(int(entry.level), str(entry.msg))
        except Exception:
            pass

    def emit(self, pj_level: int, msg: str) -> None:
        level = logging.ERROR if pj_level <= 1 else logging.WARNING if pj_level == 2 else logging.DEBUG
        if not self._log.isEnabledFor(level):
            return
        if level == logging.DEBUG:
            self._log.debug("pjsip: %s", logguard.escape(msg.rstrip(), self.DEBUG_LIMIT))
            return
        if not self._bucket.admit():
            return
        suppressed = self._bucket.take_suppressed()
        if suppressed:
            self._log.warning("pjsip: %d error/warning lines suppressed (rate limit)", suppressed)
        self._log.log(level, "pjsip: %s", logguard.escape(msg.rstrip()))
