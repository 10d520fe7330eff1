"""The SSRF guard's address decision, as a function (no traffic to any of these addresses)."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webchecker.check.guard import (
    blocked_reason,
    embedded_ipv4,
    first_blocked,
    literal_address,
    parse_networks,
    resolve,
)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.0.0.2", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private network"),
        ("10.255.255.255", "private network"),
        ("172.16.0.1", "private network"),
        ("172.31.255.254", "private network"),
        ("192.168.1.1", "private network"),
        ("100.64.0.1", "shared address space"),
        ("100.127.255.254", "shared address space"),
        ("169.254.169.254", "cloud metadata service"),
        ("169.254.170.2", "cloud metadata service"),
        ("169.254.0.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fd00::1", "unique local"),
        ("fd00:ec2::254", "cloud metadata service"),
        ("fc00::1", "unique local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.10", "reserved"),  # documentation (TEST-NET-1)
        ("198.18.0.1", "reserved"),  # benchmarking
        # IPv6 forms that carry an IPv4 address are judged by that address.
        ("::ffff:127.0.0.1", "loopback, as IPv4 inside IPv6"),
        ("::ffff:169.254.169.254", "cloud metadata service, as IPv4 inside IPv6"),
        ("::ffff:10.1.2.3", "private network, as IPv4 inside IPv6"),
        ("::127.0.0.1", "loopback, as IPv4 inside IPv6"),  # IPv4-compatible
        ("64:ff9b::a00:1", "private network, as IPv4 inside IPv6"),  # NAT64 of 10.0.0.1
        ("2002:7f00:1::1", "loopback, as IPv4 inside IPv6"),  # 6to4 of 127.0.0.1
    ],
)
def test_internal_addresses_are_blocked_with_the_range_named(address: str, reason: str) -> None:
    found = blocked_reason(address)
    assert found is not None
    assert found.startswith(reason)
    assert blocked_reason(ipaddress.ip_address(address)) == found


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:2800:220:1::1"],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert blocked_reason(address) is None


def test_public_ipv4_inside_ipv6_is_allowed() -> None:
    assert blocked_reason("::ffff:93.184.216.34") is None
    assert embedded_ipv4(ipaddress.IPv6Address("::ffff:93.184.216.34")) == ipaddress.IPv4Address(
        "93.184.216.34"
    )


@given(st.ip_addresses(v=4))
def test_every_ipv4_address_that_is_not_global_is_blocked(address: ipaddress.IPv4Address) -> None:
    if not address.is_global:
        assert blocked_reason(address) is not None
    # The same decision holds for its IPv4-mapped IPv6 form.
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    assert (blocked_reason(mapped) is None) == (blocked_reason(address) is None)


@given(st.ip_addresses(v=6))
def test_every_ipv6_address_that_is_not_global_is_blocked(address: ipaddress.IPv6Address) -> None:
    if not address.is_global:
        assert blocked_reason(address) is not None


@pytest.mark.parametrize(
    "network", ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"]
)
def test_whole_ranges_are_blocked_at_both_ends(network: str) -> None:
    net = ipaddress.ip_network(network)
    assert blocked_reason(net.network_address) is not None
    assert blocked_reason(net.broadcast_address) is not None


def test_first_blocked_names_the_first_blocked_address_and_honours_the_allow_list() -> None:
    public = ipaddress.ip_address("93.184.216.34")
    loopback = ipaddress.ip_address("127.0.0.1")
    assert first_blocked([public]) is None
    assert first_blocked([public, loopback]) == (loopback, "loopback")
    assert first_blocked([loopback], allowed=parse_networks("127.0.0.1/32")) is None
    other = ipaddress.ip_address("127.0.0.2")
    assert first_blocked([other], allowed=parse_networks("127.0.0.1/32")) == (other, "loopback")


def test_parse_networks() -> None:
    assert parse_networks("") == ()
    assert parse_networks(" 10.1.2.0/24 , fd00::/64") == (
        ipaddress.ip_network("10.1.2.0/24"),
        ipaddress.ip_network("fd00::/64"),
    )
    with pytest.raises(ValueError, match="does not appear to be"):
        parse_networks("10.1.2.0/24, not-a-network")


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", "127.0.0.1"), ("[::1]", "::1"), ("::1", "::1"), ("example.com", None)],
)
def test_literal_address(host: str, expected: str | None) -> None:
    result = literal_address(host)
    assert (None if result is None else str(result)) == expected


@pytest.mark.parametrize(
    "host",
    [
        "2130706433",  # decimal
        "0177.0.0.1",  # octal
        "0x7f.0.0.1",  # hexadecimal
        "0x7f000001",
        "127.1",  # short form
        "017700000001",  # octal, one number
    ],
)
def test_numeric_host_forms_resolve_as_the_os_does_and_are_blocked(host: str) -> None:
    # getaddrinfo parses numeric forms itself: no lookup leaves the machine.
    addresses = asyncio.run(resolve(host, 80))
    assert addresses == [ipaddress.IPv4Address("127.0.0.1")]
    assert first_blocked(addresses) == (ipaddress.IPv4Address("127.0.0.1"), "loopback")


def test_localhost_resolves_to_loopback_only() -> None:
    addresses = asyncio.run(resolve("localhost", 80))
    assert addresses
    assert all(blocked_reason(address) == "loopback" for address in addresses)
