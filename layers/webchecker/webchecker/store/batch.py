"""Writing a batch of Kafka records into PostgreSQL: validated, idempotent, one transaction.

Per batch:
1. each record's value is validated: the usual message by ``fast_copy_row`` (inline
   checks, straight to its COPY line), anything else by ``CheckResult.from_json``; what
   fails becomes a reject (topic, partition, offset, raw bytes, reason) and never fails
   the batch;
2. valid results are deduplicated by ``check_id`` within the batch (the first one wins),
   and the hourly rollups of the new rows are added up as they pass;
3. one transaction, under a savepoint: ``COPY`` straight into ``checks``. It is all or
   nothing, so when it succeeds every row is new and the rollups of step 2 are exactly
   those of the inserted rows: one upsert adds them. A row already stored (a redelivery,
   the same check under another offset, a concurrent writer) makes it fail with a unique
   violation at that row; then back to the savepoint, and the batch goes the other way:
   ``COPY`` into a session temporary table, one ``INSERT ... ON CONFLICT DO NOTHING
   RETURNING`` into ``checks`` whose returned rows, and only those, feed the rollup
   upsert. Either way a redelivery adds nothing. Rejects are inserted ``ON CONFLICT DO
   NOTHING`` on their Kafka position.

Measured (bench/bench_writer.py, 2 cores, 5,000 rows a batch): a batch that goes the
temporary-table way (the bench's redelivered batch) runs at about 0.45x a raw ``COPY``
(each row is written twice, and inserted speculatively); the direct ``COPY`` with the
rollups from Python runs at the speed of the Python work, about 0.55x raw ``COPY`` (which
only formats rows that are already in memory).
``COPY`` was chosen over one ``jsonb_to_recordset`` parameter (34k rows/s) or ``unnest``
of arrays (27k; pg8000 quotes parameters in pure Python); ``executemany`` is one round
trip per row. The rows are validated while the ``COPY`` streams, so the server parses
one chunk while the next one is validated.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import json
import logging
import math
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pg8000.exceptions
import pg8000.native

from webchecker.exceptions import InvalidMessage
from webchecker.histogram import BOUNDS_MS, BUCKETS
from webchecker.results import (
    ERROR_KINDS,
    MAX_ERROR_DETAIL,
    MAX_MILLISECONDS,
    MAX_REGION,
    MAX_SITE_ID,
    SCHEMA_VERSION,
    CheckResult,
)
from webchecker.sites import (
    MAX_TAGS,
    MAX_THRESHOLD,
    MAX_URL_LENGTH,
    MIN_THRESHOLD,
    TAG_PATTERN,
)
from webchecker.store.database import Database, Statement, quote_identifier, sqlstate
from webchecker.store.incidents import IncidentSettings, IncidentStore, Observation
from webchecker.store.migrations import (
    RetentionSettings,
    ensure_partitions,
    month_start,
    share_partitions,
)
from webchecker.store.msk import KafkaRecord

logger = logging.getLogger(__name__)

#: Columns written for each check, in COPY order (``stored_at`` takes its default).
COLUMNS: tuple[str, ...] = (
    "check_id", "schema", "site_id", "url", "region", "scheduled_at", "checked_at",
    "response_time_ms", "status_code", "ok", "error", "error_detail", "regex_matched",
    "dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "tls_cert_expires_at",
)  # fmt: skip
#: Rows per COPY data message. Small, so that the server starts early and ends soon after
#: the last row is validated: 100 against 500 made 500-row batches ~15% and 5,000-row
#: batches ~20% faster (2 cores, PostgreSQL 16); below 100 the gain stops.
COPY_CHUNK_ROWS = 100
_TEMP_TABLE = "webchecker_incoming"
_UNIQUE_VIOLATION = "23505"
_REJECTS_PER_STATEMENT = 500
_REJECTS_LOGGED = 20
_PARTITIONS_AHEAD_MONTHS = 2  # a clock far in the future lands in the default partition


#: What validation makes of one valid message: ``(check_id, site_id, hour, ok,
#: response_time_ms, COPY line, observation)``, ``hour`` being ``checked_at`` in UTC as
#: ``YYYY-MM-DDTHH`` (what the hourly rollups group by), the observation what the state
#: machine needs (store/incidents.py).
CopyRow = tuple[str, str, str, bool, float | None, str, Observation | None]


@dataclass(frozen=True, kw_only=True)
class Reject:
    topic: str
    partition: int
    offset: int
    raw: bytes | None
    reason: str


@dataclass(frozen=True, kw_only=True)
class BatchOutcome:
    """What happened to one batch; the writer's return value (DESIGN.md)."""

    received: int
    inserted: int
    duplicates: int
    rejected: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class BatchValidator:
    """Validates a batch record by record, as the rows stream into ``COPY``.

    Invalid records become rejects (once per Kafka position); a ``check_id`` seen earlier in
    the batch is dropped (the first one wins) and counted as valid, so that
    ``duplicates = valid - inserted``.
    """

    def __init__(self, *, observe: bool = True) -> None:
        #: keep each new row's ``Observation`` (False: the state machine is off)
        self.observe = observe
        self.received = 0
        self.valid = 0
        self.rejects: dict[tuple[str, int, int], Reject] = {}
        self._seen: set[str] = set()
        #: the new rows' observations, in batch order (the state machine's input)
        self.observations: list[Observation] = []
        # (site_id, hour as "YYYY-MM-DDTHH" in UTC) -> [checks, failures, latencies, histogram]
        self._hours: dict[tuple[str, str], list[Any]] = {}

    @property
    def new_rows(self) -> int:
        """Valid rows, each ``check_id`` once: what goes into ``COPY``."""
        return len(self._seen)

    @property
    def months(self) -> set[date]:
        """The first day of each month that a new row's ``checked_at`` falls in."""
        return {date(int(hour[:4]), int(hour[5:7]), 1) for _, hour in self._hours}

    def hourly(self) -> list[dict[str, Any]]:
        """The hourly rollups of the new rows (what the SQL path computes from ``RETURNING``)."""
        return [
            {
                "site_id": site_id,
                "hour": f"{hour}:00:00Z",
                "checks": checks,
                "failures": failures,
                "latency_count": len(latencies),
                "latency_sum_ms": math.fsum(latencies),
                "latency_min_ms": min(latencies, default=None),
                "latency_max_ms": max(latencies, default=None),
                "latency_histogram": histogram,
            }
            for (site_id, hour), (checks, failures, latencies, histogram) in sorted(
                self._hours.items()
            )
        ]

    def accept(self, record: KafkaRecord) -> CheckResult | None:
        """The record's result if it is valid and new in this batch, else None."""
        self.received += 1
        result = self._parse(record)
        if result is None or self._add(_row_of(result, "")) is None:
            return None
        return result

    def copy_row(self, record: KafkaRecord) -> str | None:
        """The record's ``COPY`` line if it is valid and new in this batch, else None.

        Well-formed messages take ``fast_copy_row``; anything it does not vouch for goes
        through ``CheckResult.from_json``, which accepts or rejects it with its reason.
        """
        self.received += 1
        value = record.value
        row = None if value is None or record.value_error else fast_copy_row(value, self.observe)
        if row is None:
            result = self._parse(record)
            if result is None:
                return None
            row = _row_of(result, copy_line(result))
        return self._add(row)

    def copy_data(
        self, records: Sequence[KafkaRecord], per_chunk: int = COPY_CHUNK_ROWS
    ) -> Iterator[bytes]:
        """COPY data in chunks: pg8000 sends each as it is made, so the server parses one
        chunk while the next one is validated (two cores at work instead of one)."""
        copy_row = self.copy_row
        for start in range(0, len(records), per_chunk):
            lines = [line for line in map(copy_row, records[start : start + per_chunk]) if line]
            if lines:
                yield "".join(lines).encode()

    def _parse(self, record: KafkaRecord) -> CheckResult | None:
        """The record's result, or None after keeping it as a reject."""
        try:
            if record.value_error is not None:
                raise InvalidMessage(record.value_error)
            return CheckResult.from_json(record.value)
        except InvalidMessage as error:
            self.rejects.setdefault(
                record.position,
                Reject(
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    raw=record.value,
                    reason=_bounded_reason(str(error)),
                ),
            )
            return None

    def _add(self, row: CopyRow) -> str | None:
        """Counts a valid row; its line the first time its ``check_id`` is seen, else None."""
        check_id, site_id, hour, ok, latency, line, observation = row
        self.valid += 1
        if check_id in self._seen:
            return None
        self._seen.add(check_id)
        if observation is not None:
            self.observations.append(observation)
        group = self._hours.get((site_id, hour))
        if group is None:
            group = self._hours[site_id, hour] = [0, 0, [], [0] * BUCKETS]
        group[0] += 1
        if not ok:
            group[1] += 1
        if latency is not None:
            group[2].append(float(latency))
            group[3][bisect_right(BOUNDS_MS, latency)] += 1  # = PostgreSQL's width_bucket
        return line


