"""Desired state of the SIP engine: plain frozen dataclasses, compared by value.

`SipEngine.apply(EngineConfig)` diffs the new config against the one it runs: transports are rebound
only when their key (ports, bind address, TLS files) changes, and an account is re-created only when
its own `AccountConfig` (or the shared media/NAT settings it is built from) changed.

`engine_config_from_vapix()` builds an EngineConfig from the documents the commands store
(SIPConfiguration, SIPAccount list, DTMF configurations/triggers/events, codec list), accepting the
spellings the spec uses. Account attributes (daemon/sip/attributes.py) come from the account's
`Attribute` list.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Iterable

from daemon.sip.attributes import attribute_bool, attribute_int, default_bool, default_int

TRANSPORTS = ("udp", "tcp", "tls")
MEDIA_ENCRYPTION = ("None", "SRTPBestEffort", "SRTPMandatory")


@dataclass(frozen=True)
class DtmfTrigger:
    sequence: str
    event_id: str
    event_name: str = ""


@dataclass(frozen=True)
class DtmfSettings:
    """An account's DTMF configuration: which methods count, and the sequences to match."""
    rfc2833: bool = True
    sip_info: bool = True
    triggers: tuple[DtmfTrigger, ...] = ()


@dataclass(frozen=True)
class ProxyConfig:
    server: str
    username: str = ""
    password: str = ""


@dataclass(frozen=True)
class TurnServer:
    server: str
    username: str = ""
    password: str = ""


@dataclass(frozen=True)
class AccountConfig:
    id: str
    user_id: str = ""
    password: str = ""
    registrar: str = ""
    public_domain: str = ""
    secondary_registrar: str = ""
    authentication_id: str = ""
    caller_id: str = ""
    transport: str = "udp"
    sips_enabled: bool = False
    media_encryption: str = "None"
    verify_server_certificate: bool = False
    prioritize_ipv6: bool = False       # IPv6 media (and preference) when the station listens on IPv6
    proxies: tuple[ProxyConfig, ...] = ()
    registration_interval: int = default_int("RegistrationInterval")
    allow_mwi: bool = False
    max_call_duration: int = default_int("MaxCallDuration")      # seconds, 0 = unlimited
    disable_tcp_switch: bool = default_bool("DisableTCPSwitch")  # bind a UDP account to its UDP transport
    enabled: bool = True
    is_default: bool = False
    dtmf: DtmfSettings | None = None    # None: no DTMF configuration, DTMF triggers nothing

    @property
    def registers(self) -> bool:
        """Spec: registered at Registrar, else PublicDomain; neither -> peer-to-peer."""
        return bool(self.registrar or self.public_domain)

    @property
    def effective_transport(self) -> str:
        return "tls" if self.sips_enabled else (self.transport or "udp").lower()


@dataclass(frozen=True)
class EngineConfig:
    sip_enabled: bool = False
    sip_port: int = 5060
    sip_tls_port: int = 5061
    bind_address: str = ""               # "" = all interfaces (tests use 127.0.0.1)
    ipv6: bool = True                    # also listen on IPv6 when pjsua2 has it (daemon/sip/families.py)
    bind_address6: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_ca_file: str = ""
    rtp_start_port: int = 4000
    stun_enabled: bool = False
    stun_servers: tuple[str, ...] = ()
    turn_enabled: bool = False
    turn_servers: tuple[TurnServer, ...] = ()
    ice_enabled: bool = False
    codecs: tuple[tuple[str, int | None], ...] = ()   # priority order; () = stack defaults
    accounts: tuple[AccountConfig, ...] = ()
    allow_incoming_calls: bool = False
    apply_access_list: bool = False
    access_list: tuple[str, ...] = ()
    access_list_policy: str = "Allow"
    calling_timeout: float = 60.0
    registration_retry_interval: int = 30   # not in the spec: seconds between failed REGISTERs
    max_calls: int = 4

    def account(self, account_id: str) -> AccountConfig | None:
        return next((a for a in self.accounts if a.id == account_id), None)

    def default_account(self) -> AccountConfig | None:
        enabled = [a for a in self.accounts if a.enabled]
        return next((a for a in enabled if a.is_default), enabled[0] if enabled else None)

    def transport_key(self) -> tuple:
        """Everything that needs the transports rebound when it changes."""
        if not self.sip_enabled:
            return ()
        verify = any(a.verify_server_certificate for a in self.accounts if a.enabled)
        return (self.sip_port, self.sip_tls_port, self.bind_address, self.ipv6, self.bind_address6,
                self.tls_cert_file, self.tls_key_file, self.tls_ca_file, verify)

    def account_key(self, acc: AccountConfig) -> tuple:
        """What needs an account re-created when it changes (its own config + shared media)."""
        return (acc, self.rtp_start_port, self.registration_retry_interval, self.transport_key())

    def nat_key(self) -> tuple:
        """NAT traversal settings: applied to existing accounts in place (their calls are kept)."""
        return (self.stun_enabled, self.stun_servers, self.turn_enabled, self.turn_servers, self.ice_enabled)


