"""SIP URI helpers: parse the parts we compare, build account/destination URIs, apply the AccessList."""
from __future__ import annotations

import re
from dataclasses import dataclass

_NAME_ADDR = re.compile(r"<([^>]*)>")
_URI = re.compile(r"^(?P<scheme>sips?):(?:(?P<user>[^@;?]*)@)?(?P<host>\[[^\]]+\]|[^:;?>]+)(?::(?P<port>\d+))?",
                  re.IGNORECASE)


@dataclass(frozen=True)
class SipUri:
    scheme: str
    user: str
    host: str
    port: int | None


def bare_uri(text: str) -> str:
    """`"Bob" <sip:bob@h:5070>;tag=x` -> `sip:bob@h:5070`."""
    m = _NAME_ADDR.search(text or "")
    return (m.group(1) if m else (text or "").split(";")[0]).strip()


def parse_uri(text: str) -> SipUri | None:
    m = _URI.match(bare_uri(text))
    if not m:
        return None
    return SipUri(m.group("scheme").lower(), m.group("user") or "", m.group("host").lower(),
                  int(m.group("port")) if m.group("port") else None)


def access_entry_matches(entry: str, caller: str) -> bool:
    """An AccessList entry matches a caller URI when the host is equal and the user/port given in the
    entry are equal (an entry without user or port matches any). `sip:` and `sips:` are equivalent."""
    e = parse_uri(entry if ":" in entry.split("@")[0] else f"sip:{entry}")
    c = parse_uri(caller)
    if e is None or c is None:
        return False
    if e.host != c.host:
        return False
    if e.user and e.user != c.user:
        return False
    if e.port is not None and e.port != (c.port or 5060):
        return False
    return True


def access_allows(caller: str, entries: tuple[str, ...], policy: str, apply: bool) -> bool:
    if not apply:
        return True
    listed = any(access_entry_matches(e, caller) for e in entries)
    return not listed if (policy or "Allow").lower() == "block" else listed


def host_port(host: str, port: int | None) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


def with_transport(uri: str, transport: str) -> str:
    """Add `;transport=tcp|tls` to a destination that names none (udp is the default)."""
    if transport == "udp" or uri.lower().startswith("sips:") or ";transport=" in uri.lower():
        return uri
    return f"{uri};transport={transport}"


def bracket_ipv6(hostport: str) -> str:
    """host[:port] for a URI: a bare IPv6 address (`fd12::90`, which cannot carry a port) gets its
    brackets; the spec's `[fd12:3456:789a:1::90]` is taken as it is."""
    return f"[{hostport}]" if hostport.count(":") > 1 and not hostport.startswith("[") else hostport


def registrar_uri(server: str, transport: str) -> str:
    """`server`: host[:port] or a SIP URI."""
    uri = server if server.lower().startswith(("sip:", "sips:")) else f"sip:{bracket_ipv6(server)}"
    return with_transport(uri, transport)


def proxy_uri(server: str, transport: str) -> str:
    uri = registrar_uri(server, transport)
    return uri if ";lr" in uri else f"{uri};lr"
