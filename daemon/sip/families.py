"""IP families: which SIP listeners the station opens, and IPv4 or IPv6 media for each account.

The rules (docs/sip.md "IPv6"):
- Listeners: bound to all interfaces (`bind_address` ""), the station listens on IPv4 and, when
  pjsua2 is built with IPv6, the kernel has it and `ipv6` is on, IPv6 too. Bound to an IPv6 address it is IPv6-only;
  bound to an IPv4 address it adds IPv6 only when `bind_address6` names one.
- Accounts: the spec says an account uses either IPv4 or IPv6 media, IPv6 when PrioritizeIPv6 is
  true (and the station listens on IPv6). Listening on all interfaces, pjsua is told to prefer that
  family, so an incoming offer of the other family is still answered in its own family. With
  explicit bind addresses the account's media sockets must bind to one of them, so the account
  uses its family only, and a call to an address literal of the other family is refused.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from functools import lru_cache

import pjsua2 as pj

from daemon.sip.config import AccountConfig, EngineConfig


@lru_cache(maxsize=1)
def pjsua2_has_ipv6() -> bool:
    """pjsua_acc_config_default() leaves IPv6 disabled exactly when pjlib lacks PJ_HAS_IPV6 (the
    pjsua2-python wheel); a build with it defaults to IPV6_ENABLED. Safe before libCreate."""
    return pj.AccountConfig().sipConfig.ipv6Use != pj.PJSUA_IPV6_DISABLED


def host_has_ipv6() -> bool:
    """False on a kernel without IPv6 (ipv6.disable=1): no AF_INET6 socket can be made there."""
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()
    except OSError:
        return False
    return True


def is_ipv6_address(host: str) -> bool:
    return ":" in host.strip("[]")


def address_family(host: str) -> int | None:
    """4 or 6 for an address literal (`[v6]` brackets allowed), None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]")).version
    except ValueError:
        return None


@dataclass(frozen=True)
class Listeners:
    """Bind address per family: "" = all interfaces, None = no listener of that family."""
    v4: str | None
    v6: str | None

    @property
    def bound(self) -> bool:
        """Bound to explicit addresses (loopback in tests and `scripts/run`) rather than to all."""
        return bool(self.v4) or bool(self.v6)


ALL_INTERFACES = ("", "0.0.0.0", "::")


def listeners(cfg: EngineConfig, has_ipv6: bool) -> Listeners:
    """0.0.0.0 and :: mean all interfaces of both families, as "" does (`--sip-bind 0.0.0.0`)."""
    bind = cfg.bind_address.strip("[]")
    bind = "" if bind in ALL_INTERFACES else bind
    if bind and is_ipv6_address(bind):
        return Listeners(None, bind)
    v6 = None
    if has_ipv6 and cfg.ipv6:
        if cfg.bind_address6:
            v6 = cfg.bind_address6.strip("[]")
        elif not bind:
            v6 = ""
    return Listeners(bind, v6)


def media_family(acc: AccountConfig, lst: Listeners) -> int:
    if lst.v4 is None:
        return 6
    if lst.v6 is None:
        return 4
    return 6 if acc.prioritize_ipv6 else 4


@dataclass(frozen=True)
class AccountFamilies:
    family: int            # the family of the account's outgoing offers and identity
    sip_use: int           # pjsua_ipv6_use for signalling
    media_use: int         # pjsua_ipv6_use for media
    media_bind: str        # media sockets' bind address ("" = all interfaces)
    strict: bool           # the account cannot call an address of the other family


def account_families(acc: AccountConfig, lst: Listeners, ice: bool = False) -> AccountFamilies:
    """`ice`: ICE on. pjsua then offers IPv6 as the default address whenever the host has IPv6, even
    when told to prefer IPv4 (get_media_ip_version), and a peer without IPv6 rejects the offer
    (baresip: "SDP offer AF not available"): an IPv4 account with ICE uses IPv4 media only."""
    family = media_family(acc, lst)
    if lst.v6 is None:
        return AccountFamilies(4, pj.PJSUA_IPV6_DISABLED, pj.PJSUA_IPV6_DISABLED, lst.v4 or "", True)
    if lst.v4 is None:
        return AccountFamilies(6, pj.PJSUA_IPV6_ENABLED_USE_IPV6_ONLY, pj.PJSUA_IPV6_ENABLED_USE_IPV6_ONLY,
                               lst.v6, True)
    prefer = pj.PJSUA_IPV6_ENABLED_PREFER_IPV6 if family == 6 else pj.PJSUA_IPV6_ENABLED_PREFER_IPV4
    if not lst.bound:
        media = pj.PJSUA_IPV6_DISABLED if ice and family == 4 else prefer
        return AccountFamilies(family, prefer, media, "", False)
    if family == 6:
        return AccountFamilies(6, prefer, pj.PJSUA_IPV6_ENABLED_USE_IPV6_ONLY, lst.v6 or "", True)
    return AccountFamilies(4, prefer, pj.PJSUA_IPV6_DISABLED, lst.v4 or "", True)


def transport_name(kind: str, family: int) -> str:
    """`udp`/`tcp`/`tls` for IPv4, `udp6`/`tcp6`/`tls6` for IPv6."""
    return kind + ("6" if family == 6 else "")


def host_port(local_name: str) -> str:
    """pjsip's transport localName, e.g. `fd00::2:5060`, as a URI host:port (`[fd00::2]:5060`)."""
    host, sep, port = local_name.rpartition(":")
    if sep and ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return local_name
