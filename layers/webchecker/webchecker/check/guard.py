"""The SSRF guard: which resolved addresses a check may never connect to.

The checker resolves a host name once, asks :func:`blocked_reason` about every address the
resolver returned, and connects to an address it has just checked (never a second lookup
that DNS could answer differently). This module is the address decision alone: pure
functions, no I/O except :func:`resolve`, which asks the operating system's resolver the
way a connection would (so ``2130706433`` and ``0177.0.0.1`` both come back as
``127.0.0.1``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Sequence
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Checked in order: the first match names the reason. Narrow entries come before the wide
# ranges that contain them (the metadata address before link-local).
_BLOCKED_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("169.254.169.254/32"), "cloud metadata service"),
    (_V4("169.254.170.2/32"), "cloud metadata service (ECS task credentials)"),
    (_V4("0.0.0.0/8"), "unspecified ('this network')"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("10.0.0.0/8"), "private network"),
    (_V4("172.16.0.0/12"), "private network"),
    (_V4("192.168.0.0/16"), "private network"),
    (_V4("100.64.0.0/10"), "shared address space (carrier-grade NAT)"),
    (_V4("169.254.0.0/16"), "link-local"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("255.255.255.255/32"), "broadcast"),
    (_V4("240.0.0.0/4"), "reserved"),
)
_BLOCKED_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("fd00:ec2::254/128"), "cloud metadata service"),
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("fe80::/10"), "link-local"),
    (_V6("fc00::/7"), "unique local (private network)"),
    (_V6("fec0::/10"), "site-local (private network)"),
    (_V6("ff00::/8"), "multicast"),
)

# IPv6 forms that carry an IPv4 address the packet may end up at.
_NAT64_WELL_KNOWN = _V6("64:ff9b::/96")  # RFC 6052: the IPv4 address in the last 32 bits
_NAT64_LOCAL = _V6("64:ff9b:1::/48")  # RFC 8215: a local prefix of /48 to /96 inside it
_TEREDO = _V6("2001::/32")
# RFC 6052 section 2.2: where the 32 IPv4 bits sit for each NAT64 prefix length, as byte
# ranges of the IPv6 address (byte 8, bits 64-71, is always zero and is skipped). A local
# prefix may have any of the lengths that fit in 64:ff9b:1::/48; which one the network
# uses is not knowable from here, so every reading is judged.
_RFC6052_LAYOUTS = {
    48: ((6, 8), (9, 11)),
    56: ((7, 8), (9, 12)),
    64: ((9, 13),),
    96: ((12, 16),),
}
_IPV4_TRANSLATED = 0xFFFF0000  # ::ffff:0:a.b.c.d (RFC 2765): the top 96 bits


def embedded_ipv4s(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """Every IPv4 address that ``address`` may carry a packet to.

    IPv4-mapped (``::ffff:0:0/96``), IPv4-translated (``::ffff:0:0:0/96``),
    IPv4-compatible (``::a.b.c.d``), 6to4 (``2002::/16``), Teredo (``2001::/32``: the
    client's address, and the server's), NAT64 (``64:ff9b::/96``, and ``64:ff9b:1::/48``
    read with every RFC 6052 layout that fits in it). Empty for other addresses.
    """
    return tuple(ipv4 for ipv4, _ in _embedded(address))


def _embedded(
    address: ipaddress.IPv6Address,
) -> tuple[tuple[ipaddress.IPv4Address, str], ...]:
    """``embedded_ipv4s`` with, for each address, the form it was read from."""
    value = int(address)
    high = value >> 32
    if address.ipv4_mapped is not None:
        return ((address.ipv4_mapped, "IPv4-mapped"),)
    if high == _IPV4_TRANSLATED:
        return ((ipaddress.IPv4Address(value & 0xFFFFFFFF), "IPv4-translated"),)
    if address.sixtofour is not None:
        return ((address.sixtofour, "6to4"),)
    if address in _TEREDO and address.teredo is not None:
        server, client = address.teredo
        return ((client, "Teredo client"), (server, "Teredo server"))
    if address in _NAT64_WELL_KNOWN:
        return ((ipaddress.IPv4Address(value & 0xFFFFFFFF), "NAT64"),)
    if address in _NAT64_LOCAL:
        packed = address.packed
        return tuple(
            (
                ipaddress.IPv4Address(b"".join(packed[start:stop] for start, stop in spans)),
                f"local-use NAT64 read as a /{length} prefix",
            )
            for length, spans in _RFC6052_LAYOUTS.items()
        )
    # IPv4-compatible (::a.b.c.d, deprecated): still routed as IPv4 by some stacks.
    if high == 0 and value > 1:
        return ((ipaddress.IPv4Address(value), "IPv4-compatible"),)
    return ()


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The (first) IPv4 address inside an IPv6 address that embeds one; see
    :func:`embedded_ipv4s`."""
    inner = embedded_ipv4s(address)
    return inner[0] if inner else None


