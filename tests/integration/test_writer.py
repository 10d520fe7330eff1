"""The writer handler on real PostgreSQL: every field lands, idempotency, rejects, rollups."""

from __future__ import annotations

import base64
import gc
import json
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.fixtures.lambda_context import FakeLambdaContext, load_event
from tests.fixtures.lambda_context import load_app as load_lambda_app
from tests.messages import BASE_TIME, failed_message, message, msk_event, records
from webchecker.exceptions import StoreUnavailable
from webchecker.histogram import bucket_of
from webchecker.local.embedded.network import free_port
from webchecker.local.embedded.postgres import EmbeddedPostgres
from webchecker.store.batch import CheckStore
from webchecker.store.database import Database, DatabaseSettings
from webchecker.store.migrations import migrate

pytestmark = pytest.mark.postgres


def load_app(monkeypatch: pytest.MonkeyPatch, database_url: str, **env: str) -> ModuleType:
    """Imports functions/writer/app.py afresh: its cold start reads the environment."""
    settings = {
        "DATABASE_URL": database_url,
        "POWERTOOLS_TRACE_DISABLED": "true",
        # disabled metrics are never cleared, and Powertools serialises them by itself at
        # 100 values of a metric (without looking at the switch): that needs a namespace
        "POWERTOOLS_METRICS_NAMESPACE": "Webchecker",
        "POWERTOOLS_SERVICE_NAME": "webchecker",
        **env,
    }
    return load_lambda_app(monkeypatch, "writer", **settings)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Any:
    module = load_app(monkeypatch, database_url)
    yield module
    module.WRITER.close()


def invoke(app: ModuleType, event: dict[str, Any]) -> dict[str, int]:
    result: dict[str, int] = app.lambda_handler(event, FakeLambdaContext())
    return result


def rows(database: Database, sql: str, **params: Any) -> list[dict[str, Any]]:
    with database.transaction() as connection:
        found = connection.run(sql, **params)
        names = [column["name"] for column in connection.columns or ()]
    return [dict(zip(names, row, strict=True)) for row in found]


def decoded_values(event: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        json.loads(base64.b64decode(record["value"]))
        for group in event["records"].values()
        for record in group
    ]


def test_fixture_lands_with_every_field_in_a_database_created_on_first_use(
    app: ModuleType, database: Database, postgres_url: str
) -> None:
    name = database.settings.database
    with Database(DatabaseSettings.from_url(postgres_url)) as admin:
        before = admin.connection().run("SELECT 1 FROM pg_database WHERE datname = :n", n=name)
    assert before == []
    event = load_event("writer-msk")

    result = invoke(app, event)

    assert result == {"received": 3, "inserted": 3, "duplicates": 0, "rejected": 0}
    stored = {
        str(row["check_id"]): row for row in rows(database, "SELECT * FROM webchecker.checks")
    }
    for sent in decoded_values(event):
        row = stored[sent["check_id"]]
        for field, value in sent.items():
            if field in {"scheduled_at", "checked_at", "tls_cert_expires_at"} and value:
                value = datetime.fromisoformat(value)
            stored_value = str(row[field]) if field == "check_id" else row[field]
            assert stored_value == value, field
    assert rows(database, "SELECT count(*) AS n FROM webchecker.check_rejects") == [{"n": 0}]


def test_the_same_event_twice_is_stored_once(app: ModuleType, database: Database) -> None:
    event = load_event("writer-msk")

    first, second = invoke(app, event), invoke(app, event)

    assert first == {"received": 3, "inserted": 3, "duplicates": 0, "rejected": 0}
    assert second == {"received": 3, "inserted": 0, "duplicates": 3, "rejected": 0}
    assert rows(database, "SELECT count(*) AS n FROM webchecker.checks") == [{"n": 3}]


