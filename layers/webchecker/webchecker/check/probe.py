"""Checking sites: one HTTP check of one site, and many checks at once, bounded.

A check opens a fresh connection (:mod:`webchecker.check.connection`: resolved once, guarded,
timed), sends the site's request and reads the response with :mod:`webchecker.check.http11`,
follows redirects itself (each hop on a new, guarded connection), reads the body only up
to the cap, and judges the response.
One deadline, the site's ``timeout``, covers everything from the name lookup to the last
byte read. The outcome is a :class:`~webchecker.results.CheckResult`; a check never
raises.

Error precedence (DESIGN.md): no response (``dns``, ``connect``, ``tls``, ``timeout``,
``blocked``, and ``invalid_response`` or ``other`` when the exchange broke), then
``status``, then ``regex`` (``too_large`` when the regex was not found in the capped part
of a longer body). ``regex_matched`` is recorded whenever a body was read, whatever the
status, so a result shows every condition's outcome.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import functools
import logging
import math
import ssl
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import SplitResult, quote, urljoin, urlsplit

import httpx

from webchecker.check.connection import (
    CheckClock,
    CheckFailure,
    Connection,
    Phases,
    open_connection,
)
from webchecker.check.guard import IPNetwork, parse_networks
from webchecker.check.http11 import (
    RequestError,
    Response,
    ResponseError,
    ResponseReader,
    encode_request,
)
from webchecker.config import env_bool, env_float, env_int, env_optional, env_str
from webchecker.exceptions import ConfigurationError
from webchecker.results import CheckResult, truncate_detail
from webchecker.sites import Site, redact_url

logger = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 100
DEFAULT_STARTS_PER_SECOND = 0.0  # 0: every check of an invocation starts at once
# However low the rate, one invocation's starts never spread over more than this: every
# invocation stays within the checker's Timeout (template.yaml) and near its tick.
MAX_SPREAD_SECONDS = 45.0
# CPU-budget pacing (CHECKER_CPU_BUDGET): a start waits while the process used more than
# this fraction of its CPU share over the last CPU_WINDOW_SECONDS, so bursts of TLS
# handshakes do not run out the cgroup quota (which shows as timing error); 0: no pacing.
DEFAULT_CPU_BUDGET = 0.0  # off until measured at the default memory (notes/pacing.md)
CPU_WINDOW_SECONDS = 0.3
CPU_POLL_SECONDS = 0.02
# Lambda's CPU share is memory / 1,769 MB of a core (AWS_LAMBDA_FUNCTION_MEMORY_SIZE).
FULL_CORE_MB = 1769
# Pacing delays all later starts of an invocation by at most this much in total, so the
# last start stays within MAX_SPREAD_SECONDS + this (75 s); with a site's largest timeout
# (60 s) and the producer's delivery timeout (30 s) that is within the checker's Timeout
# (180 s, template.yaml). Past the cap the starts go on at the plain rate.
MAX_PACING_SECONDS = 30.0
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_REDIRECTS = 10
DEFAULT_USER_AGENT = "Webchecker/0.1 (website availability monitor)"

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Credentials set for one origin are not sent to another one after a redirect.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
# Characters left as they are when a URL's path and query go on the request line.
_TARGET_SAFE = "/?:@!$&'()*+,;=%~[]"


@dataclass(frozen=True, kw_only=True)
class ProbeSettings:
    """How the checker checks; built once per container with :meth:`from_env`."""

    concurrency: int = DEFAULT_CONCURRENCY
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    allow_private_targets: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    user_agent: str = DEFAULT_USER_AGENT
    ca_bundle: str | None = None
    region: str | None = None
    # Checks of one invocation start at most this many per second, so a small CPU share is
    # never asked for all the TLS handshakes at once (bench_realistic); 0: all at once.
    starts_per_second: float = DEFAULT_STARTS_PER_SECOND
    # Fraction of the CPU share a start may find used (see CpuPacer); 0: no pacing.
    cpu_budget: float = DEFAULT_CPU_BUDGET
    # The process's CPU share in cores (Lambda: memory / 1,769 MB); 0: unknown, no pacing.
    cpu_share: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.cpu_budget <= 1.0:  # also refuses NaN
            raise ConfigurationError(f"cpu_budget must be between 0 and 1, got {self.cpu_budget}")
        if not 0.0 <= self.cpu_share < math.inf:
            raise ConfigurationError(
                f"cpu_share must be a finite number >= 0, got {self.cpu_share}"
            )
        if not 0.0 <= self.starts_per_second <= 10_000.0:  # also refuses NaN
            raise ConfigurationError(
                f"starts_per_second must be between 0 and 10000, got {self.starts_per_second}"
            )
        if self.concurrency < 1:
            raise ConfigurationError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.max_body_bytes < 0:
            raise ConfigurationError(f"max_body_bytes must be >= 0, got {self.max_body_bytes}")
        if self.max_redirects < 0:
            raise ConfigurationError(f"max_redirects must be >= 0, got {self.max_redirects}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProbeSettings:
        """Settings from ``CHECKER_*`` variables and ``AWS_REGION``; errors name the variable."""
        ca_bundle = env_optional("CHECKER_CA_BUNDLE", env)
        if ca_bundle is not None:
            try:
                ssl.create_default_context(cafile=ca_bundle)
            except (OSError, ssl.SSLError) as error:
                raise ConfigurationError(
                    f"CHECKER_CA_BUNDLE={ca_bundle!r}: not a readable PEM bundle ({error})"
                ) from None
        raw_networks = env_str("CHECKER_ALLOWED_NETWORKS", "", env)
        try:
            allowed_networks = parse_networks(raw_networks)
        except ValueError as error:
            raise ConfigurationError(
                f"CHECKER_ALLOWED_NETWORKS={raw_networks!r}: {error} "
                "(expected comma-separated networks such as 10.1.2.0/24)"
            ) from None
        starts_per_second = env_float(
            "CHECKER_STARTS_PER_SECOND",
            DEFAULT_STARTS_PER_SECOND,
            env,
            minimum=0.0,
            maximum=10_000.0,
        )
        # Lambda sets the memory; locally it is absent and nothing is paced.
        memory_mb = env_int("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 0, env, minimum=0, maximum=10_240)
        return cls(
            concurrency=env_int(
                "CHECKER_CONCURRENCY", DEFAULT_CONCURRENCY, env, minimum=1, maximum=10_000
            ),
            max_body_bytes=env_int(
                "CHECKER_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, env, minimum=0
            ),
            allow_private_targets=env_bool("CHECKER_ALLOW_PRIVATE_TARGETS", False, env),
            allowed_networks=allowed_networks,
            max_redirects=env_int(
                "CHECKER_MAX_REDIRECTS", DEFAULT_MAX_REDIRECTS, env, minimum=0, maximum=50
            ),
            user_agent=env_str("CHECKER_USER_AGENT", DEFAULT_USER_AGENT, env),
            ca_bundle=ca_bundle,
            region=env_optional("AWS_REGION", env),
            starts_per_second=starts_per_second,
            cpu_budget=env_float(
                "CHECKER_CPU_BUDGET", DEFAULT_CPU_BUDGET, env, minimum=0.0, maximum=1.0
            ),
            cpu_share=memory_mb / FULL_CORE_MB,
        )


def start_step(count: int, starts_per_second: float) -> float:
    """Seconds between two starts of one invocation's checks (0: all at once)."""
    if starts_per_second <= 0.0 or count <= 0:
        return 0.0
    return min(1.0 / starts_per_second, MAX_SPREAD_SECONDS / count)


