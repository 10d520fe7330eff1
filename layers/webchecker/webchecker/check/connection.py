"""One fresh connection per check: resolve once, guard, connect to the address just checked.

A :class:`Connection` is a non-blocking socket driven by the event loop's reader and
writer callbacks, with TLS done by an ``ssl.SSLObject`` over memory buffers. It replaces
asyncio's streams and SSL transport, which cost about as much CPU per check as the TLS
handshake itself (a transport, a protocol, a stream reader and writer, and the pure-Python
SSL protocol's buffers and callbacks per connection): here the socket stays registered
for reading until it is closed, each readiness event reads what arrived straight into the
TLS layer and wakes the check if it waits, and the handshake's last message leaves in the
same segment as the request. It also records the timing phases (DNS, connect, TLS, time
to first byte) and the certificate's expiry.

Times are the site's, not the checker's: a check's clock (:class:`CheckClock`) runs only
while the check waits on the network. Each round trip counts from the moment a message
leaves to the moment the last byte of its answer reached this machine, as the kernel stamps
it (``SO_TIMESTAMPNS``), whenever the check then gets to read it; a connect counts the SYN's
round trip as the kernel measured it (``TCP_INFO``). So the checker's own work (its TLS
computations) and its own delays (a CPU quota used up, other checks on the event loop, a
garbage collection) are not reported as the site's slowness. The name lookup, done by the C
library in a thread, counts as that thread timed it. Deadlines stay on the wall clock.

Opening a connection is where the SSRF guard applies: the host is resolved once, every
address is judged by :mod:`webchecker.check.guard`, and the socket goes to an address that
was judged. TLS verification and SNI use the host name, so certificates are checked
exactly as for a normal connection. Redirects call :func:`open_connection` again, so
every hop is guarded.

Failures raise :class:`CheckFailure` carrying the error kind of the message schema.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from webchecker.check import guard

# Bytes taken per socket read (below malloc's mmap threshold, so no syscalls to allocate),
# and per TLS read (one record holds at most 16 KiB).
_READ_SIZE = 64 * 1024
_TLS_READ_SIZE = 16 * 1024

# The kernel's clocks of a check, Linux only: receive timestamps (asm-generic and x86
# values; Python 3.11 does not name them) and the connect's round trip from struct tcp_info
# (where it keeps the round-trip time and the retransmissions, in µs).
_KERNEL_CLOCKS = sys.platform == "linux"
_SO_TIMESTAMPNS = 35
_ANCILLARY_SIZE = socket.CMSG_SPACE(16) if _KERNEL_CLOCKS else 0
_TCP_INFO_SIZE = 104
_RECEIVE_BUFFER = 256 * 1024
_TCPI_RTT = 68
_TCPI_TOTAL_RETRANS = 100


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


class CheckClock:
    """A check's time on the network, in ``time.perf_counter()`` seconds.

    A round trip opens when a message is :meth:`sent` and runs to the latest
    :meth:`arrived` answer byte; the next message closes it. :meth:`now` is the network
    time so far: closed round trips, :meth:`add`-ed waits, and the open round trip up to
    its latest arrival.
    """

    __slots__ = ("_arrived_at", "_closed", "_sent_at")

    def __init__(self) -> None:
        self._closed = 0.0
        self._sent_at: float | None = None
        self._arrived_at: float | None = None

    def now(self) -> float:
        if self._sent_at is None or self._arrived_at is None:
            return self._closed
        return self._closed + (self._arrived_at - self._sent_at)

    def ms_since(self, started: float) -> float:
        """Milliseconds of network time since ``started`` (a :meth:`now` value)."""
        return round((self.now() - started) * 1000.0, 3)

    def add(self, seconds: float) -> None:
        """A wait timed as a whole (a name lookup, a connect)."""
        self._close()
        self._closed += max(0.0, seconds)

    def sent(self, at: float) -> float:
        """A message left at ``at``; returns the network time until then."""
        self._close()
        self._sent_at = at
        return self._closed

    def arrived(self, at: float) -> None:
        sent_at = self._sent_at
        if sent_at is not None:
            self._arrived_at = max(at, sent_at)

    def _close(self) -> None:
        self._closed = self.now()
        self._sent_at = self._arrived_at = None


class Connection:
    """A connected socket, with TLS once :meth:`start_tls` returned, for one exchange.

    Time limits come from the caller's single deadline around the whole check
    (``asyncio.timeout``); :meth:`close` must be called in every case (it unregisters
    the socket from the event loop).
    """

    __slots__ = (
        "_clock",
        "_eof",
        "_error",
        "_fd",
        "_incoming",
        "_loop",
        "_outgoing",
        "_plain",
        "_sent_at",
        "_sock",
        "_tls",
        "_waiter",
        "phases",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        phases: Phases,
        clock: CheckClock,
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self.phases = phases
        self._clock = clock
        self._tls: ssl.SSLObject | None = None
        self._incoming: ssl.MemoryBIO | None = None  # bytes for the TLS layer to decrypt
        self._outgoing = ssl.MemoryBIO()  # bytes the TLS layer wants sent
        self._plain: list[bytes] = []  # received bytes when there is no TLS layer
        self._waiter: asyncio.Future[None] | None = None
        self._eof = False
        self._error: OSError | None = None
        self._sent_at: float | None = None
        loop.add_reader(self._fd, self._on_readable)

    def _on_readable(self) -> None:
        # Level-triggered: called once per loop iteration while bytes are waiting. Each
        # call reads what is there, so a check that reads a long body still lets the
        # other checks run between two reads.
        ancillary: list[tuple[int, int, bytes]] = []
        try:
            data, ancillary, _flags, _address = self._sock.recvmsg(_READ_SIZE, _ANCILLARY_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._error = error
            data = b""
        if data:
            self._clock.arrived(_arrival(ancillary))
            if self._incoming is not None:
                self._incoming.write(data)
            else:
                self._plain.append(data)
        else:
            self._eof = True
            self._loop.remove_reader(self._fd)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        """Until more bytes, the end of the stream or an error arrived."""
        waiter = self._waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        """The TLS handshake; its last message is sent with the first :meth:`send`."""
        phases = self.phases
        phases.phase = "TLS handshake"
        started = self._clock.now()
        incoming = ssl.MemoryBIO()
        if self._plain:  # nothing is expected before the handshake, but nothing is lost
            incoming.write(b"".join(self._plain))
            self._plain.clear()
        self._incoming = incoming
        tls = context.wrap_bio(incoming, self._outgoing, server_hostname=server_hostname)
        try:
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    pending = self._outgoing.read()
                    if pending:
                        await self._send_raw(pending)
                    if self._eof:
                        lost = self._error or ConnectionError("the server closed the connection")
                        raise lost from None
                    await self._wait()
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
                f"{describe_os_error(error)}",
            ) from error
        self._tls = tls
        phases.tls_ms = self._clock.ms_since(started)
        # getpeercert() decodes only a verified certificate: unverified sites report no expiry.
        if context.verify_mode != ssl.CERT_NONE:
            phases.tls_cert_expires_at = _certificate_expiry(tls.getpeercert())

    async def send(self, data: bytes) -> None:
        """Sends ``data`` (encrypted, after the handshake's last message, with TLS)."""
        try:
            if self._tls is not None:
                self._tls.write(data)  # ssl.SSLError (an OSError) after a fatal alert
                data = self._outgoing.read()
            sent_at = await self._send_raw(data)
        except OSError as error:
            raise self._lost(error) from error
        if self._sent_at is None:
            self._sent_at = sent_at

    async def _send_raw(self, data: bytes) -> float:
        """Sends ``data``; returns the check's network time when it left."""
        sent_at = self._clock.sent(time.perf_counter())
        try:
            sent = self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent < len(data):  # the socket buffer is full: let the loop wait for room
            await self._loop.sock_sendall(self._sock, memoryview(data)[sent:])
        return sent_at

    async def recv(self) -> bytes:
        """The next bytes received (decrypted with TLS); ``b""`` at the end of the stream.

        An end without TLS's close_notify counts as an end: the HTTP framing tells
        whether the response was complete.
        """
        tls = self._tls
        while True:
            data: bytes | None = None
            if tls is not None:
                try:
                    data = tls.read(_TLS_READ_SIZE)
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLZeroReturnError:  # close_notify
                    data = b""
                except ssl.SSLError as error:
                    raise self._lost(error) from error
            elif self._plain:
                plain = self._plain
                data = plain[0] if len(plain) == 1 else b"".join(plain)
                plain.clear()
            if data is not None:
                if data and self.phases.ttfb_ms is None and self._sent_at is not None:
                    self.phases.ttfb_ms = self._clock.ms_since(self._sent_at)
                return data
            if self._eof:
                if self._error is not None:
                    raise self._lost(self._error)
                return b""
            await self._wait()

    def _lost(self, error: OSError) -> CheckFailure:
        return CheckFailure(
            "invalid_response",
            f"connection lost while {self.phases.phase}: {describe_os_error(error)}",
        )

    def close(self) -> None:
        """Closes at once: no TLS close_notify exchange (the check is over, the server
        may hang)."""
        if not self._eof:
            self._eof = True
            self._loop.remove_reader(self._fd)
        self._sock.close()


async def open_connection(
    host: str,
    port: int,
    *,
    phases: Phases,
    clock: CheckClock,
    allow_private: bool,
    allowed_networks: tuple[guard.IPNetwork, ...] = (),
    ssl_context: ssl.SSLContext | None,
) -> Connection:
    """Resolves ``host`` once, refuses blocked addresses, connects, and starts TLS if asked.

    Every resolved address is judged before any connection: if one is blocked the check is
    refused (a name that answers with both public and internal addresses is not trusted).
    The addresses are tried in the resolver's order.
    """
    phases.phase = "resolving the host name"
    started = clock.now()
    try:
        addresses, lookup = await guard.resolve(host, port)
    except (socket.gaierror, UnicodeError) as error:
        raise CheckFailure("dns", f"cannot resolve {host}: {_describe_gai_error(error)}") from error
    clock.add(lookup)
    phases.dns_ms = clock.ms_since(started)
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
    started = clock.now()
    loop = asyncio.get_running_loop()
    last_error: OSError | None = None
    for address in addresses:
        attempt = time.perf_counter()
        try:
            sock = await _connect(loop, address, port)
        except OSError as error:
            clock.add(time.perf_counter() - attempt)  # a failed attempt is waited for too
            last_error = error
            continue
        clock.add(_connect_time(sock, time.perf_counter() - attempt))
        phases.connect_ms = clock.ms_since(started)
        phases.address = str(address)
        connection = Connection(loop, sock, phases, clock)
        if ssl_context is None:
            return connection
        try:
            await connection.start_tls(ssl_context, host.strip("[]"))
        except BaseException:
            connection.close()
            raise
        return connection
    assert last_error is not None
    shown = ", ".join(map(str, addresses))
    raise CheckFailure(
        "connect",
        f"cannot connect to {host} port {port} ({shown}): {describe_os_error(last_error)}",
    ) from last_error


async def _connect(
    loop: asyncio.AbstractEventLoop, address: guard.IPAddress, port: int
) -> socket.socket:
    """A non-blocking TCP socket connected to ``address`` (raises OSError).

    ``address`` is an IP address, so the event loop resolves nothing again.
    """
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        if _KERNEL_CLOCKS:
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        # A receive window that holds most bodies whole (set before the SYN, which carries
        # the window scale): the site's bytes need not wait for a throttled checker to read
        # them, which would stretch the transfer and the site's time with it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
        await loop.sock_connect(sock, (str(address), port))
    except BaseException:
        sock.close()
        raise
    # No TCP_NODELAY: every request leaves in one send, when nothing is unacknowledged.
    return sock


def _arrival(ancillary: list[tuple[int, int, bytes]]) -> float:
    """When the bytes just read reached this machine, on ``time.perf_counter()``'s scale:
    the kernel's stamp, or now when there is none (never later than now)."""
    now = time.perf_counter()
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack_from("@qq", data)
            stamped = float(seconds) + float(nanoseconds) * 1e-9
            return min(now, now - (time.time() - stamped))
    return now


def _connect_time(sock: socket.socket, waited: float) -> float:
    """A connect's network time: the SYN's round trip as the kernel measured it, or the
    whole wait when a segment was retransmitted (that wait is the network's) or when the
    kernel says nothing."""
    if not _KERNEL_CLOCKS:
        return waited
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
    except OSError:
        return waited
    if len(info) < _TCP_INFO_SIZE:
        return waited
    (rtt_us,) = struct.unpack_from("@I", info, _TCPI_RTT)
    (retransmitted,) = struct.unpack_from("@I", info, _TCPI_TOTAL_RETRANS)
    if retransmitted or not rtt_us:
        return waited
    return min(waited, float(rtt_us) / 1e6)


def _certificate_expiry(certificate: object) -> datetime | None:
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


def describe_os_error(error: BaseException) -> str:
    """A short lower-case text for a socket or TLS error, for an ``error_detail``."""
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