def test_duplicate_check_ids_across_offsets_and_batches_are_stored_once(
    app: ModuleType, database: Database
) -> None:
    one, two = message(), failed_message()
    # the same check under three offsets in one batch, then again under new offsets
    batch = records([one, two, one, one], first_offset=10)
    later = records([two, one, message()], partition=3, first_offset=500)

    assert invoke(app, msk_event(batch)) == {
        "received": 4, "inserted": 2, "duplicates": 2, "rejected": 0,
    }  # fmt: skip
    assert invoke(app, msk_event(later)) == {
        "received": 3, "inserted": 1, "duplicates": 2, "rejected": 0,
    }  # fmt: skip
    counts = rows(
        database, "SELECT check_id::text AS id, count(*) AS n FROM webchecker.checks GROUP BY 1"
    )
    assert sorted(row["n"] for row in counts) == [1, 1, 1]
    assert {one["check_id"], two["check_id"]} <= {row["id"] for row in counts}


def test_poison_records_are_kept_with_raw_bytes_and_the_valid_ones_land(
    app: ModuleType, database: Database
) -> None:
    event = load_event("writer-msk-poison")
    sent = event["records"]["webchecker.checks-0"]

    result = invoke(app, event)
    again = invoke(app, event)

    assert result == {"received": 7, "inserted": 2, "duplicates": 0, "rejected": 5}
    assert again == {"received": 7, "inserted": 0, "duplicates": 2, "rejected": 5}
    rejects = {
        row["offset"]: row
        for row in rows(database, 'SELECT * FROM webchecker.check_rejects ORDER BY "offset"')
    }
    assert sorted(rejects) == [201, 202, 203, 204, 205]  # stored once despite the redelivery
    for record in sent:
        if record["offset"] in rejects:
            raw = rejects[record["offset"]]["raw"]
            expected = base64.b64decode(record["value"]) if record.get("value") else None
            assert raw == expected
            assert rejects[record["offset"]]["topic"] == "webchecker.checks"
            assert rejects[record["offset"]]["partition"] == 0
    reasons = {offset: row["reason"] for offset, row in rejects.items()}
    assert "not valid JSON" in reasons[201]
    assert reasons[202].startswith("site_id: missing")
    assert reasons[203].startswith("status_code:")
    assert reasons[204].startswith("schema: unknown version 2")
    assert "null" in reasons[205]
    landed = rows(database, "SELECT site_id FROM webchecker.checks ORDER BY checked_at")
    assert [row["site_id"] for row in landed] == ["example", "shop"]


def test_hourly_rollups_count_each_inserted_row_once_under_redelivery(
    app: ModuleType, database: Database
) -> None:
    latencies = [3.0, 40.0, 40.0, 250.0, 9000.0]
    values = [message(site_id="s", response_time_ms=ms) for ms in latencies]
    values.append(failed_message(site_id="s", error="timeout", response_time_ms=None))
    event = msk_event(records(values))

    invoke(app, event)
    invoke(app, event)  # redelivered: nothing new
    invoke(app, msk_event(records(values[:2], first_offset=100)))  # under other offsets

    (rollup,) = rows(database, "SELECT * FROM webchecker.checks_hourly")
    assert rollup["site_id"] == "s"
    assert rollup["hour"] == BASE_TIME.replace(minute=0, second=0)
    assert (rollup["checks"], rollup["failures"], rollup["latency_count"]) == (6, 1, 5)
    assert rollup["latency_sum_ms"] == pytest.approx(sum(latencies))
    assert (rollup["latency_min_ms"], rollup["latency_max_ms"]) == (3.0, 9000.0)
    expected = [0] * len(rollup["latency_histogram"])
    for latency in latencies:
        expected[bucket_of(latency)] += 1
    assert rollup["latency_histogram"] == expected


def test_rollups_add_up_across_batches_of_the_same_hour(
    app: ModuleType, database: Database
) -> None:
    invoke(app, msk_event(records([message(site_id="s", response_time_ms=10.0)])))
    invoke(
        app,
        msk_event(records([failed_message(site_id="s", response_time_ms=30.0)], first_offset=1)),
    )

    (rollup,) = rows(database, "SELECT * FROM webchecker.checks_hourly")
    assert (rollup["checks"], rollup["failures"], rollup["latency_sum_ms"]) == (2, 1, 40.0)
    assert sum(rollup["latency_histogram"]) == 2