MAX_REASON = 500  # a reason is stored and logged: it names the problem, not the payload


def _bounded_reason(text: str) -> str:
    """A reject reason that fits its column and a log line: short, no NUL, valid UTF-8."""
    if len(text) > MAX_REASON:
        text = text[: MAX_REASON - 1] + "…"
    return text.replace("\x00", "").encode("utf-8", "backslashreplace").decode("utf-8")


def _row_of(result: CheckResult, line: str) -> CopyRow:
    hour = result.checked_at.isoformat()[:13]
    observation = Observation(
        result.check_id,
        result.site_id,
        result.url,
        result.scheduled_at,
        result.checked_at,
        result.ok,
        result.error,
        result.error_detail,
        result.status_code,
        result.tls_cert_expires_at,
        list(result.tags),
        result.failure_threshold,
        result.success_threshold,
        result.alerts,
    )
    return (
        result.check_id,
        result.site_id,
        hour,
        result.ok,
        result.response_time_ms,
        line,
        observation,
    )


def _keeping(chunks: Iterable[bytes], kept: list[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        kept.append(chunk)
        yield chunk


def parse_records(records: Iterable[KafkaRecord]) -> list[CheckResult]:
    """The valid, unique results of a batch (what ``write`` stores)."""
    validator = BatchValidator()
    return [result for result in map(validator.accept, records) if result is not None]


# -- COPY text format --------------------------------------------------------------------
# Written by hand for speed: per row this is about as costly as the COPY itself.

_NULL = "\\N"
_SCHEMA_TEXT = str(SCHEMA_VERSION)
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_SPECIAL = re.compile(r"[\\\t\n\r]")


def _text(value: str | None) -> str:
    if value is None:
        return _NULL
    return value.translate(_ESCAPES) if _SPECIAL.search(value) else value


def _number(value: float | None) -> str:
    return _NULL if value is None else repr(value)


def _moment(value: datetime | None) -> str:
    return _NULL if value is None else value.isoformat()


def _flag(value: bool | None) -> str:
    return _NULL if value is None else ("t" if value else "f")


def copy_line(result: CheckResult) -> str:
    """One row of ``COPY ... FROM STDIN`` (text format) in ``COLUMNS`` order."""
    return (
        f"{result.check_id}\t{SCHEMA_VERSION}\t{_text(result.site_id)}\t{_text(result.url)}\t"
        f"{_text(result.region)}\t{result.scheduled_at.isoformat()}\t"
        f"{result.checked_at.isoformat()}\t{_number(result.response_time_ms)}\t"
        f"{_number(result.status_code)}\t{_flag(result.ok)}\t{_text(result.error)}\t"
        f"{_text(result.error_detail)}\t{_flag(result.regex_matched)}\t{_number(result.dns_ms)}\t"
        f"{_number(result.connect_ms)}\t{_number(result.tls_ms)}\t{_number(result.ttfb_ms)}\t"
        f"{_moment(result.tls_cert_expires_at)}\n"
    )


# -- the fast path ----------------------------------------------------------------------
# ``CheckResult.from_json`` names the field of every failure, which costs a closure and a
# call per field, and ``uuid.UUID`` per row: about 14 us a row, most of the writer's time.
# Here the usual message (canonical UUID, RFC 3339 timestamps, plain JSON types) goes from
# the parsed JSON straight to its COPY line with inline checks. It only ever says "valid"
# (with the same line that ``copy_line(CheckResult.from_json(raw))`` makes) or "not sure"
# (None): everything else, and every reject's reason, comes from ``from_json``.
# tests/unit/test_store_fast_path.py holds the two paths to agreement.

_CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
).fullmatch
# what the checker sends; more than 6 digits would be rounded by PostgreSQL, cut by Python
_UTC_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z"
).fullmatch
_from_isoformat = datetime.fromisoformat