class CpuPacer:
    """Holds a check's start while the process used too much CPU recently.

    ``limit`` is in cores (budget x share): a start waits, polling, while the process's CPU
    time (all its threads, as the cgroup counts it) over about the last ``window`` seconds
    exceeds ``limit`` x the time elapsed. All the holds of one invocation together last at
    most ``max_delay`` seconds (:data:`MAX_PACING_SECONDS`) plus one poll. ``clock``, ``cpu`` and
    ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        limit: float,
        *,
        window: float = CPU_WINDOW_SECONDS,
        max_delay: float = MAX_PACING_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        cpu: Callable[[], float] = time.process_time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_delay = max_delay
        self.clock, self.cpu, self.sleep = clock, cpu, sleep
        self.delayed = 0.0  # seconds of holds so far
        self.holds = 0  # starts held at least once
        self._samples: deque[tuple[float, float]] = deque()

    @classmethod
    def of(cls, settings: ProbeSettings) -> CpuPacer | None:
        """The pacer ``settings`` ask for, or None (no budget or no known share)."""
        limit = settings.cpu_budget * settings.cpu_share
        return cls(limit) if limit > 0.0 else None

    def busy(self) -> bool:
        """Whether the CPU used over the last window exceeds the limit (records a sample)."""
        now, used = self.clock(), self.cpu()
        samples = self._samples
        samples.append((now, used))
        # Keep one sample at least a window old as the reference, drop older ones.
        while len(samples) > 2 and now - samples[1][0] >= self.window:
            samples.popleft()
        then, used_then = samples[0]
        if now - then < self.window / 2:  # too little history to judge: let it start
            return False
        return used - used_then > self.limit * (now - then)

    async def hold(self) -> None:
        """Returns once the CPU used is under the limit or the invocation's delays ran out."""
        held = False
        while self.delayed < self.max_delay and self.busy():
            held = True
            before = self.clock()
            await self.sleep(CPU_POLL_SECONDS)  # may pass the cap by one poll
            self.delayed += self.clock() - before
        self.holds += held