def test_rows_of_another_month_get_their_own_partition(app: ModuleType, database: Database) -> None:
    last_month = datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)
    now = datetime.now(UTC)

    invoke(app, msk_event(records([message(checked_at=last_month), message(checked_at=now)])))

    placed = rows(
        database,
        "SELECT tableoid::regclass::text AS part FROM webchecker.checks ORDER BY checked_at",
    )
    assert [row["part"] for row in placed] == [
        "webchecker.checks_2026_10",
        f"webchecker.checks_{now:%Y_%m}",
    ]


def test_a_connection_closed_while_idle_is_replaced_within_the_invocation(
    app: ModuleType, database: Database
) -> None:
    invoke(app, msk_event(records([message()])))
    writer_pid = app.WRITER.database.connection().run("SELECT pg_backend_pid()")[0][0]
    rows(database, "SELECT pg_terminate_backend(:pid) AS done", pid=writer_pid)

    result = invoke(app, msk_event(records([message(), message()], first_offset=1)))

    assert result == {"received": 2, "inserted": 2, "duplicates": 0, "rejected": 0}
    assert rows(database, "SELECT count(*) AS n FROM webchecker.checks") == [{"n": 3}]
    assert app.WRITER.database.connection().run("SELECT pg_backend_pid()")[0][0] != writer_pid


def test_a_stopped_database_raises_and_the_redelivered_batch_lands_once_it_is_back(
    monkeypatch: pytest.MonkeyPatch, embedded_postgres: EmbeddedPostgres
) -> None:
    app = load_app(monkeypatch, embedded_postgres.url("writer"), DB_TIMEOUT="5")
    try:
        invoke(app, msk_event(records([message()])))
        batch = msk_event(records([message(), message()], first_offset=1))
        embedded_postgres.stop()

        with pytest.raises(StoreUnavailable):
            invoke(app, batch)
        embedded_postgres.start()
        result = invoke(app, batch)  # the mapping delivers the batch again
    finally:
        app.WRITER.close()

    assert result == {"received": 2, "inserted": 2, "duplicates": 0, "rejected": 0}


def test_an_unreachable_database_raises_store_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = load_app(monkeypatch, f"postgresql://postgres@/webchecker?host={tmp_path}")

    with pytest.raises(StoreUnavailable):
        invoke(app, load_event("writer-msk"))


def test_a_custom_schema_is_created_and_used(
    monkeypatch: pytest.MonkeyPatch, database_url: str, database: Database
) -> None:
    app = load_app(monkeypatch, database_url, DB_SCHEMA="monitoring")
    try:
        invoke(app, load_event("writer-msk"))
    finally:
        app.WRITER.close()

    assert rows(database, "SELECT count(*) AS n FROM monitoring.checks") == [{"n": 3}]
    assert rows(database, "SELECT to_regclass('webchecker.checks') IS NULL AS absent") == [
        {"absent": True}
    ]


@pytest.mark.parametrize(
    "text",
    ["tab\there", "line\nbreak\r\n", "back\\slash \\N \\t", "ünïcödé ✓ 日本", "'quote\" ;--"],
)
def test_text_that_copy_would_misread_is_stored_exactly(
    app: ModuleType, database: Database, text: str
) -> None:
    sent = failed_message(error="other", error_detail=text, url=f"https://example.com/{text}")

    invoke(app, msk_event(records([sent])))

    (row,) = rows(database, "SELECT url, error_detail FROM webchecker.checks")
    assert (row["url"], row["error_detail"]) == (sent["url"], text)


