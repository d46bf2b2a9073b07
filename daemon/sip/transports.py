"""The SIP transports (UDP, TCP, TLS; IPv4 and IPv6 listeners) of the engine's endpoint.

Engine thread only, like everything that touches pjsua2. A configuration change of address or
port closes every transport and opens the new ones; a just-closed UDP transport keeps its port
until its last transaction has ended (a BYE's client transaction lingers for T4 = 5 s after its
answer), so the ports that are not free yet are returned to the engine, which retries them from
its timers (`retry`) while it serves everything else.
"""
from __future__ import annotations

import logging
from typing import Callable

import pjsua2 as pj

from daemon.sip import families
from daemon.sip.config import AccountConfig, EngineConfig
from daemon.sip.waker import Waker, wake_address

TYPES = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP, "tls": pj.PJSIP_TRANSPORT_TLS,
         "udp6": pj.PJSIP_TRANSPORT_UDP6, "tcp6": pj.PJSIP_TRANSPORT_TCP6, "tls6": pj.PJSIP_TRANSPORT_TLS6}

# A transport still to open: (name, pj.TransportConfig).
Missing = list[tuple[str, "pj.TransportConfig"]]


class SipTransports:
    def __init__(self, lib: Callable[[], "pj.Endpoint"], waker: Waker, log: logging.Logger) -> None:
        self._lib = lib
        self._waker = waker
        self._log = log
        self.ids: dict[str, int] = {}                          # transport name -> pjsua transport id
        self.listeners = families.Listeners(None, None)        # what the open transports listen on
        self.key: tuple = ()                                   # the config's transport_key() once all are open

    def matches(self, cfg: EngineConfig) -> bool:
        return cfg.transport_key() == self.key

    def rebind(self, cfg: EngineConfig) -> Missing:
        """Close every transport and open those `cfg` wants; returns the ones whose port is not
        free yet (for `retry`)."""
        self._close_all()
        if not cfg.sip_enabled:
            return []
        verify = any(a.verify_server_certificate for a in cfg.accounts if a.enabled)
        lst = families.listeners(cfg, families.pjsua2_has_ipv6() and families.host_has_ipv6())
        wanted = []
        for family, addr in ((4, lst.v4), (6, lst.v6)):
            if addr is not None:
                wanted += [(families.transport_name(kind, family), port, addr)
                           for kind, port in (("udp", cfg.sip_port), ("tcp", cfg.sip_port), ("tls", cfg.sip_tls_port))]
        if cfg.ipv6 and not families.pjsua2_has_ipv6():
            self._log.warning("this pjsua2 build has no IPv6 (PyPI's pjsua2-python wheel): SIP over IPv4 only; "
                              "scripts/build-pjsua2 builds one with IPv6")
        elif cfg.ipv6 and not families.host_has_ipv6():
            self._log.warning("this kernel has no IPv6 (ipv6.disable=1?): SIP over IPv4 only")
        missing: Missing = []
        for name, port, addr in wanted:
            tc = pj.TransportConfig()
            tc.port = port
            if addr:
                tc.boundAddress = addr
            if name.startswith("tls"):
                tc.tlsConfig.certFile = cfg.tls_cert_file
                tc.tlsConfig.privKeyFile = cfg.tls_key_file
                tc.tlsConfig.CaListFile = cfg.tls_ca_file
                tc.tlsConfig.verifyServer = verify
            try:
                self.ids[name] = self._lib().transportCreate(TYPES[name], tc)
            except pj.Error as e:
                self._log.info("SIP %s port %d not free yet (%s): retrying", name, port, e.reason)
                missing.append((name, tc))
        self.listeners = lst
        self._update_waker()
        if not missing:
            self.key = cfg.transport_key()
        return missing

    def retry(self, missing: Missing) -> tuple[Missing, str]:
        """Try the transports still missing once more: (those still missing, the last error)."""
        still: Missing = []
        error = ""
        for name, tc in missing:
            try:
                self.ids[name] = self._lib().transportCreate(TYPES[name], tc)
            except pj.Error as e:
                still.append((name, tc))
                error = f"cannot open SIP {name} transport on port {tc.port}: {e.reason}"
        return still, error

    def completed(self, cfg: EngineConfig) -> None:
        """Every transport `cfg` wants is open now (after `retry`)."""
        self.key = cfg.transport_key()
        self._update_waker()

    def forget(self) -> None:
        """The endpoint is destroyed: its transports are gone with it."""
        self.ids.clear()

    def local_host_port(self, transport: str) -> str:
        """`host:port` of a transport (`[v6]:port` for IPv6), falling back to the same family's UDP one."""
        family_udp = "udp6" if transport.endswith("6") else "udp"
        tid = self.ids.get(transport, self.ids.get(family_udp))
        if tid is None:
            return ""
        return families.host_port(self._lib().transportGetInfo(tid).localName)

    def account_transport(self, acc: AccountConfig) -> str:
        """The transport name of an account's own family (`udp6` for a UDP account using IPv6)."""
        fam = families.media_family(acc, self.listeners)
        return families.transport_name(acc.effective_transport, fam)

    def _close_all(self) -> None:
        self._waker.set_target(None)
        for name, tid in list(self.ids.items()):
            try:
                self._lib().transportClose(tid)
            except pj.Error as e:
                self._log.warning("closing transport %s: %s", name, e.reason)
        self.ids.clear()
        self.key = ()
        self.listeners = families.Listeners(None, None)

    def _update_waker(self) -> None:
        """The engine is woken by a datagram to its own UDP transport (daemon/sip/waker.py)."""
        tid = self.ids.get("udp", self.ids.get("udp6"))
        target = None
        if tid is not None:
            try:
                target = wake_address(self._lib().transportGetInfo(tid).localAddress)
            except pj.Error:
                target = None
        self._waker.set_target(target)
