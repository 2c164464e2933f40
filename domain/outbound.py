"""Where keng may connect when it fetches a URL that a message carries (or an admin configured): the address rule
and the host names an integration may allowlist.

An address is allowed only when it is globally routable unicast. Python 3.11's `is_global` alone lets through
multicast, 6to4/NAT64/IPv4-compatible forms of loopback and a few special-purpose IPv4 blocks, so those are refused
here explicitly, and IPv6 forms that embed an IPv4 address are judged by the address they embed. An integration can
allowlist host names (or address literals) that it needs to reach anyway, such as a sender's server on a private
network; an allowlisted host skips the address rule and nothing else.
"""

from __future__ import annotations

import ipaddress
import re

from keng.domain.errors import InvalidValue

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_FETCH_HOSTS = 20

# Special-purpose blocks (RFC 6890 and successors) that 3.11's `is_global` does not exclude or that are never a
# reasonable place to fetch from.
_REFUSED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "100.64.0.0/10",  # CGNAT
        "192.0.0.0/24",  # IETF protocol assignments
        "192.88.99.0/24",  # 6to4 relay anycast
        "198.18.0.0/15",  # benchmarking
        "240.0.0.0/4",
        "64:ff9b::/96",  # NAT64: would reach whatever IPv4 address it embeds
        "64:ff9b:1::/48",  # local-use NAT64
        "2001::/23",  # IETF protocol assignments, Teredo included
        "fec0::/10",  # site-local (deprecated)
    )
)
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def address_allowed(address: IPAddress) -> bool:
    """Whether keng may connect to this address without an allowlist entry: global unicast only."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return address_allowed(embedded)
    if any(address in net for net in _REFUSED):
        return False
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
    )


def check_fetch_host(name: str) -> str:
    """A host name or address literal an integration may allowlist, normalised (lower case, no brackets)."""
    host = name.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    labels = host.removesuffix(".").split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise InvalidValue(f"fetch host {name!r} must be a host name (letters, digits, '-', dots) or an IP address")
    return ".".join(labels)


def check_fetch_hosts(names: list[str]) -> list[str]:
    """Normalised, sorted, without duplicates; at most MAX_FETCH_HOSTS."""
    hosts = sorted({check_fetch_host(n) for n in names})
    if len(hosts) > MAX_FETCH_HOSTS:
        raise InvalidValue(f"at most {MAX_FETCH_HOSTS} fetch hosts per integration, got {len(hosts)}")
    return hosts