class _NotFast(Exception):
    """The fast path cannot vouch for this message (``from_json`` decides)."""


def _fast_text(value: object) -> str:
    if type(value) is not str or not value:
        raise _NotFast
    if value.isprintable() and "\\" not in value:  # the usual text: nothing to escape
        return value
    if "\x00" in value:
        raise _NotFast
    return value.translate(_ESCAPES) if _SPECIAL.search(value) else value


def _repeated_timestamp(value: object) -> str:
    """``_fast_timestamp`` for values that repeat across a batch: every check of a tick has
    the same ``scheduled_at``, every check of a site the same certificate expiry."""
    text = _cached_timestamp(value) if type(value) is str else None
    if text is None:
        raise _NotFast
    return text


@functools.lru_cache(maxsize=4096)
def _cached_moment(value: str) -> datetime:
    """A repeated timestamp that ``_repeated_timestamp`` accepted, as a datetime in UTC."""
    return _from_isoformat(value).astimezone(UTC)


@functools.lru_cache(maxsize=4096)
def _cached_timestamp(value: str) -> str | None:
    try:
        return _fast_timestamp(value)
    except _NotFast:
        return None


def _fast_timestamp(value: object) -> str:
    """The COPY text of a valid timestamp (in UTC).

    A UTC timestamp of at most microsecond precision goes into COPY as it came (PostgreSQL
    reads the same instant), which spares a conversion and an ``isoformat`` per column.
    """
    if type(value) is not str:
        raise _NotFast
    try:
        moment = _from_isoformat(value)
        if moment.tzinfo is None:
            raise _NotFast
        if _UTC_TIMESTAMP(value):
            return value
        return moment.astimezone(UTC).isoformat()
    except (ValueError, OverflowError):
        raise _NotFast from None


