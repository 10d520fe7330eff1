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
    embedded_ipv4s,
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
    addresses, seconds = asyncio.run(resolve(host, 80))
    assert addresses == [ipaddress.IPv4Address("127.0.0.1")]
    assert seconds >= 0.0
    assert first_blocked(addresses) == (ipaddress.IPv4Address("127.0.0.1"), "loopback")


def test_localhost_resolves_to_loopback_only() -> None:
    addresses, seconds = asyncio.run(resolve("localhost", 80))
    assert addresses
    assert seconds > 0.0  # timed in the resolver's thread
    assert all(blocked_reason(address) == "loopback" for address in addresses)


# -- every IPv6 form that embeds an IPv4 address (issue 9 item 6) -----------------------


def _v4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def _rfc6052(prefix: str, length: int, ipv4: str) -> ipaddress.IPv6Address:
    """The RFC 6052 address of ``ipv4`` under a NAT64 ``prefix`` of ``length`` bits (the
    IPv4 bits skip bits 64-71), built independently of the guard's own table."""
    packed = bytearray(ipaddress.IPv6Address(prefix).packed)
    bits = _v4(ipv4)
    position = length
    for shift in range(31, -1, -1):
        if position == 64:
            position = 72  # the "u" octet stays zero
        byte, bit = divmod(position, 8)
        packed[byte] |= ((bits >> shift) & 1) << (7 - bit)
        position += 1
    return ipaddress.IPv6Address(bytes(packed))


def _teredo(server: str, client: str) -> ipaddress.IPv6Address:
    # 2001:0000:<server>:<flags>:<port ^ 0xffff>:<client ^ 0xffffffff>
    value = (0x20010000 << 96) | (_v4(server) << 64) | (0xFFFF << 32) | (_v4(client) ^ 0xFFFFFFFF)
    return ipaddress.IPv6Address(value)


def _forms(ipv4: str) -> dict[str, ipaddress.IPv6Address]:
    bits = _v4(ipv4)
    return {
        "IPv4-mapped": ipaddress.IPv6Address(0xFFFF << 32 | bits),
        "IPv4-translated": ipaddress.IPv6Address(0xFFFF0000 << 32 | bits),
        "IPv4-compatible": ipaddress.IPv6Address(bits),
        "6to4": ipaddress.IPv6Address((0x2002 << 112) | (bits << 80) | 1),
        "Teredo client": _teredo("65.54.227.120", ipv4),
        "NAT64 /96": _rfc6052("64:ff9b::", 96, ipv4),
        **{
            f"local NAT64 /{length}": _rfc6052("64:ff9b:1::", length, ipv4)
            for length in (48, 56, 64, 96)
        },
    }


INTERNAL = ["127.0.0.1", "169.254.169.254", "10.1.2.3", "192.168.0.1", "100.64.0.1"]


@pytest.mark.parametrize("ipv4", INTERNAL)
@pytest.mark.parametrize("form", list(_forms("127.0.0.1")))
def test_every_form_that_embeds_an_internal_ipv4_is_blocked(form: str, ipv4: str) -> None:
    address = _forms(ipv4)[form]
    reason = blocked_reason(address)
    assert reason is not None, f"{address} ({form} of {ipv4}) passed the guard"
    assert ipaddress.IPv4Address(ipv4) in embedded_ipv4s(address)
    if not form.startswith("local"):  # a local prefix may read as several; one is named
        assert f"as IPv4 inside IPv6 ({ipv4}," in reason


@pytest.mark.parametrize(
    ("address", "inner"),
    [
        ("::ffff:0:127.0.0.1", "127.0.0.1"),  # the issue's http://[::ffff:0:127.0.0.1]/
        ("::ffff:0:7f00:1", "127.0.0.1"),
        ("::ffff:0:169.254.169.254", "169.254.169.254"),
        ("64:ff9b:1:a9fe:a9:fe00::", "169.254.169.254"),  # RFC 6052 /48 layout
        ("64:ff9b:1:a9fe:a9:fe00:101:101", "169.254.169.254"),  # the suffix is not the IPv4
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"),  # Teredo, client obfuscated
    ],
)
def test_the_issues_addresses_are_blocked_naming_the_ipv4_inside(address: str, inner: str) -> None:
    reason = blocked_reason(address)
    assert reason is not None
    assert f"({inner}," in reason


@pytest.mark.parametrize("form", ["IPv4-mapped", "IPv4-translated", "NAT64 /96", "6to4"])
def test_a_public_ipv4_inside_ipv6_is_allowed(form: str) -> None:
    address = _forms("93.184.216.34")[form]
    assert blocked_reason(address) is None
    assert embedded_ipv4(address) == ipaddress.IPv4Address("93.184.216.34")


def test_teredo_stays_blocked_even_with_a_public_client() -> None:
    # 2001::/32 is not globally routable itself; the public client must not open it
    reason = blocked_reason(_teredo("65.54.227.120", "93.184.216.34"))
    assert reason == "reserved (not globally routable)"


@given(st.ip_addresses(v=4))
def test_any_internal_ipv4_is_blocked_in_every_embedding(ipv4: ipaddress.IPv4Address) -> None:
    if blocked_reason(ipv4) is None:
        return
    for form, address in _forms(str(ipv4)).items():
        assert blocked_reason(address) is not None, (form, str(address))


def test_an_ip_literal_needs_no_lookup_and_takes_no_time() -> None:
    assert asyncio.run(resolve("[::1]", 80)) == ([ipaddress.IPv6Address("::1")], 0.0)