# A check that held its slot this long is remembered as slow (bench_realistic: ~5% of sites).
SLOW_SECONDS = 1.0
MAX_REMEMBERED = 10_000


class SlowSites:
    """Sites whose last check in this container took long, and how long (seconds).

    An invocation lasts until its last check ends: started first, a site that hangs for its
    whole timeout or answers after seconds overlaps the other starts instead of holding the
    invocation after the last one. Bounded (the oldest entry goes first); a site that was
    fast again is forgotten. Advisory only: an empty memory (a cold container, or a site
    this container has not checked yet) leaves the order to the timeouts.
    """

    __slots__ = ("_held", "limit")

    def __init__(self, limit: int = MAX_REMEMBERED) -> None:
        self.limit = limit
        self._held: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._held)

    def held(self, site_id: str) -> float:
        return self._held.get(site_id, 0.0)

    def as_dict(self) -> dict[str, float]:
        return dict(self._held)

    def record(self, site_id: str, seconds: float) -> None:
        self._held.pop(site_id, None)  # re-inserted last: the newest entry
        if seconds >= SLOW_SECONDS:
            self._held[site_id] = seconds
            if len(self._held) > self.limit:
                del self._held[next(iter(self._held))]


# Module state survives between invocations of a warm Lambda container.
RECENT = SlowSites()


def start_order(sites: Sequence[Site], slow: SlowSites) -> list[int]:
    """Indices of ``sites`` in the order their checks start: the longest timeout first
    (a site that never answers holds the invocation that long), then among equal timeouts
    the sites remembered as slow, slowest first; otherwise in the order given."""
    return sorted(range(len(sites)), key=lambda i: (-sites[i].timeout, -slow.held(sites[i].id)))