def _fast_milliseconds(value: object) -> str:
    if value is None:
        return _NULL
    if type(value) is float:
        if 0.0 <= value <= MAX_MILLISECONDS:  # NaN fails both comparisons
            return repr(value)
    elif type(value) is int and 0 <= value <= MAX_MILLISECONDS:
        return repr(float(value))
    raise _NotFast


def _fast_flag(value: object) -> str:
    if value is None:
        return _NULL
    if value is True:
        return "t"
    if value is False:
        return "f"
    raise _NotFast


_TAG = TAG_PATTERN.fullmatch


def _fast_site_settings(get: Any) -> bool:
    """Whether the site settings the checker copies into a message (absent in older
    messages) are certainly valid: not stored in ``checks``, but they must not pass here
    when ``from_json`` would reject them."""
    tags = get("tags")
    if tags is not None and (
        type(tags) is not list
        or len(tags) > MAX_TAGS
        or any(type(tag) is not str or not _TAG(tag) for tag in tags)
    ):
        return False
    for name in ("failure_threshold", "success_threshold"):
        value = get(name)
        if value is not None and (
            type(value) is not int or not MIN_THRESHOLD <= value <= MAX_THRESHOLD
        ):
            return False
    alerts = get("alerts")
    return alerts is None or type(alerts) is bool