# -- building from the stored VAPIX documents -------------------------------------------------
def _b(v: Any, default: bool = False) -> bool:
    if v is None:
        return default
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v)


def _i(v: Any, default: int) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def _list(v: Any) -> list:
    if v is None or v == "":
        return []
    if isinstance(v, str):
        return [p for p in v.replace(";", ",").replace(" ", ",").split(",") if p]
    return list(v) if isinstance(v, (list, tuple)) else [v]


def dtmf_settings_from_vapix(conf_id: str, dtmf_configurations: Iterable[dict],
                             dtmf_triggers: Iterable[dict], dtmf_events: Iterable[dict]) -> DtmfSettings | None:
    if not conf_id:
        return None
    conf = next((c for c in dtmf_configurations if c.get("Id") == conf_id), None)
    if conf is None:
        return None
    events = {e.get("Id"): e for e in dtmf_events}
    triggers = {t.get("Id"): t for t in dtmf_triggers}
    trigger_ids = _list(conf.get("DTMFTriggerId", conf.get("DTMFSequence")))
    out = []
    for tid in trigger_ids:
        t = triggers.get(tid)
        if not t or not t.get("DTMFSequence"):
            continue
        ev = events.get(t.get("DTMFEventId"))
        if ev is None or not _b(ev.get("Enabled"), True):
            continue
        out.append(DtmfTrigger(str(t["DTMFSequence"]), str(ev["Id"]), str(ev.get("Name", ""))))
    return DtmfSettings(rfc2833=_b(conf.get("RFC2833"), True), sip_info=_b(conf.get("RFC2976"), True),
                        triggers=tuple(out))


def account_from_vapix(doc: dict, dtmf: DtmfSettings | None) -> AccountConfig:
    proxies = doc.get("SIPProxies", doc.get("SIPProxy"))
    if proxies is None and isinstance(doc.get("SIPAccount"), list):   # the spec example's spelling
        proxies = doc["SIPAccount"]
    return AccountConfig(
        id=str(doc.get("Id") or doc.get("SIPAccountId") or doc.get("AccountId") or ""),
        user_id=str(doc.get("UserId", doc.get("Username", "")) or ""),
        password=str(doc.get("Password", "") or ""),
        registrar=str(doc.get("Registrar", "") or ""),
        public_domain=str(doc.get("PublicDomain", "") or ""),
        secondary_registrar=str(doc.get("SecondaryRegistrar", "") or ""),
        authentication_id=str(doc.get("AuthenticationId", "") or ""),
        caller_id=str(doc.get("CallerId", "") or ""),
        transport=str(doc.get("Transport") or "udp").lower(),
        sips_enabled=_b(doc.get("SIPSEnabled")),
        media_encryption=str(doc.get("MediaEncryption") or "None"),
        verify_server_certificate=_b(doc.get("VerifyServerCertificate")),
        prioritize_ipv6=_b(doc.get("PrioritizeIPv6")),
        proxies=tuple(ProxyConfig(str(p.get("Server", "")), str(p.get("Username", "") or ""),
                                  str(p.get("Password", "") or ""))
                      for p in (proxies or []) if isinstance(p, dict) and p.get("Server")),
        # account attributes: the Attribute list, else a top-level field, else the default
        registration_interval=attribute_int(doc, "RegistrationInterval"),
        allow_mwi=_b(doc.get("AllowMWI")),
        max_call_duration=attribute_int(doc, "MaxCallDuration"),
        disable_tcp_switch=attribute_bool(doc, "DisableTCPSwitch"),
        enabled=_b(doc.get("Enabled"), True),
        is_default=_b(doc.get("IsDefault")),
        dtmf=dtmf,
    )