def test_a_lone_surrogate_is_rejected_and_does_not_fail_the_batch(
    app: ModuleType, database: Database
) -> None:
    # JSON may spell a lone surrogate ("\ud800"): Python reads it, UTF-8 cannot carry it
    good = message()
    bad = json.dumps(message(url="https://example.com/\ud800")).encode()

    result = invoke(app, msk_event(records([bad, good])))

    assert result == {"received": 2, "inserted": 1, "duplicates": 0, "rejected": 1}
    (reject,) = rows(database, "SELECT raw, reason FROM webchecker.check_rejects")
    assert reject["raw"] == bad
    assert reject["reason"].startswith("url: must not contain lone surrogates")
    landed = rows(database, "SELECT check_id::text AS id FROM webchecker.checks")
    assert [row["id"] for row in landed] == [good["check_id"]]


def test_messages_in_every_accepted_form_store_the_same_values(
    app: ModuleType, database: Database
) -> None:
    """The usual form (the writer's fast path) and forms only from_json reads (an upper-case
    id, an offset, an integer latency) store the same values."""
    usual = message(response_time_ms=12.0, site_id="usual")
    odd_id = uuid.uuid4()
    odd = dict(
        usual,
        site_id="odd",
        check_id=odd_id.hex.upper(),
        checked_at="2026-11-27T13:00:01.000+01:00",
        response_time_ms=12,
    )
    invoke(app, msk_event(records([usual, odd])))

    stored = {
        row.pop("site_id"): row
        for row in rows(
            database,
            "SELECT site_id, checked_at, response_time_ms, scheduled_at, tls_cert_expires_at,"
            " dns_ms, ok, status_code FROM webchecker.checks",
        )
    }
    assert stored["usual"] == stored["odd"]
    assert stored["usual"]["checked_at"] == BASE_TIME + timedelta(seconds=1)
    ids = rows(database, "SELECT check_id::text AS id FROM webchecker.checks ORDER BY site_id")
    assert [row["id"] for row in ids] == [str(odd_id), usual["check_id"]]


def _store(database_url: str, schema: str, *, direct_copy: bool) -> CheckStore:
    database = Database(DatabaseSettings.from_url(database_url, schema=schema))
    migrate(database)
    return CheckStore(database, direct_copy=direct_copy)


def _stored(store: CheckStore) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    schema = store.database.schema
    checks = rows(store.database, f"SELECT * FROM {schema}.checks ORDER BY check_id")
    for row in checks:
        del row["stored_at"]
    hourly = rows(store.database, f"SELECT * FROM {schema}.checks_hourly ORDER BY site_id, hour")
    return checks, hourly


def test_copy_straight_into_checks_stores_what_the_temporary_table_way_stores(
    database_url: str,
) -> None:
    """The same batches both ways: the same rows, the same rollups (Python's sums are
    exact, PostgreSQL's may differ in the last bit)."""
    direct = _store(database_url, "direct", direct_copy=True)
    via_temp = _store(database_url, "via_temp", direct_copy=False)
    latencies = [None, 0.0, 4.999, 5.0, 12.25, 99.9, 100.0, 750.5, 59999.0, 60000.0, 1e6]
    values: list[dict[str, Any] | bytes | None] = [
        (failed_message if index % 3 == 0 else message)(
            site_id=f"site-{index % 4}",
            response_time_ms=latencies[index % len(latencies)],
            checked_at=BASE_TIME + timedelta(minutes=17 * index),
        )
        for index in range(60)
    ]
    values[7] = b"not json"
    values[9] = values[8]  # a duplicate within the batch
    try:
        first = records(values[:40])
        second = records(values[30:], first_offset=40)  # ten rows again: the other way
        outcomes = [
            [store.write(batch).as_dict() for batch in (first, second)]
            for store in (direct, via_temp)
        ]
        assert outcomes[0] == outcomes[1]
        assert outcomes[0][1]["duplicates"] == 10
        (checks, hourly), (checks_too, hourly_too) = _stored(direct), _stored(via_temp)
        assert checks == checks_too
        assert len(checks) == 58
        assert len(hourly) == len(hourly_too) > 4
        for mine, theirs in zip(hourly, hourly_too, strict=True):
            assert mine.pop("latency_sum_ms") == pytest.approx(theirs.pop("latency_sum_ms"))
            assert mine == theirs
    finally:
        direct.database.close()
        via_temp.database.close()