def fast_copy_row(raw: bytes, observe: bool = True) -> CopyRow | None:
    """The ``CopyRow`` of a message that is certainly valid, else None (its observation
    only when ``observe``)."""
    try:
        # orjson reads the same documents into the same values as json, four times faster;
        # what it refuses (NaN, huge integers, deep nesting, lone surrogates such as "\ud800"
        # that UTF-8 cannot carry) is left to from_json's json
        message = orjson.loads(raw)
    except (ValueError, RecursionError):
        return None
    if type(message) is not dict:
        return None
    get = message.get
    try:
        schema, ok, error = get("schema"), get("ok"), get("error")
        if type(schema) is not int or schema != SCHEMA_VERSION or type(ok) is not bool:
            return None
        if ok:
            if error is not None:
                return None
        elif type(error) is not str or error not in ERROR_KINDS:
            return None
        check_id = get("check_id")
        if type(check_id) is not str or not _CANONICAL_UUID(check_id):
            return None
        check_id = check_id.lower()
        checked_text = _fast_timestamp(get("checked_at"))
        site_id, latency = get("site_id"), get("response_time_ms")
        region, status, detail = get("region"), get("status_code"), get("error_detail")
        if status is not None and (type(status) is not int or not 100 <= status <= 999):
            return None
        if detail is not None and (type(detail) is not str or len(detail) > MAX_ERROR_DETAIL):
            return None
        if not _fast_site_settings(get):
            return None
        if type(site_id) is not str or len(site_id) > MAX_SITE_ID:
            return None
        url = get("url")
        # userinfo is redacted by from_json (a message from a checker before that rule)
        if type(url) is not str or len(url) > MAX_URL_LENGTH or "@" in url:
            return None
        if region is not None and (type(region) is not str or len(region) > MAX_REGION):
            return None
        expires = get("tls_cert_expires_at")
        url, scheduled = get("url"), get("scheduled_at")
        line = "\t".join(
            (
                check_id,
                _SCHEMA_TEXT,
                _fast_text(site_id),
                _fast_text(url),
                _NULL if region is None else _fast_text(region),
                _repeated_timestamp(scheduled),
                checked_text,
                _fast_milliseconds(latency),
                _NULL if status is None else repr(status),
                "t" if ok else "f",
                _NULL if error is None else error,
                _NULL if detail is None else _fast_text(detail),
                _fast_flag(get("regex_matched")),
                _fast_milliseconds(get("dns_ms")),
                _fast_milliseconds(get("connect_ms")),
                _fast_milliseconds(get("tls_ms")),
                _fast_milliseconds(get("ttfb_ms")),
                _NULL if expires is None else _repeated_timestamp(expires),
            )
        )
    except _NotFast:
        return None
    # site_id and latency are validated above (a non-empty str; None or a number)
    if not observe:
        return (check_id, site_id, checked_text[:13], ok, latency, line + "\n", None)
    checked = _from_isoformat(checked_text)
    if checked.tzinfo is not UTC:
        checked = checked.astimezone(UTC)
    observation = Observation(
        check_id,
        site_id,  # validated above (a non-empty str of at most 63 characters)
        url,  # type: ignore[arg-type]
        _cached_moment(scheduled),
        checked,
        ok,
        error,
        detail,
        status,
        None if expires is None else _cached_moment(expires),
        get("tags"),
        get("failure_threshold"),
        get("success_threshold"),
        get("alerts"),
    )
    # site_id and latency are validated above (a short non-empty str; None or a number)
    return (check_id, site_id, checked_text[:13], ok, latency, line + "\n", observation)


# -- SQL ---------------------------------------------------------------------------------


_HOURLY_COLUMNS = (
    "site_id, hour, checks, failures, latency_count, latency_sum_ms, latency_min_ms,"
    " latency_max_ms, latency_histogram"
)


def _upsert_hourly_sql(schema: str, source: str) -> str:
    """Adds the hourly rollups in ``source`` (a query with ``_HOURLY_COLUMNS``)."""
    return f"""
    INSERT INTO {quote_identifier(schema)}.checks_hourly AS h ({_HOURLY_COLUMNS})
    -- a fixed order, so that concurrent writers lock rollup rows without deadlocks
    SELECT {_HOURLY_COLUMNS} FROM ({source}) AS source ORDER BY site_id, hour
    ON CONFLICT (site_id, hour) DO UPDATE SET
        checks = h.checks + excluded.checks,
        failures = h.failures + excluded.failures,
        latency_count = h.latency_count + excluded.latency_count,
        latency_sum_ms = h.latency_sum_ms + excluded.latency_sum_ms,
        latency_min_ms = least(h.latency_min_ms, excluded.latency_min_ms),
        latency_max_ms = greatest(h.latency_max_ms, excluded.latency_max_ms),
        latency_histogram = ARRAY(
            SELECT a + b
            FROM unnest(h.latency_histogram, excluded.latency_histogram)
                WITH ORDINALITY AS u(a, b, i)
            ORDER BY i)"""


def _insert_sql(schema: str) -> str:
    """Insert from the temp table; the rows actually inserted feed the hourly rollup."""
    quoted = quote_identifier(schema)
    columns = ", ".join(COLUMNS)
    bounds = "'{" + ",".join(f"{bound:g}" for bound in BOUNDS_MS) + "}'::double precision[]"
    buckets = ", ".join(f"count(*) FILTER (WHERE bucket = {index})" for index in range(BUCKETS))
    hourly = f"""
    SELECT site_id, date_trunc('hour', checked_at, 'UTC') AS hour,
           count(*) AS checks,
           count(*) FILTER (WHERE NOT ok) AS failures,
           count(response_time_ms) AS latency_count,
           coalesce(sum(response_time_ms), 0) AS latency_sum_ms,
           min(response_time_ms) AS latency_min_ms,
           max(response_time_ms) AS latency_max_ms,
           ARRAY[{buckets}]::integer[] AS latency_histogram
    FROM inserted
    GROUP BY 1, 2"""
    return f"""
WITH inserted AS (
    INSERT INTO {quoted}.checks ({columns})
    SELECT {columns} FROM pg_temp.{_TEMP_TABLE}
    ON CONFLICT (check_id, checked_at) DO NOTHING
    RETURNING check_id, site_id, checked_at, ok, response_time_ms,
        width_bucket(response_time_ms, {bounds}) AS bucket
), rolled_up AS ({_upsert_hourly_sql(schema, hourly)}
)
SELECT check_id::text FROM inserted
"""


