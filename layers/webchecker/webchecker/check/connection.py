"""One fresh connection per check: resolve once, guard, connect to the address just checked.

The checker speaks HTTP/1.1 with httpcore (httpx's transport layer) over the
:class:`CheckStream` below, a small asyncio implementation of httpcore's network stream
that also records the timing phases (DNS, connect, TLS, time to first byte) and the TLS
certificate's expiry. Opening a stream is where the SSRF guard applies: the host is
resolved once, every address is judged by :mod:`webchecker.check.guard`, and the socket goes to
an address that was judged. TLS verification and SNI use the host name, so certificates
are checked exactly as for a normal connection. Redirects call :func:`open_stream` again,
so every hop is guarded.

Failures here raise :class:`CheckFailure` carrying the error kind of the message schema.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpcore

from webchecker.check import guard


class CheckFailure(Exception):
    """A check failed before a usable response: ``kind`` is the message's ``error``."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass(slots=True)
class Phases:
    """Timings of one connection in milliseconds, and what the server's certificate says.

    ``phase`` names the step in progress, for a timeout's ``error_detail``.
    """

    phase: str = "starting"
    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    ttfb_ms: float | None = None
    tls_cert_expires_at: datetime | None = None
    address: str | None = None


class CheckStream(httpcore.AsyncNetworkStream):
    """An httpcore network stream on asyncio streams, timing its first request and response.

    Time limits come from the caller's single deadline around the whole check
    (``asyncio.timeout``), so the per-operation ``timeout`` arguments are not used.
    """

    __slots__ = ("_phases", "_reader", "_request_started", "_writer")

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, phases: Phases
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._phases = phases
        self._request_started: float | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        try:
            data = await self._reader.read(max_bytes)
        except (OSError, ssl.SSLError) as error:
            raise httpcore.ReadError(_describe_os_error(error)) from error
        if self._phases.ttfb_ms is None and self._request_started is not None:
            self._phases.ttfb_ms = _ms_since(self._request_started)
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        if self._request_started is None:
            self._request_started = time.perf_counter()
        try:
            self._writer.write(buffer)
            await self._writer.drain()
        except (OSError, ssl.SSLError) as error:
            raise httpcore.WriteError(_describe_os_error(error)) from error

    async def aclose(self) -> None:
        # No graceful TLS close_notify exchange: the check is over, the server may hang.
        self._writer.transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
    ) -> CheckStream:
        phases = self._phases
        phases.phase = "TLS handshake"
        started = time.perf_counter()
        try:
            await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except ssl.SSLCertVerificationError as error:
            raise CheckFailure(
                "tls", f"certificate of {server_hostname} not accepted: {error.verify_message}"
            ) from error
        except ssl.SSLError as error:
            raise CheckFailure(
                "tls", f"TLS handshake with {server_hostname} failed: {error.reason or error}"
            ) from error
        except OSError as error:
            raise CheckFailure(
                "tls",
                f"connection lost during the TLS handshake with {server_hostname}: "
                f"{_describe_os_error(error)}",
            ) from error
        phases.tls_ms = _ms_since(started)
        # asyncio decoded the certificate once after the handshake (verified ones only):
        # reuse it rather than calling getpeercert() a second time.
        phases.tls_cert_expires_at = _certificate_expiry(self._writer.get_extra_info("peercert"))
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # asked by connection pools only; a check never reuses
            return self._reader.at_eof()
        return self._writer.get_extra_info(info)


async def open_stream(
    host: str,
    port: int,
    *,
    phases: Phases,
    allow_private: bool,
    allowed_networks: tuple[guard.IPNetwork, ...] = (),
    ssl_context: ssl.SSLContext | None,
) -> CheckStream:
    """Resolves ``host`` once, refuses blocked addresses, connects, and starts TLS if asked.

    Every resolved address is judged before any connection: if one is blocked the check is
    refused (a name that answers with both public and internal addresses is not trusted).
    The addresses are tried in the resolver's order.
    """
    phases.phase = "resolving the host name"
    started = time.perf_counter()
    try:
        addresses = await guard.resolve(host, port)
    except (socket.gaierror, UnicodeError) as error:
        raise CheckFailure("dns", f"cannot resolve {host}: {_describe_gai_error(error)}") from error
    phases.dns_ms = _ms_since(started)
    if not addresses:
        raise CheckFailure("dns", f"cannot resolve {host}: no addresses")
    if not allow_private:
        blocked = guard.first_blocked(addresses, allowed=allowed_networks)
        if blocked is not None:
            address, reason = blocked
            shown = "" if str(address) == host.strip("[]") else f" resolves to {address}, which"
            raise CheckFailure(
                "blocked",
                f"{host}{shown} is a {reason} address; refused before connecting "
                "(set CHECKER_ALLOW_PRIVATE_TARGETS=true to allow internal targets)",
            )
    phases.phase = "connecting"
    started = time.perf_counter()
    last_error: OSError | None = None
    for address in addresses:
        try:
            reader, writer = await asyncio.open_connection(str(address), port)
        except OSError as error:
            last_error = error
            continue
        phases.connect_ms = _ms_since(started)
        phases.address = str(address)
        stream = CheckStream(reader, writer, phases)
        if ssl_context is None:
            return stream
        try:
            return await stream.start_tls(ssl_context, server_hostname=host.strip("[]"))
        except BaseException:
            await stream.aclose()
            raise
    assert last_error is not None
    shown = ", ".join(map(str, addresses))
    raise CheckFailure(
        "connect",
        f"cannot connect to {host} port {port} ({shown}): {_describe_os_error(last_error)}",
    ) from last_error


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


def _certificate_expiry(certificate: object) -> datetime | None:
    # getpeercert() only decodes a verified certificate; unverified sites report no expiry.
    not_after = certificate.get("notAfter") if isinstance(certificate, dict) else None
    if not isinstance(not_after, str):
        return None
    return _parse_cert_time(not_after)


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _parse_cert_time(text: str) -> datetime | None:
    """OpenSSL's ``"Jan  5 09:34:43 2026 GMT"``; ssl.cert_time_to_seconds() does the same
    with strptime, about 25 µs per check (a twentieth of the Python time of a check)."""
    try:
        month, day, clock, year, zone = text.split()
        hour, minute, second = clock.split(":")
        if zone != "GMT":
            raise ValueError(zone)
        return datetime(
            int(year),
            _MONTHS.index(month) + 1,
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=UTC,
        )
    except ValueError:
        try:  # anything unusual: the standard library's parser decides
            return datetime.fromtimestamp(ssl.cert_time_to_seconds(text), UTC)
        except ValueError:
            return None


def _describe_os_error(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror[0].lower() + error.strerror[1:]
    return str(error) or type(error).__name__


def _describe_gai_error(error: BaseException) -> str:
    if isinstance(error, socket.gaierror) and error.strerror:
        return error.strerror[0].lower() + error.strerror[1:]
    return str(error) or type(error).__name__