def test_a_duplicate_late_in_a_batch_undoes_the_direct_copy(
    app: ModuleType, database: Database
) -> None:
    old = message(site_id="s", response_time_ms=10.0)
    invoke(app, msk_event(records([old])))
    new = [message(site_id="s", response_time_ms=20.0) for _ in range(1200)]

    result = invoke(app, msk_event(records([*new, old], first_offset=1)))

    assert result == {"received": 1201, "inserted": 1200, "duplicates": 1, "rejected": 0}
    (count,) = rows(database, "SELECT count(*) AS n FROM webchecker.checks")
    assert count["n"] == 1201
    (rollup,) = rows(database, "SELECT * FROM webchecker.checks_hourly")
    assert (rollup["checks"], rollup["latency_sum_ms"]) == (1201, 10.0 + 1200 * 20.0)


def test_concurrent_writers_store_each_check_once_and_count_it_once(
    monkeypatch: pytest.MonkeyPatch, database_url: str, database: Database
) -> None:
    """Two containers with overlapping batches (the same checks under other offsets)."""
    values = [message(site_id="s", response_time_ms=float(i)) for i in range(3000)]
    apps = [load_app(monkeypatch, database_url) for _ in range(2)]
    try:
        invoke(apps[0], msk_event(records(values[:1])))  # migrated before the race
        batches = [records(values[:2000]), records(values[1000:], first_offset=5000)]
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(invoke, apps, map(msk_event, batches)))
    finally:
        for module in apps:
            module.WRITER.close()

    assert sum(result["inserted"] for result in results) == 2999
    assert sum(result["duplicates"] for result in results) == 1001
    (count,) = rows(
        database, "SELECT count(DISTINCT check_id) AS n, count(*) AS m FROM webchecker.checks"
    )
    assert (count["n"], count["m"]) == (3000, 3000)
    (rollup,) = rows(database, "SELECT * FROM webchecker.checks_hourly")
    assert (rollup["checks"], rollup["latency_count"]) == (3000, 3000)
    assert rollup["latency_sum_ms"] == sum(range(3000))


def test_connections_over_tcp_send_without_nagle_delay(tmp_path: Path) -> None:
    """TCP_NODELAY, as libpq sets it: else each batch's COPY waits ~40 ms for a delayed ACK."""
    with (
        EmbeddedPostgres(tmp_path / "data", tcp_port=free_port()) as server,
        Database(DatabaseSettings.from_url(server.tcp_url())) as database,
    ):
        sock = database.connection()._usock
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert database.connection().run("SELECT 1") == [[1]]


def test_no_garbage_collection_runs_while_a_batch_is_written(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Collections during a batch found nothing and cost ~10-25 ms a 5,000-row batch: the
    collector is paused for the batch and resumed after it (also after a failure)."""
    migrate(database)
    store = CheckStore(database)
    inside: list[bool] = []
    collections: list[int] = []
    write = store._write

    def watched(batch: list[Any]) -> Any:
        inside.append(True)
        try:
            return write(batch)
        finally:
            inside.clear()

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and inside:
            collections.append(info["generation"])

    monkeypatch.setattr(store, "_write", watched)
    batch = records([message(site_id=f"gc-{n}") for n in range(3_000)])
    gc.callbacks.append(count)
    try:
        assert store.write(batch).inserted == 3_000
        with pytest.raises(AttributeError):
            store.write([None])  # type: ignore[list-item]
        resumed = gc.isenabled()
        gc.disable()
        store.write(records([message()], first_offset=5_000))
        left_paused = not gc.isenabled()
    finally:
        gc.enable()
        gc.callbacks.remove(count)
    assert (collections, resumed, left_paused) == ([], True, True)