async def check_sites(
    sites: Sequence[Site],
    *,
    scheduled_at: datetime,
    settings: ProbeSettings,
    slow: SlowSites | None = None,
    seen: SlowSites | None = None,
    pacer: CpuPacer | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
) -> list[CheckResult]:
    """Checks every site, at most ``settings.concurrency`` at a time; results in site order.

    ``on_result`` is called with each result as soon as its check ends (to publish it
    while the other checks go on); it must not raise.

    Checks start in :func:`start_order` (``slow`` defaults to this container's memory,
    :data:`RECENT`, which every check updates; ``seen`` also records this call's slow
    sites, for the scheduler). With ``settings.starts_per_second`` the
    i-th check starts no earlier than ``i / starts_per_second`` after the first one, the
    whole spread capped at ``MAX_SPREAD_SECONDS``: a small shard finishes early, a full
    one is paced. With a CPU budget and share in ``settings`` (or an explicit ``pacer``) a
    start also waits while the process used too much CPU recently (:class:`CpuPacer`);
    that only delays: every later start moves by the time held (no burst to catch up),
    at most ``MAX_PACING_SECONDS`` in all.
    """
    memory = RECENT if slow is None else slow
    paced = CpuPacer.of(settings) if pacer is None else pacer
    gate = asyncio.Lock()  # one worker at a time waits for its start
    results: list[CheckResult | None] = [None] * len(sites)
    pending = enumerate(start_order(sites, memory))
    loop = asyncio.get_running_loop()
    first_start = loop.time()
    step = start_step(len(sites), settings.starts_per_second)

    async def worker() -> None:
        # Workers share one iterator: no semaphore, no task per site.
        for slot, index in pending:
            async with gate:
                delayed = 0.0 if paced is None else paced.delayed
                wait = first_start + slot * step + delayed - loop.time()
                if wait > 0.0:
                    await asyncio.sleep(wait)
                if paced is not None:
                    await paced.hold()
            site = sites[index]
            started = loop.time()
            result = await check_site(site, scheduled_at=scheduled_at, settings=settings)
            held = loop.time() - started
            memory.record(site.id, held)
            if seen is not None:
                seen.record(site.id, held)
            results[index] = result
            if on_result is not None:
                on_result(result)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(settings.concurrency, len(sites))):
            group.create_task(worker())
    return [result for result in results if result is not None]


async def check_site(site: Site, *, scheduled_at: datetime, settings: ProbeSettings) -> CheckResult:
    """Checks one site within its timeout; never raises (failures are in the result)."""
    check = _Check(site, settings)
    checked_at = datetime.now(UTC)
    deadline = asyncio.timeout(site.timeout)
    try:
        async with deadline:
            await check.run()
    except TimeoutError:
        if not deadline.expired():  # a timeout of some inner operation, not ours
            check.fail("other", "operation timed out")
        else:
            check.fail(
                "timeout",
                f"no complete response within {site.timeout:g} s "
                f"(timed out while {check.phases.phase})",
            )
    except CheckFailure as failure:
        check.fail(failure.kind, failure.detail)
    except ResponseError as error:
        check.fail("invalid_response", f"invalid HTTP response: {error}")
    except RequestError as error:
        check.fail("other", f"the request could not be sent: {error}")
    except Exception as error:  # a check must never take the others down
        logger.warning("unexpected error checking %s", site.id, exc_info=True)
        check.fail("other", f"unexpected {type(error).__name__}: {error}")
    return check.result(scheduled_at=scheduled_at, checked_at=checked_at, region=settings.region)


@functools.cache
def _ssl_context(verify: bool, ca_bundle: str | None) -> ssl.SSLContext:
    # Built once per process: loading the CA bundle costs milliseconds.
    context = httpx.create_ssl_context(verify=verify)
    if verify and ca_bundle is not None:
        context.load_verify_locations(cafile=ca_bundle)
    context.set_alpn_protocols(["http/1.1"])
    return context


