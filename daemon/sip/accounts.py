"""SIP accounts: the pjsua2 AccountConfig built from an AccountConfig, and the spec's account status.

Engine-thread only (pjsua2 objects), but no engine state: everything is passed in.
"""
from __future__ import annotations

import dataclasses

import pjsua2 as pj

from daemon.sip import callbacks as cb
from daemon.sip.config import AccountConfig, EngineConfig
from daemon.sip.families import AccountFamilies
from daemon.sip.uris import bracket_ipv6, proxy_uri, registrar_uri

_SRTP = {"None": pj.PJMEDIA_SRTP_DISABLED, "SRTPBestEffort": pj.PJMEDIA_SRTP_OPTIONAL,
         "SRTPMandatory": pj.PJMEDIA_SRTP_MANDATORY}


def registrar_unreachable(code: int) -> bool:
    """Timeouts, transport errors and server failures move an account to its other registrar;
    authentication answers (401/403/407) do not: the other registrar would say the same."""
    return code == 408 or code >= 500


@dataclasses.dataclass
class AccountSlot:
    """One live account on the engine thread: its config, its pjsua2 object, its registration."""
    config: AccountConfig
    key: tuple                        # EngineConfig.account_key when created
    pj_account: cb.EngineAccount | None
    nat: tuple = ()                   # NAT state the pjsua2 account was last built with
    reg_code: int = 0
    reg_reason: str = ""
    on_secondary: bool = False        # registering at SecondaryRegistrar after the primary failed

    def registrar(self) -> str:
        acc = self.config
        return acc.secondary_registrar if self.on_secondary else (acc.registrar or acc.public_domain)


def identity_uri(acc: AccountConfig, local_host_port: str) -> str:
    """AOR: `sip|sips:UserId@(PublicDomain or Registrar)`; peer-to-peer: `sip:UserId@<ip>:<port>`."""
    scheme = "sips" if acc.sips_enabled else "sip"
    host = bracket_ipv6(acc.public_domain or acc.registrar) if acc.registers else local_host_port
    return f"{scheme}:{acc.user_id}@{host}" if acc.user_id else f"{scheme}:{host}"


def bound_transport(acc: AccountConfig, transports: dict[str, int], transport: str) -> int | None:
    """DisableTCPSwitch: the UDP transport a UDP account is bound to, else None (any transport).
    `transport`: the account's transport name in its family (`udp` or `udp6`).

    pjsip sends a request larger than 1300 bytes over TCP instead of UDP unless its global
    `disable_tcp_switch` is set, which pjsua2 does not expose. An account bound to its
    UDP transport (sipConfig.transportId) keeps such requests on UDP: the TCP attempt is not
    allowed by the transport selector and pjsip goes on to the UDP address (docs/sip.md)."""
    if not acc.disable_tcp_switch or acc.effective_transport != "udp":
        return None
    return transports.get(transport)


def build_account_config(cfg: EngineConfig, acc: AccountConfig, registrar: str, local_host_port: str,
                         stun: bool, transport_id: int | None = None,
                         families: "AccountFamilies | None" = None) -> "pj.AccountConfig":
    """`families`: IPv4/IPv6 use (daemon/sip/families.py); None with a pjsua2 built without IPv6."""
    ac = pj.AccountConfig()
    if transport_id is not None:
        ac.sipConfig.transportId = transport_id
    transport = acc.effective_transport
    uri = identity_uri(acc, local_host_port)
    ac.idUri = f'"{acc.caller_id}" <{uri}>' if acc.caller_id else uri
    if acc.registers:
        rc = ac.regConfig
        rc.registrarUri = registrar_uri(registrar, transport)
        rc.timeoutSec = max(acc.registration_interval, 30)
        rc.retryIntervalSec = cfg.registration_retry_interval
        rc.firstRetryIntervalSec = cfg.registration_retry_interval
        rc.randomRetryIntervalSec = 0
        rc.dropCallsOnFail = False
    if acc.user_id or acc.password:
        ac.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", acc.authentication_id or acc.user_id,
                                                      0, acc.password))
    for p in acc.proxies:
        ac.sipConfig.proxies.append(proxy_uri(p.server, transport))
        if p.username:
            ac.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", p.username, 0, p.password))
    mc = ac.mediaConfig
    mc.transportConfig.port = cfg.rtp_start_port
    if families is not None:
        ac.sipConfig.ipv6Use = families.sip_use
        mc.ipv6Use = families.media_use
        if families.media_bind:
            mc.transportConfig.boundAddress = families.media_bind
    elif cfg.bind_address:
        mc.transportConfig.boundAddress = cfg.bind_address
    mc.srtpUse = _SRTP.get(acc.media_encryption, pj.PJMEDIA_SRTP_DISABLED)
    mc.srtpSecureSignaling = 0      # SRTP over non-TLS signalling would fail with ESESSIONINSECURE
    nc = ac.natConfig
    nc.sipStunUse = nc.mediaStunUse = pj.PJSUA_STUN_USE_DEFAULT if stun else pj.PJSUA_STUN_USE_DISABLED
    nc.iceEnabled = cfg.ice_enabled
    if cfg.turn_enabled and cfg.turn_servers:
        t = cfg.turn_servers[0]
        nc.turnEnabled = True
        nc.turnServer = t.server.split(":", 1)[1] if t.server.lower().startswith("turn:") else t.server
        nc.turnUserName = t.username
        nc.turnPasswordType = 0
        nc.turnPassword = t.password
    ac.mwiConfig.enabled = acc.allow_mwi
    return ac


def account_status(cfg: EngineConfig, acc: AccountConfig, local_host_port: str, registered_at: str | None,
                   code: int = 0, reason: str = "") -> dict:
    """SIPAccountStatus. `registered_at`: the registrar in use, None when no pjsua account exists."""
    scheme = "sips" if acc.sips_enabled else "sip"
    sip_uri = identity_uri(acc, local_host_port) if acc.registers else (
        f"{scheme}:{local_host_port}" if local_host_port else "")
    base = {"SIPAccountId": acc.id, "SIPURI": sip_uri, "IsDefault": acc.is_default}
    if not cfg.sip_enabled:
        return {**base, "RegURI": "", "Status": 0, "StatusText": "SIP disabled"}
    if not acc.registers or registered_at is None:
        return {**base, "RegURI": "", "Status": 0, "StatusText": "Does not register"}
    return {**base, "RegURI": registered_at, "Status": code, "StatusText": reason}