def blocked_reason(address: IPAddress | str) -> str | None:
    """Why a check must not connect to ``address``, or None when it may.

    Covers loopback, private and unique-local ranges, shared (carrier-grade NAT) space,
    link-local including the cloud metadata addresses, multicast, broadcast, unspecified and
    every other range that is not globally routable; IPv6 forms that embed an IPv4 address
    are blocked when any IPv4 address they may lead to is (Teredo, not globally routable
    itself, stays blocked whatever it embeds).
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded(ip)
        for ipv4, form in inner:
            reason = blocked_reason(ipv4)
            if reason:
                return f"{reason}, as IPv4 inside IPv6 ({ipv4}, {form})"
        if inner and ip not in _TEREDO:
            return None  # judged by the public IPv4 address it carries
        for network6, reason in _BLOCKED_V6:
            if ip in network6:
                return reason
    else:
        for network4, reason in _BLOCKED_V4:
            if ip in network4:
                return reason
    # Documentation, benchmarking, protocol-assignment ranges and the like: never a website.
    if not ip.is_global:
        return "reserved (not globally routable)"
    return None


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def first_blocked(
    addresses: Sequence[IPAddress], *, allowed: Sequence[IPNetwork] = ()
) -> tuple[IPAddress, str] | None:
    """The first address in ``addresses`` that is blocked, with the reason.

    ``allowed`` lists internal networks that are explicitly permitted (an operator's
    exception for one internal service, not a way to open everything).
    """
    for address in addresses:
        if any(address in network for network in allowed):
            continue
        reason = blocked_reason(address)
        if reason is not None:
            return address, reason
    return None


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """Comma-separated networks in CIDR form (``10.1.2.0/24, fd00::/64``); raises ValueError."""
    return tuple(
        ipaddress.ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip()
    )


def literal_address(host: str) -> IPAddress | None:
    """``host`` as an address when it is a canonical IP literal (brackets allowed), else None."""
    if ":" not in host and not host[-1:].isdigit():
        return None  # a name (an IPv4 literal ends in a digit): no exception to raise and catch
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve(host: str, port: int) -> tuple[list[IPAddress], float]:
    """Every address the operating system's resolver gives for ``host``, in its order, and
    how long the lookup took (seconds, timed in the thread that made it: the hand-offs to
    and from the event loop are the checker's delays, not the resolver's).

    Canonical IP literals skip the resolver; anything else (names, and the numeric forms
    the C library also accepts, such as ``2130706433`` or ``0177.0.0.1``) goes through
    ``getaddrinfo``, exactly as a plain connection would. Raises ``socket.gaierror``.
    """
    literal = literal_address(host)
    if literal is not None:
        return [literal], 0.0
    infos, seconds = await asyncio.get_running_loop().run_in_executor(
        None, _timed_getaddrinfo, host, port
    )
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        # Scoped IPv6 addresses come back as "fe80::1%eth0": the scope is not part of it.
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    return addresses, seconds


def _timed_getaddrinfo(host: str, port: int) -> tuple[list[Any], float]:
    started = time.perf_counter()
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return infos, time.perf_counter() - started
