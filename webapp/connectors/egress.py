"""Egress policy: which network destinations a tenant's integration may reach (DESIGN.md §16).

A tenant admin types historian URLs; the server then connects to them from inside the plant
network. Without a policy that is a server-side request forgery: cloud metadata, the app's own
database, anything on loopback or the private ranges. So:

- public (globally routable) addresses are allowed;
- loopback and private ranges are refused (demo mode allows loopback), and so is the
  application database's own host:port;
- link-local (169.254/16 — cloud metadata — and fe80::/10), unspecified, multicast and
  reserved addresses are always refused;
- `OPTRIA_CONNECTOR_ALLOW` (CIDRs or host names, each with an optional `:port`, IPv6 as
  `[cidr]:port`) adds to what is allowed: loopback, private ranges, or the database's
  host — the latter only by an entry that names the database's port explicitly, so opening
  `10.0.0.0/8` for historians does not open the app's own PostgreSQL at 10.0.0.5:5432.

Connectors apply the policy to the addresses a name resolves to, at connect time, and connect
to the address they checked (no DNS-rebinding gap). IPv6 forms that embed an IPv4 address
(::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4) are judged as that IPv4 address.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from .errors import ConnectorError

if TYPE_CHECKING:
    from webapp.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "OPTRIA_CONNECTOR_ALLOW"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LABEL = r"[a-z0-9_][a-z0-9_-]{0,62}"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433}
LOCAL_FILES_REFUSED = (
    "SQLite historian files are allowed in demo mode only (OPTRIA_DEMO_MODE); "
    f"{SETTING} opens network destinations, never local files"
)


class EgressRefused(ConnectorError):
    """The policy refuses this destination. The message names the setting that could open it
    (or says that nothing can), and never carries credentials."""


@dataclass(frozen=True, slots=True)
class AllowRule:
    """One `OPTRIA_CONNECTOR_ALLOW` entry: a network or a host name, optionally one port."""

    network: IPNetwork | None = None
    host: str | None = None
    port: int | None = None

    def matches(self, host: str | None, address: IPAddress, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host is not None:
            return host is not None and normalize_host(host) == self.host
        assert self.network is not None
        return address.version == self.network.version and address in self.network


def normalize_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def parse_allow_list(text: str) -> tuple[AllowRule, ...]:
    """The rules of `OPTRIA_CONNECTOR_ALLOW`; ValueError naming the first bad entry."""
    return tuple(_parse_entry(entry.strip()) for entry in text.split(",") if entry.strip())


def _parse_entry(entry: str) -> AllowRule:
    target, port = entry, None
    bracketed = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", entry)
    if bracketed:
        target, port_text = bracketed.group(1), bracketed.group(2)
        port = _port(entry, port_text) if port_text is not None else None
    elif entry.count(":") == 1:  # host:port or v4[/len]:port (a bare IPv6 has several colons)
        target, port_text = entry.split(":")
        port = _port(entry, port_text)
    try:
        network = ipaddress.ip_network(target, strict=False)
    except ValueError:
        host = normalize_host(target)
        if not is_host_name(host):
            raise ValueError(
                f"{SETTING}: {entry!r} is neither a CIDR, an IP address nor a host name"
            ) from None
        return AllowRule(host=host, port=port)
    network = _unmapped_network(network)
    if network.prefixlen > 0 and all(_always_refused(a) for a in _corners(network)):
        # A range that overlaps them (0.0.0.0/1, say) is fine: that part stays shut anyway.
        raise ValueError(
            f"{SETTING}: {entry!r} is link-local, unspecified, multicast or reserved, which "
            "can never be allowed"
        )
    return AllowRule(network=network, port=port)


def _port(entry: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{SETTING}: {entry!r} has an invalid port")
    return int(text)


def _corners(network: IPNetwork) -> Iterable[IPAddress]:
    return (network.network_address, network.broadcast_address)


def _unmapped_network(network: IPNetwork) -> IPNetwork:
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}", strict=False)
    return network


def effective_address(address: IPAddress) -> IPAddress:
    """The address a packet really goes to: IPv4 embedded in IPv6 is judged as IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def _always_refused(address: IPAddress) -> bool:
    return (
        address.is_link_local
        or address.is_unspecified
        or address.is_multicast
        or (address.is_reserved and not address.is_loopback)  # IPv6 ::/8 holds ::1
        or address == ipaddress.IPv4Address("255.255.255.255")
    )


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """What integrations may reach. The default (no arguments) is the strictest: public only.

    Hashable, so connector caches can key on it.
    """

    allow: tuple[AllowRule, ...] = ()
    allow_loopback: bool = False  # demo mode: the demo's peers run on this machine
    allow_local_files: bool = False  # demo mode: SQLite historian files
    # Where OPC UA certificates and keys are read from (OPTRIA_OPCUA_PKI_DIR); no other file.
    certificate_dir: str | None = None
    # The application database's own (address, port) endpoints.
    protected: frozenset[tuple[IPAddress, int]] = field(default_factory=frozenset)

    @classmethod
    def from_settings(cls, settings: Settings) -> EgressPolicy:
        """The deployment's policy. The PI server the operator configured for the demo seed
        (`OPTRIA_PI_BASE_URL`) is trusted like an allow-list entry."""
        rules = list(parse_allow_list(settings.connector_allow))
        pi_server = http_endpoint(settings.pi_base_url or "")
        if pi_server is not None:
            host, port = pi_server
            literal = ip_literal(host)
            rules.append(
                AllowRule(host=normalize_host(host), port=port)
                if literal is None
                else AllowRule(network=ipaddress.ip_network(effective_address(literal)), port=port)
            )
        return cls(
            allow=tuple(rules),
            allow_loopback=settings.demo_mode,
            allow_local_files=settings.demo_mode,
            certificate_dir=settings.opcua_pki_dir or None,
            protected=database_endpoints(settings.database_url),
        )

    def refusal(self, host: str | None, address: IPAddress, port: int) -> str | None:
        """Why (address, port) is refused, reached by the name `host`; None when allowed."""
        address = effective_address(address)
        if _always_refused(address):
            kind = (
                "link-local (cloud metadata)"
                if address.is_link_local
                else ("unspecified" if address.is_unspecified else "multicast or reserved")
            )
            return f"{kind} addresses are never allowed, not even by {SETTING}"
        if self._is_database(address, port):
            if any(r.port == port and r.matches(host, address, port) for r in self.allow):
                return None
            return f"it is the application's own database; only {SETTING} naming this port opens it"
        if any(rule.matches(host, address, port) for rule in self.allow):
            return None
        if address.is_loopback:
            return None if self.allow_loopback else f"loopback is refused; {SETTING} can allow it"
        # (Python counts the deprecated IPv6 site-local fec0::/10 as global: it is not.)
        if not address.is_global or getattr(address, "is_site_local", False):
            return f"private and non-public ranges are refused; {SETTING} can allow them"
        return None

    def _is_database(self, address: IPAddress, port: int) -> bool:
        """The app's own database: its resolved endpoints, and — when it listens on loopback
        — that port on every loopback address (127.0.0.2 or ::1 reach the same server)."""
        if (address, port) in self.protected:
            return True
        return address.is_loopback and any(
            protected.is_loopback and protected_port == port
            for protected, protected_port in self.protected
        )

    def check_address(self, host: str | None, address: str | IPAddress, port: int) -> None:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        reason = self.refusal(host, ip, port)
        if reason is not None:
            shown = f"[{ip}]" if ip.version == 6 else str(ip)
            named = "" if host is None or normalize_host(host) == str(ip) else f"{host} → "
            raise EgressRefused(
                f"the destination {named}{shown}:{port} is refused by the egress policy: {reason}"
            )

    def resolve(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for host:port, every one of them allowed (blocking: call
        it from the connector's own executor). Unresolvable names are a ConnectorError."""
        literal = ip_literal(host)
        if literal is not None:
            self.check_address(host, literal, port)
            return [str(literal)]
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise ConnectorError(f"cannot resolve host {host!r} ({exc})") from None
        addresses = list(dict.fromkeys(str(info[4][0]).partition("%")[0] for info in infos))
        for address in addresses:  # every address must pass: a name is as bad as its worst
            self.check_address(host, address, port)
        return addresses

    def check_destination(self, host: str, port: int) -> None:
        """For saving or testing a config: refuse what the policy refuses now. A name that does
        not resolve (yet) is not refused here; connecting will say it cannot be resolved."""
        try:
            self.resolve(host, port)
        except EgressRefused:
            raise
        except ConnectorError:
            return


def is_host_name(host: str) -> bool:
    """A DNS name (not an address, path or list). All-digit last labels are refused: no
    top-level domain is numeric, so `10.0.0.300` is a mistyped address, not a name."""
    return bool(_HOST_NAME.match(host)) and not host.rpartition(".")[2].isdigit()


def ip_literal(host: str) -> IPAddress | None:
    """The address `host` spells (brackets and an IPv6 zone ignored), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]").partition("%")[0])
    except ValueError:
        return None


def http_endpoint(url: str) -> tuple[str, int] | None:
    """(host, port) of an http(s) URL, the port defaulted by scheme; None if it has no host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def database_endpoints(database_url: str) -> frozenset[tuple[IPAddress, int]]:
    """The (address, port) pairs of the application's own database server (none for SQLite
    or a Unix socket)."""
    try:
        url = make_url(database_url)
    except Exception:  # an unparsable URL fails at engine creation with its own message
        return frozenset()
    backend = url.get_backend_name()
    if backend == "sqlite" or not url.host:
        return frozenset()
    port = url.port or DATABASE_PORTS.get(backend, 0)
    try:
        infos = socket.getaddrinfo(url.host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        literal = ip_literal(url.host)
        return frozenset() if literal is None else frozenset({(effective_address(literal), port)})
    return frozenset(
        (effective_address(ipaddress.ip_address(str(info[4][0]).partition("%")[0])), port)
        for info in infos
    )