def _hourly_from_json_sql(schema: str) -> str:
    """Adds the rollups that ``BatchValidator.hourly()`` computed (one JSON parameter)."""
    return _upsert_hourly_sql(
        schema,
        "SELECT * FROM json_to_recordset(CAST(:hours AS json)) AS g(site_id text,"
        " hour timestamptz, checks integer, failures integer, latency_count integer,"
        " latency_sum_ms double precision, latency_min_ms double precision,"
        " latency_max_ms double precision, latency_histogram integer[])",
    )


def _rejects_sql(schema: str, rows: int) -> str:
    values = ", ".join(
        f"(:topic{i}, :partition{i}, :offset{i}, :raw{i}, :reason{i})" for i in range(rows)
    )
    return (
        f'INSERT INTO {quote_identifier(schema)}.check_rejects (topic, partition, "offset", raw,'
        f' reason) VALUES {values} ON CONFLICT (topic, partition, "offset") DO NOTHING'
    )


@contextlib.contextmanager
def _no_collections() -> Iterator[None]:
    """The cyclic garbage collector paused while a batch is written (then resumed): a batch
    allocates tens of thousands of container objects that reference counting frees or that
    live until the end of the batch, so collections during it find nothing and cost ~10 ms
    a 5,000-row batch (~25 ms with the state machine's observations alive until it runs)."""
    if not gc.isenabled():  # paused by the caller (or another writer thread): left so
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class CheckStore:
    """Writes batches into one database; keeps per-container state (known partitions)."""

    def __init__(
        self,
        database: Database,
        *,
        retention: RetentionSettings | None = None,
        direct_copy: bool = True,
        incidents: IncidentSettings | None = None,
        track_state: bool = True,
    ) -> None:
        self.database = database
        self.retention = retention or RetentionSettings()
        #: try ``COPY`` straight into ``checks`` first (False: always the temporary table)
        self.direct_copy = direct_copy
        #: move site states (incidents, alerts) with the inserted rows (False: the bench's
        #: baseline only)
        self.track_state = track_state
        self.incidents = IncidentStore(database.schema, incidents)
        self._insert = _insert_sql(database.schema)
        self._add_hourly = Statement(_hourly_from_json_sql(database.schema))
        self._copy_checks = Statement(
            f"COPY {quote_identifier(database.schema)}.checks ({', '.join(COLUMNS)}) FROM STDIN"
        )
        self._copy_temp = Statement(f"COPY pg_temp.{_TEMP_TABLE} ({', '.join(COLUMNS)}) FROM STDIN")
        self._known_months: set[date] = set()
        self._temp_table_on: pg8000.native.Connection | None = None

    def write(self, records: Iterable[KafkaRecord]) -> BatchOutcome:
        """Stores a batch in one transaction; raises ``StoreUnavailable`` to have it retried."""
        with _no_collections():
            return self._write(list(records))

    def _write(self, batch: list[KafkaRecord]) -> BatchOutcome:
        validator = BatchValidator(observe=self.track_state)
        self._ensure_partitions(self._current_months())
        try:
            with self.database.transaction() as connection:
                share_partitions(connection, self.database.schema)  # none attached meanwhile
                chunks = validator.copy_data(batch)
                sent: list[bytes] = []
                inserted = None
                if self.direct_copy:
                    inserted = self._copy_direct(connection, _keeping(chunks, sent))
                    if inserted:
                        self._add_hourly.run(connection, hours=json.dumps(validator.hourly()))
                observations = validator.observations
                if inserted is None:  # the same data again (what pg8000 had not sent yet too)
                    new_ids = self._copy_via_temp_table(connection, itertools.chain(sent, chunks))
                    inserted = len(new_ids)
                    observations = [o for o in observations if o.check_id in new_ids]
                if self.track_state and observations:
                    changes = self.incidents.apply(connection, observations)
                    if changes.alerts or changes.incidents:
                        moved = {"incidents": len(changes.incidents), "alerts": len(changes.alerts)}
                        logger.info("site states moved", extra=moved)
                self._insert_rejects(connection, list(validator.rejects.values()))
        except BaseException:
            self._temp_table_on = None  # its CREATE may have been rolled back with the batch
            raise
        # Rows of a month without a partition went to the default partition; making the
        # partition now moves them (a month is new only once per container)
        self._ensure_partitions(validator.months)
        rejects = list(validator.rejects.values())
        for reject in rejects[:_REJECTS_LOGGED]:  # each reason is short; so is their number
            logger.warning(
                "rejected %s-%s offset %s: %s",
                reject.topic,
                reject.partition,
                reject.offset,
                reject.reason,
            )
        if len(rejects) > _REJECTS_LOGGED:
            logger.warning(
                "and %d more rejects in this batch (in the check_rejects table)",
                len(rejects) - _REJECTS_LOGGED,
            )
        return BatchOutcome(
            received=validator.received,
            inserted=inserted,
            duplicates=validator.valid - inserted,
            rejected=len(validator.rejects),
        )

    def _copy_direct(
        self, connection: pg8000.native.Connection, chunks: Iterable[bytes]
    ) -> int | None:
        """``COPY`` straight into ``checks``: the rows inserted, or None if one of them was
        there already (then nothing is inserted).

        All or nothing: when it succeeds every row was new, so the rollups of the batch are
        exactly those of the inserted rows. A redelivery fails at its first row.
        """
        connection.run("SAVEPOINT direct_copy")
        try:
            copied = self._copy_checks.run(connection, stream=chunks)
        except pg8000.exceptions.DatabaseError as error:
            if sqlstate(error) != _UNIQUE_VIOLATION:
                raise
            connection.run("ROLLBACK TO SAVEPOINT direct_copy")
            return None
        return copied

    def _copy_via_temp_table(
        self, connection: pg8000.native.Connection, chunks: Iterable[bytes]
    ) -> set[str]:
        """``COPY`` into the temporary table, then ``INSERT ... ON CONFLICT DO NOTHING``
        into ``checks``; only the rows it returns feed the rollups and the site states.
        Returns the ``check_id`` of each inserted row."""
        self._ensure_temp_table(connection)
        if not self._copy_temp.run(connection, stream=chunks):
            return set()
        return {row[0] for row in connection.run(self._insert)}

    def _ensure_temp_table(self, connection: pg8000.native.Connection) -> None:
        # one per session, emptied at every commit; re-made after a reconnect
        if self._temp_table_on is connection:
            return
        connection.run(
            f"CREATE TEMP TABLE IF NOT EXISTS {_TEMP_TABLE} ON COMMIT DELETE ROWS AS"
            f" SELECT {', '.join(COLUMNS)} FROM {quote_identifier(self.database.schema)}.checks"
            " WITH NO DATA"
        )
        self._temp_table_on = connection

    def _current_months(self) -> set[date]:
        today = datetime.now(UTC).date()
        return {month_start(today), month_start(today + timedelta(days=31))}

    def _ensure_partitions(self, months: Iterable[date]) -> None:
        """Creates missing monthly partitions within a sane range (retention .. 2 months
        ahead); a row outside it stays in the default partition."""
        now = datetime.now(UTC)
        earliest = month_start(
            (now - timedelta(days=self.retention.retention_days or 36600)).date()
        )
        latest = month_start((now + timedelta(days=31 * _PARTITIONS_AHEAD_MONTHS)).date())
        wanted = {m for m in set(months) - self._known_months if earliest <= m <= latest}
        if wanted:
            self._known_months |= ensure_partitions(self.database, wanted)

    def _insert_rejects(
        self, connection: pg8000.native.Connection, rejects: Sequence[Reject]
    ) -> None:
        for start in range(0, len(rejects), _REJECTS_PER_STATEMENT):
            chunk = rejects[start : start + _REJECTS_PER_STATEMENT]
            params: dict[str, object] = {}
            for i, reject in enumerate(chunk):
                params.update(
                    {
                        f"topic{i}": reject.topic,
                        f"partition{i}": reject.partition,
                        f"offset{i}": reject.offset,
                        f"raw{i}": reject.raw,
                        f"reason{i}": reject.reason,
                    }
                )
            connection.run(_rejects_sql(self.database.schema, len(chunk)), **params)
