"""STUN servers, checked before the accounts use them.

pjsua resolves STUN servers synchronously when a call's media is created, which blocked the engine
for seconds with an unreachable server. So servers are first checked asynchronously, and accounts
use STUN only once the check succeeded (retried every STUN_RETRY_INTERVAL s). Engine thread only.
"""
from __future__ import annotations

import logging
from typing import Callable

import pjsua2 as pj

from daemon.sip import callbacks as cb
from daemon.sip.config import EngineConfig

STUN_RETRY_INTERVAL = 60


class StunCheck:
    def __init__(self, lib: Callable[[], "pj.Endpoint"], log: logging.Logger, clock: Callable[[], float]) -> None:
        self._lib = lib
        self._log = log
        self._clock = clock
        self._usable: tuple[str, ...] = ()
        self._checking: tuple[str, ...] | None = None
        self.retry_at: float | None = None
        self.resync = False          # servers became usable: the accounts' NAT settings need an update

    def on(self, cfg: EngineConfig) -> bool:
        """Do accounts use STUN now? Only once `cfg`'s servers were found reachable."""
        return bool(cfg.stun_enabled and cfg.stun_servers and self._usable == cfg.stun_servers)

    def start(self, cfg: EngineConfig) -> None:
        """Check `cfg`'s servers unless they are usable already or being checked."""
        if not (cfg.stun_enabled and cfg.stun_servers) or cfg.stun_servers in (self._usable, self._checking):
            return
        self._checking = cfg.stun_servers
        self.retry_at = None
        try:
            self._lib().natCheckStunServers(self._vector(cfg.stun_servers), False, None)
        except pj.Error as e:
            self._log.warning("STUN server check could not start: %s", e.reason)
            self._checking = None
            self.retry_at = self._clock() + STUN_RETRY_INTERVAL

    def checked(self, msg: cb.StunChecked, cfg: EngineConfig) -> None:
        """pjsua's answer to `start`; `cfg` is the configuration in force now."""
        servers, self._checking = self._checking, None
        if servers is None or servers != cfg.stun_servers or not cfg.stun_enabled:
            self.start(cfg)       # the configuration changed meanwhile
            return
        if not msg.ok:
            self._log.warning("STUN servers %s unreachable (%s): STUN not used, retrying in %d s",
                              ", ".join(servers), msg.detail, STUN_RETRY_INTERVAL)
            self.retry_at = self._clock() + STUN_RETRY_INTERVAL
            return
        self._log.info("STUN server usable: %s", msg.detail)
        self._lib().natUpdateStunServers(self._vector(servers), False)
        self._usable = servers
        self.resync = True                   # accounts modified (calls kept) from the engine's timers

    def retry_if_due(self, now: float, cfg: EngineConfig) -> None:
        if self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
            self.start(cfg)

    @staticmethod
    def _vector(servers: tuple[str, ...]) -> "pj.StringVector":
        sv = pj.StringVector()
        for server in servers:
            sv.append(server)
        return sv
