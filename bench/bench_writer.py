"""Writer throughput: rows/second through the Lambda handler, against two baselines.

For batches of 500 and 5,000 records, in the same run and on the same server:
- handler: ``functions/writer/app.py:lambda_handler`` on an MSK event (base64 decoding,
  validation, dedupe, COPY straight into ``checks`` with the hourly rollups upserted from
  the copied rows, one transaction);
- raw COPY: the same rows, already in memory as results, formatted (``copy_line``) and
  ``COPY``-ed in the handler's chunks into an identical ``checks`` table (same partitions
  and indexes, same connection settings; no decoding, validation, idempotency or rollup):
  the ceiling;
- per-row INSERT: one ``INSERT`` per row in one transaction (pg8000), the seed's way.

Also shown: the handler on the same batch delivered again (every row a duplicate: the
direct COPY fails at its first row and the batch takes the temporary-table way), and the
handler's Python work per row (decode, validate, format; it overlaps the server's COPY).

Targets: handler >= 0.5x raw COPY and >= 20x per-row INSERT. Uses DATABASE_URL if set, else
an embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

from scratch_database import scratch_database
from webchecker.results import CheckResult
from webchecker.store.batch import COLUMNS, COPY_CHUNK_ROWS, BatchValidator, copy_line
from webchecker.store.database import Database, DatabaseSettings
from webchecker.store.migrations import migrate
from webchecker.store.msk import KafkaRecord, MskEvent

ROOT = Path(__file__).resolve().parents[1]
SIZES = (500, 5000)
REPEATS = {500: 9, 5000: 5}
PER_ROW_ROWS = 500  # the per-row baseline is slow; its rate does not depend on batch size


def load_handler(database_url: str) -> ModuleType:
    os.environ.update(
        DATABASE_URL=database_url,
        DB_SCHEMA="webchecker",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_METRICS_DISABLED="true",  # EMF lines on stdout would bury the figures
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_SERVICE_NAME="webchecker-bench",
    )
    spec = importlib.util.spec_from_file_location("writer_app", ROOT / "functions/writer/app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Context:
    function_name = "webchecker-bench"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:webchecker-bench"
    aws_request_id = "00000000-0000-0000-0000-000000000000"


def new_event(size: int, offset: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    values = [
        CheckResult(
            check_id=str(uuid.uuid4()), site_id=f"site-{i % 50}", url="https://example.com/",
            region="eu-west-1", scheduled_at=now.replace(second=0, microsecond=0),
            checked_at=now, response_time_ms=float(i % 900), status_code=200, ok=True,
            error=None, error_detail=None, regex_matched=None, dns_ms=1.5, connect_ms=10.25,
            tls_ms=20.5, ttfb_ms=80.0, tls_cert_expires_at=now + timedelta(days=60),
        ).to_json()
        for i in range(size)
    ]  # fmt: skip
    batch = tuple(
        KafkaRecord(topic="webchecker.checks", partition=0, offset=offset + i, value=value)
        for i, value in enumerate(values)
    )
    return MskEvent(records=batch).to_dict()


def results_of(event: dict[str, Any]) -> list[CheckResult]:
    return [CheckResult.from_json(record.value) for record in MskEvent.from_dict(event)]


def decode_validate_format(event: dict[str, Any]) -> list[bytes]:
    """The handler's Python work per batch: decode the event, validate, format COPY data."""
    return list(BatchValidator().copy_data(MskEvent.from_dict(event).records))


def handling(app: ModuleType, event: dict[str, Any], *, inserted: int) -> Callable[[], None]:
    """One invocation of the handler, checked to have inserted ``inserted`` rows."""

    def invoke() -> None:
        result = app.lambda_handler(event, Context())
        assert result["inserted"] == inserted, result

    return invoke


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def raw_copy(database: Database, rows: Sequence[CheckResult]) -> None:
    chunks = (
        "".join(map(copy_line, rows[start : start + COPY_CHUNK_ROWS])).encode()
        for start in range(0, len(rows), COPY_CHUNK_ROWS)
    )  # formatted while the server reads, in the handler's chunks
    with database.transaction() as connection:
        connection.run(f"COPY bench_raw.checks ({', '.join(COLUMNS)}) FROM STDIN", stream=chunks)


def per_row(database: Database, rows: Sequence[CheckResult]) -> None:
    sql = (
        f"INSERT INTO bench_rows.checks ({', '.join(COLUMNS)}) VALUES "
        f"({', '.join(':' + column for column in COLUMNS)})"
    )
    with database.transaction() as connection:
        for row in rows:
            values = row.to_message()
            values.update(
                schema=1, scheduled_at=row.scheduled_at, checked_at=row.checked_at,
                tls_cert_expires_at=row.tls_cert_expires_at,
            )  # fmt: skip
            connection.run(sql, **{column: values[column] for column in COLUMNS})


def main() -> int:
    with scratch_database("writer") as url:
        return run(url)


def run(url: str) -> int:
    app = load_handler(url)
    context = Context()
    baseline = {
        schema: Database(DatabaseSettings.from_url(url, schema=schema))
        for schema in ("bench_raw", "bench_rows")
    }
    for database in baseline.values():
        migrate(database)
    app.lambda_handler(new_event(10, 0), context)  # cold start: connect, migrate, partitions
    print(f"server: {baseline['bench_raw'].connection().run('SHOW server_version')[0][0]}")
    print(f"{'batch':>6}  {'handler rows/s':>14}  {'raw COPY rows/s':>15}  {'per-row rows/s':>14}"
          f"  {'vs COPY':>8}  {'vs per-row':>10}  {'redelivered rows/s':>18}"
          f"  {'Python work':>14}")  # fmt: skip
    offset, ok = 1_000, True
    for size in SIZES:
        rates: dict[str, list[float]] = {
            "handler": [], "copy": [], "row": [], "again": [], "python": []
        }  # fmt: skip
        for _ in range(REPEATS[size]):
            event = new_event(size, offset)
            offset += size
            rates["handler"].append(size / timed(handling(app, event, inserted=size)))
            rates["again"].append(size / timed(handling(app, event, inserted=0)))
            rates["python"].append(timed(partial(decode_validate_format, event)) / size * 1e6)
            rows = results_of(new_event(size, offset))
            rates["copy"].append(size / timed(partial(raw_copy, baseline["bench_raw"], rows)))
            few = results_of(new_event(PER_ROW_ROWS, offset))
            rates["row"].append(PER_ROW_ROWS / timed(partial(per_row, baseline["bench_rows"], few)))
        handler, copy, single, again, python = (statistics.median(rates[name]) for name in rates)
        ok = ok and handler / copy >= 0.5 and handler / single >= 20
        print(f"{size:>6}  {handler:>14,.0f}  {copy:>15,.0f}  {single:>14,.0f}"
              f"  {handler / copy:>7.2f}x  {handler / single:>9.1f}x  {again:>18,.0f}"
              f"  {python:>8.1f} us/row")  # fmt: skip
    print(
        "medians of interleaved runs. raw COPY: the same rows from memory, formatted in the"
        " handler's chunks, into an identical checks table. redelivered: the same batch"
        " again (all duplicates: temporary table, INSERT ... ON CONFLICT). Python work:"
        " MskEvent.from_dict, validation and COPY formatting alone (runs while the server"
        " parses the COPY)"
    )
    print("targets: >= 0.50x raw COPY and >= 20x per-row INSERT:", "met" if ok else "NOT met")
    app.WRITER.close()
    for database in baseline.values():
        database.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