# What pjsua can hold (PJSUA_MAX_ACC); the commands refuse more (daemon/commands/accounts.py).
MAX_ENGINE_ACCOUNTS = 8
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_log = logging.getLogger("doorstation.sip.config")


def usable_accounts(accounts: Iterable[dict]) -> list[dict]:
    """The stored accounts the engine can run. A store written by an older version may hold more
    than pjsua can, or control characters in a field that goes into SIP: those are left out (and
    logged), so that one bad account cannot make every later apply fail."""
    out: list[dict] = []
    for doc in accounts:
        bad = [k for k, v in doc.items() if isinstance(v, str) and _CONTROL.search(v)]
        if bad:
            _log.error("SIP account %s left out: control characters in %s", str(doc.get("Id"))[:64],
                       ", ".join(sorted(bad)))
        elif len(out) >= MAX_ENGINE_ACCOUNTS:
            _log.error("SIP account %s left out: at most %d accounts", str(doc.get("Id"))[:64],
                       MAX_ENGINE_ACCOUNTS)
        else:
            out.append(doc)
    return out


def engine_config_from_vapix(sip_configuration: dict, accounts: Iterable[dict], *,
                             dtmf_configurations: Iterable[dict] = (), dtmf_triggers: Iterable[dict] = (),
                             dtmf_events: Iterable[dict] = (), codecs: Iterable[dict] = (),
                             **overrides: Any) -> EngineConfig:
    """`overrides`: EngineConfig fields not in the spec (bind_address, tls_cert_file, ...)."""
    sc = sip_configuration or {}
    confs, trigs, evs = list(dtmf_configurations), list(dtmf_triggers), list(dtmf_events)
    accs = tuple(account_from_vapix(a, dtmf_settings_from_vapix(str(a.get("DTMFConfigurationId") or ""),
                                                                confs, trigs, evs))
                 for a in usable_accounts(accounts))
    access = sc.get("AccessList", sc.get("AllowedURIs"))
    apply_access = sc.get("ApplyAccessList", sc.get("ApplyAllowedURIs"))
    return EngineConfig(**{
        "sip_enabled": _b(sc.get("SIPEnabled")),
        "sip_port": _i(sc.get("SIPPort"), 5060),
        "sip_tls_port": _i(sc.get("SIPTLSPort"), 5061),
        "rtp_start_port": _i(sc.get("RTPStartPort"), 4000),
        "stun_enabled": _b(sc.get("STUNEnabled")),
        "stun_servers": tuple(str(s.get("Server")) for s in sc.get("STUNServers") or []
                              if isinstance(s, dict) and s.get("Server")),
        "turn_enabled": _b(sc.get("TURNEnabled")),
        "turn_servers": tuple(TurnServer(str(s.get("Server")), str(s.get("Username", "") or ""),
                                         str(s.get("Password", "") or ""))
                              for s in sc.get("TURNServers") or [] if isinstance(s, dict) and s.get("Server")),
        "ice_enabled": _b(sc.get("ICEEnabled")),
        "allow_incoming_calls": _b(sc.get("AllowIncomingCalls")),
        "apply_access_list": _b(apply_access),
        "access_list": tuple(str(u) for u in _list(access)),
        "access_list_policy": str(sc.get("AccessListPolicy") or "Allow"),
        "calling_timeout": float(min(max(_i(sc.get("CallingTimeout"), 60), 1), 600)),
        "codecs": tuple((str(c.get("Name")), _i(c.get("SampleRate"), 0) or None)
                        for c in codecs if isinstance(c, dict) and c.get("Name")),
        "accounts": accs,
        **overrides,
    })


__all__ = ["AccountConfig", "DtmfSettings", "DtmfTrigger", "EngineConfig", "ProxyConfig", "TurnServer",
           "engine_config_from_vapix", "account_from_vapix", "dtmf_settings_from_vapix"]