class _Check:
    """The state of one check while it runs."""

    __slots__ = (
        "body_read",
        "clock",
        "error",
        "error_detail",
        "phases",
        "regex_matched",
        "response_time_ms",
        "settings",
        "site",
        "status_code",
        "too_large",
    )

    def __init__(self, site: Site, settings: ProbeSettings) -> None:
        self.site = site
        self.settings = settings
        self.phases = Phases()
        self.clock = CheckClock()  # the site's time: the checker's own work and delays left out
        self.status_code: int | None = None
        self.response_time_ms: float | None = None
        self.regex_matched: bool | None = None
        self.body_read = False
        self.too_large = False
        self.error: str | None = None
        self.error_detail: str | None = None

    def fail(self, kind: str, detail: str) -> None:
        self.error = kind
        self.error_detail = detail

    async def run(self) -> None:
        site = self.site
        url = site.url
        method = site.method
        body = None if site.body is None else site.body.encode()
        headers = {name.lower(): (name, value) for name, value in site.headers.items()}
        redirects = 0
        while True:
            parts = urlsplit(url)
            self.phases = Phases()  # timings and status are those of the last hop
            self.status_code = None
            connection = await self._connect(parts)
            try:
                request = _build_request(
                    parts, method, headers.values(), body, self.settings.user_agent
                )
                self.phases.phase = "waiting for the response"
                await connection.send(request)
                reader = ResponseReader(connection)
                response = await reader.read_head(method)
                self.status_code = response.status
                location = response.header(b"location")
                if not (
                    site.follow_redirects
                    and response.status in REDIRECT_STATUSES
                    and location is not None
                ):
                    self.phases.phase = "reading the response body"
                    await self._read_body(reader, response)
                    return
            finally:
                connection.close()
            redirects += 1
            if redirects > self.settings.max_redirects:
                raise CheckFailure(
                    "other",
                    f"more than {self.settings.max_redirects} redirects "
                    f"(the last one, {response.status}, points to {location})",
                )
            next_url = _redirect_target(url, location, response.status)
            if _origin_of(next_url) != _origin_of(url):
                headers = {k: v for k, v in headers.items() if k not in _CREDENTIAL_HEADERS}
            if (response.status == 303 and method != "HEAD") or (
                response.status in (301, 302) and method == "POST"
            ):
                method, body = "GET", None
            url = next_url

    async def _connect(self, parts: SplitResult) -> Connection:
        scheme = parts.scheme
        host = parts.hostname
        if not host:
            raise CheckFailure("other", f"URL has no host: {redact_url(parts.geturl())}")
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except (KeyError, ValueError) as error:
            raise CheckFailure(
                "other", f"unusable URL {redact_url(parts.geturl())}: {error}"
            ) from None
        return await open_connection(
            host,
            port,
            phases=self.phases,
            clock=self.clock,
            allow_private=self.settings.allow_private_targets,
            allowed_networks=self.settings.allowed_networks,
            ssl_context=(
                _ssl_context(self.site.verify_tls, self.settings.ca_bundle)
                if scheme == "https"
                else None
            ),
        )

    async def _read_body(self, reader: ResponseReader, response: Response) -> None:
        pattern = self.site.pattern
        # without a regex the bytes are only counted
        body = await reader.read_body(self.settings.max_body_bytes, keep=pattern is not None)
        self.too_large = body.too_large
        self.response_time_ms = self.clock.ms_since(0.0)  # the check's whole network time
        self.body_read = True
        if pattern is not None:
            # RE2 (the site model compiles the regex with it): linear time in the body size,
            # so no pattern and no body can keep the event loop from the other checks
            found = pattern.search(_decode(body.data(), response))
            self.regex_matched = found is not None

    def result(
        self, *, scheduled_at: datetime, checked_at: datetime, region: str | None
    ) -> CheckResult:
        site = self.site
        error, detail = self.error, self.error_detail
        if error is None and self.status_code is not None:
            if not site.expects(self.status_code):
                error = "status"
                detail = (
                    f"status {self.status_code} {_reason(self.status_code)}, expected "
                    f"{_format_expected(site.expected_status)}"
                )
            elif self.regex_matched is False:
                cap = self.settings.max_body_bytes
                if self.too_large:
                    error = "too_large"
                    detail = (
                        f"regex {_shorten(site.regex)} not found in the first {cap} bytes, "
                        f"and the body is longer than that (CHECKER_MAX_BODY_BYTES)"
                    )
                else:
                    error = "regex"
                    detail = f"regex {_shorten(site.regex)} not found in the response body"
        phases = self.phases
        return CheckResult(
            check_id=str(uuid.uuid4()),
            site_id=site.id,
            url=redact_url(site.url),  # the password of user:password@ is never published
            region=region,
            scheduled_at=scheduled_at,
            checked_at=checked_at,
            response_time_ms=self.response_time_ms if self.body_read else None,
            status_code=self.status_code,
            ok=error is None,
            error=error,
            error_detail=None if detail is None else truncate_detail(detail),
            regex_matched=self.regex_matched,
            dns_ms=phases.dns_ms,
            connect_ms=phases.connect_ms,
            tls_ms=phases.tls_ms,
            ttfb_ms=phases.ttfb_ms,
            tls_cert_expires_at=phases.tls_cert_expires_at,
            tags=site.tags,
            failure_threshold=site.failure_threshold,
            success_threshold=site.success_threshold,
            alerts=site.alerts,
        )


