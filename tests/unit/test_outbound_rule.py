"""Where outbound fetches may connect (global unicast only) and the hosts an integration may allowlist."""

from __future__ import annotations

import ipaddress

import pytest

from keng.domain.access import Integration
from keng.domain.errors import InvalidValue
from keng.domain.outbound import MAX_FETCH_HOSTS, address_allowed, check_fetch_host

REFUSED = [
    "127.0.0.1",
    "127.8.9.10",
    "0.0.0.0",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # CGNAT
    "192.0.0.8",
    "198.18.0.1",
    "192.0.2.1",
    "224.0.0.1",
    "239.1.1.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",
    "ff0e::1",
    "2001:db8::1",
    "2001::1",  # Teredo
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::7f00:1",  # IPv4-compatible
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:c0a8:101::",  # 6to4 of 192.168.1.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b:1::a00:1",
]
ALLOWED = ["8.8.8.8", "1.1.1.1", "203.162.4.191", "2606:4700::1111", "2001:4860:4860::8888", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_loopback_private_and_special_purpose_addresses_are_refused(address: str) -> None:
    assert not address_allowed(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ALLOWED)
def test_global_unicast_addresses_are_allowed(address: str) -> None:
    assert address_allowed(ipaddress.ip_address(address))


def test_fetch_hosts_are_normalised_names_or_address_literals() -> None:
    assert check_fetch_host("Media.KTTV.gov.vn.") == "media.kttv.gov.vn"
    assert check_fetch_host("[::1]") == "::1"
    assert check_fetch_host(" 10.0.0.5 ") == "10.0.0.5"
    for bad in ("", "http://x.vn", "x.vn/path", "a..b", "-a.vn", "x.vn:8080", "a b", "1.2.3", "ồ.vn"):
        with pytest.raises(InvalidValue, match="fetch host"):
            check_fetch_host(bad)


def test_an_integration_records_its_fetch_allowlist_and_replays_it() -> None:
    integration = Integration.add(name="kttv", kind="cap", jurisdiction=["021"], by="admin")
    assert integration.fetch_hosts == []
    integration.set_fetch_hosts(["Media.kttv.vn", "media.kttv.vn", "10.0.0.5"], by="admin")
    assert integration.fetch_hosts == ["10.0.0.5", "media.kttv.vn"]
    integration.set_fetch_hosts([], by="admin")
    events = integration.collect_events()
    assert [type(e).__name__ for e in events] == ["Added", "FetchHostsSet", "FetchHostsSet"]
    replayed = None
    for event in events:
        replayed = event.mutate(replayed)
    assert replayed is not None and replayed.fetch_hosts == []
    with pytest.raises(InvalidValue, match=f"at most {MAX_FETCH_HOSTS}"):
        integration.set_fetch_hosts([f"h{n}.vn" for n in range(MAX_FETCH_HOSTS + 1)], by="admin")