def _build_request(
    parts: SplitResult,
    method: str,
    site_headers: Iterable[tuple[str, str]],
    body: bytes | None,
    user_agent: str,
) -> bytes:
    scheme = parts.scheme
    host = parts.hostname or ""
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    port = parts.port or _DEFAULT_PORTS[scheme]
    host_header = f"[{host}]" if ":" in host else host
    if port != _DEFAULT_PORTS[scheme]:
        host_header = f"{host_header}:{port}"
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    if not target.isascii():
        target = quote(target, safe=_TARGET_SAFE)
    headers: dict[str, tuple[str, str]] = {
        "host": ("Host", host_header),
        "user-agent": ("User-Agent", user_agent),
        "accept": ("Accept", "*/*"),
        # The regex is searched in the body as sent: ask for no compression.
        "accept-encoding": ("Accept-Encoding", "identity"),
        "connection": ("Connection", "close"),
    }
    if parts.username is not None:
        credentials = f"{parts.username}:{parts.password or ''}".encode()
        headers["authorization"] = (
            "Authorization",
            "Basic " + base64.b64encode(credentials).decode(),
        )
    for name, value in site_headers:
        headers[name.lower()] = (name, value)
    # The body's framing is the checker's: a site's own Content-Length or
    # Transfer-Encoding could only disagree with the bytes sent.
    headers.pop("transfer-encoding", None)
    headers.pop("content-length", None)
    if body is not None:
        headers["content-length"] = ("Content-Length", str(len(body)))
    return encode_request(method, target, headers.values(), body)


# Codecs that Python can look up but that are no charsets of a body: decoding with them
# fails, or costs more than linear time (punycode). The body is then read as UTF-8.
_NOT_CHARSETS = frozenset({"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined"})


def _charset(response: Response) -> str:
    """The text encoding named by ``Content-Type``; UTF-8 when it names none that is safe
    (unknown, ``base64`` and other bytes-to-bytes codecs, ``idna`` and the like)."""
    content_type = response.header(b"content-type") or ""
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            name = value.strip().strip("\"'")
            try:
                info = codecs.lookup(name)
            except (LookupError, ValueError):  # ValueError: a NUL in the name
                break
            if getattr(info, "_is_text_encoding", True) and info.name not in _NOT_CHARSETS:
                return info.name
            break
    return "utf-8"


def _decode(body: bytes, response: Response) -> str:
    """The body as text for the regex: every text codec decodes 1 MiB in well under 0.1 s
    of CPU (utf-7, the slowest, about 80 ms on this machine)."""
    try:
        return body.decode(_charset(response), errors="replace")
    except (UnicodeError, LookupError, ValueError):  # a codec without "replace" support
        return body.decode("utf-8", errors="replace")


def _redirect_target(url: str, location: str, status: int) -> str:
    """The absolute URL a redirect points to; a ``CheckFailure`` (``other``) saying why
    when it is unusable (not http(s), a malformed host or port such as ``http://[::1/``
    or ``:99999``), never an exception with a traceback."""
    shown = _shorten(location, 200)
    try:
        next_url = urljoin(url, location)
        parts = urlsplit(next_url)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError as error:
        raise CheckFailure(
            "other", f"redirect ({status}) to an unusable URL {shown}: {error}"
        ) from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise CheckFailure("other", f"redirect ({status}) to a URL that is not http(s): {shown}")
    if not parts.hostname:
        raise CheckFailure("other", f"redirect ({status}) to a URL without a host: {shown}")
    return next_url


def _origin_of(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme)


def _reason(status_code: int) -> str:
    return httpx.codes.get_reason_phrase(status_code) or "(non-standard)"


def _format_expected(ranges: Sequence[tuple[int, int]]) -> str:
    return ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


def _shorten(regex: str | None, limit: int = 80) -> str:
    text = repr(regex)
    return text if len(text) <= limit else text[: limit - 3] + "..."
