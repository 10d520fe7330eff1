"""Site states, incidents and the alert outbox written by the writer, on real PostgreSQL.

The property: whatever the batching, the redeliveries and the write path (direct COPY or
the temporary table), the incidents and alerts in the database are exactly those the
state machine computes from each site's sequence of checks alone, each alert once.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.messages import BASE_TIME, failed_message, message, records, rfc3339
from webchecker.results import CheckResult
from webchecker.store.batch import CheckStore, _row_of
from webchecker.store.database import Database, DatabaseSettings
from webchecker.store.incidents import (
    OPENED,
    RESOLVED,
    IncidentSettings,
    SiteState,
    StateMachine,
)
from webchecker.store.migrations import migrate

pytestmark = pytest.mark.postgres

RULES = IncidentSettings(
    cert_warning_days=14,
    flap_opens=3,
    flap_window=timedelta(minutes=30),
    flap_steady=timedelta(minutes=8),
)


@pytest.fixture
def migrated(database: Database) -> Database:
    migrate(database)
    return database


def store_on(database_url: str, *, direct_copy: bool = True) -> CheckStore:
    return CheckStore(
        Database(DatabaseSettings.from_url(database_url)), direct_copy=direct_copy, incidents=RULES
    )


def deliver(database_url: str, *batches: Sequence[dict[str, Any]]) -> None:
    """Writes each batch in turn through one store (offsets follow on)."""
    store = store_on(database_url)
    offset = 0
    try:
        for batch in batches:
            store.write(records(batch, first_offset=offset))
            offset += len(batch)
    finally:
        store.database.close()


def site_messages(
    site_id: str,
    outcomes: Sequence[bool],
    *,
    start_minute: int = 0,
    cert_days: int = 60,
    **rules: Any,
) -> list[dict[str, Any]]:
    out = []
    for index, ok in enumerate(outcomes):
        moment = BASE_TIME + timedelta(minutes=start_minute + index, seconds=2)
        make = message if ok else failed_message
        fields = dict(
            site_id=site_id,
            checked_at=moment,
            tls_cert_expires_at=rfc3339(BASE_TIME + timedelta(days=cert_days)),
            **rules,
        )
        out.append(make(**fields))
    return out


def expected_alerts(values: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each site's alerts (without created_at) from its sequence alone, in order."""
    by_site: dict[str, list[dict[str, Any]]] = {}
    for value in values:
        by_site.setdefault(value["site_id"], []).append(value)
    out = {}
    for site_id, site_values in by_site.items():
        machine = StateMachine(RULES, created_at=datetime.now(UTC))
        machine.run(
            SiteState(site_id=site_id),
            [_row_of(CheckResult.from_message(value), "")[6] for value in site_values],
        )
        out[site_id] = [_without_created(alert) for alert in machine.changes.alerts]
        out[f"{site_id}/incidents"] = [
            (row["incident_id"], row["opened_at"], row["resolved_at"])
            for row in machine.changes.incidents.values()
        ]
    return out


def _without_created(alert: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in alert.items() if key != "created_at"}


def stored_alerts(database: Database, site_ids: Sequence[str]) -> dict[str, list[Any]]:
    connection = database.connection()
    out: dict[str, list[Any]] = {}
    for site_id in site_ids:
        rows = connection.run(
            "SELECT payload, alert_id::text, type, incident_id::text FROM webchecker.alerts"
            " WHERE site_id = :site ORDER BY seq",
            site=site_id,
        )
        for payload, alert_id, kind, incident_id in rows:
            assert (payload["alert_id"], payload["type"]) == (alert_id, kind)
            assert payload["incident_id"] == incident_id
        out[site_id] = [_without_created(row[0]) for row in rows]
        incidents = connection.run(
            "SELECT incident_id::text, opened_at, resolved_at FROM webchecker.incidents"
            " WHERE site_id = :site ORDER BY opened_at",
            site=site_id,
        )
        out[f"{site_id}/incidents"] = [
            (incident_id, rfc3339(opened), None if resolved is None else rfc3339(resolved))
            for incident_id, opened, resolved in incidents
        ]
    return out


#: Hypothesis against the real database: each example writes batches (no deadline).
ON_THE_DATABASE = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[list[int]], bool]:
    """Interleaved sequences of 1-3 sites, cut into batches, some delivered again."""
    prefix = uuid.uuid4().hex[:8]
    sequences = []
    for index in range(draw(st.integers(1, 3))):
        outcomes = draw(st.lists(st.booleans(), min_size=1, max_size=30))
        rules = {
            "failure_threshold": draw(st.integers(1, 3)),
            "success_threshold": draw(st.integers(1, 3)),
            "tags": draw(st.sampled_from([[], ["web", "eu"]])),
            # a certificate close to expiry: those checks take the Python path
            "cert_days": draw(st.sampled_from([10, 60])),
        }
        sequences.append(site_messages(f"{prefix}-{index}", outcomes, **rules))
    # interleave, keeping each site's order (Kafka keeps a key's order)
    order = draw(st.permutations([i for i, seq in enumerate(sequences) for _ in seq]))
    cursors = [0] * len(sequences)
    values = []
    for which in order:
        values.append(sequences[which][cursors[which]])
        cursors[which] += 1
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(values) - 1)), max_size=6)))
    bounds = [0, *cuts, len(values)]
    batches = [list(range(a, b)) for a, b in itertools.pairwise(bounds) if a < b]
    plan: list[list[int]] = []
    for number, batch in enumerate(batches):
        plan.append(batch)
        if draw(st.booleans()):  # at-least-once: an earlier batch, or a part of it, again
            again = batches[draw(st.integers(0, number))]
            start = draw(st.integers(0, len(again) - 1))
            plan.append(again[start:] + (batch if draw(st.booleans()) else []))
    return values, plan, draw(st.booleans())


@settings(ON_THE_DATABASE, max_examples=40)
@given(deliveries())
def test_any_batching_and_redelivery_give_the_incidents_of_the_sequence_alone(
    database_url: str,
    migrated: Database,
    delivery: tuple[list[dict[str, Any]], list[list[int]], bool],
) -> None:
    values, plan, direct = delivery
    store = store_on(database_url, direct_copy=direct)
    try:
        for offset, batch in enumerate(plan):
            store.write(records([values[i] for i in batch], first_offset=offset * 100))
    finally:
        store.database.close()
    sites = sorted({value["site_id"] for value in values})
    assert stored_alerts(migrated, sites) == expected_alerts(values)


@st.composite
def late_deliveries(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[list[int]]]:
    """One or two sites' checks cut into batches delivered out of order (late checks, also
    after batches that settled a site), some delivered twice."""
    prefix = uuid.uuid4().hex[:8]
    values: list[dict[str, Any]] = []
    for index in range(draw(st.integers(1, 2))):
        # mostly passes, low thresholds: sites settle, and a failure may arrive late
        outcomes = draw(st.lists(st.booleans() | st.just(True), min_size=2, max_size=12))
        rules = {
            "failure_threshold": draw(st.integers(1, 2)),
            "success_threshold": draw(st.integers(1, 2)),
        }
        values += site_messages(f"{prefix}-{index}", outcomes, **rules)
    values.sort(key=lambda value: value["checked_at"])
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(values) - 1)), max_size=6)))
    bounds = [0, *cuts, len(values)]
    batches = [list(range(a, b)) for a, b in itertools.pairwise(bounds) if a < b]
    # one batch held back (a checker that published late) behind some later ones, or any order
    late = draw(st.integers(0, len(batches) - 1))
    held = batches.pop(late)
    batches.insert(draw(st.integers(late, len(batches))), held)
    plan = draw(st.permutations(batches)) if draw(st.booleans()) else batches
    again = draw(st.lists(st.sampled_from(batches), max_size=2))
    return values, [*plan, *again]


@settings(ON_THE_DATABASE, max_examples=100)
@given(late_deliveries())
def test_batches_in_any_order_give_what_the_rules_give_in_that_order(
    database_url: str, migrated: Database, delivery: tuple[list[dict[str, Any]], list[list[int]]]
) -> None:
    """The rules applied batch by batch in delivery order, each check once (a late one
    ignored), in memory: the database must agree, settled batches (nothing written) and
    watermarks recovered from the checks included."""
    values, plan = delivery
    deliver(database_url, *([values[i] for i in batch] for batch in plan))
    states: dict[str, SiteState] = {}
    machines: dict[str, StateMachine] = {}
    seen: set[str] = set()
    for batch in plan:
        for value in (values[i] for i in batch if values[i]["check_id"] not in seen):
            seen.add(value["check_id"])
            site_id = value["site_id"]
            machine = machines.setdefault(site_id, StateMachine(RULES, created_at=BASE_TIME))
            state = states.setdefault(site_id, SiteState(site_id=site_id))
            machine.run(state, [_row_of(CheckResult.from_message(value), "")[6]])
    expected: dict[str, Any] = {}
    for site_id, machine in machines.items():
        expected[site_id] = [_without_created(alert) for alert in machine.changes.alerts]
        expected[f"{site_id}/incidents"] = sorted(
            (row["incident_id"], row["opened_at"], row["resolved_at"])
            for row in machine.changes.incidents.values()
        )
    stored = stored_alerts(migrated, sorted(machines))
    for key, rows in stored.items():
        if key.endswith("/incidents"):
            stored[key] = sorted(rows)
    assert stored == expected


def test_a_redelivered_batch_writes_no_alert_twice(database_url: str, migrated: Database) -> None:
    values = site_messages("r", [False, False, False, True, True], cert_days=10)
    store = store_on(database_url)
    try:
        for _ in range(3):
            store.write(records(values))
    finally:
        store.database.close()
    alerts = stored_alerts(migrated, ["r"])["r"]
    assert [alert["type"] for alert in alerts] == ["certificate.expiring", OPENED, RESOLVED]


def test_a_late_check_is_stored_and_changes_nothing(database_url: str, migrated: Database) -> None:
    newer = site_messages("late", [True, True], start_minute=10)
    older = site_messages("late", [False, False, False])
    deliver(database_url, newer, older)
    connection = migrated.connection()
    assert connection.run("SELECT count(*) FROM webchecker.checks")[0][0] == 5
    state = connection.run(
        "SELECT state, fail_streak, last_scheduled_at FROM webchecker.site_state"
    )
    assert state == [["up", 0, BASE_TIME + timedelta(minutes=11)]]
    assert connection.run("SELECT count(*) FROM webchecker.incidents")[0][0] == 0


def test_late_passes_do_not_extend_the_streak(database_url: str, migrated: Database) -> None:
    """Passing checks that arrive late (the SQL fast path refuses them) change nothing."""
    newer = site_messages("late-ok", [True, True], start_minute=10)
    older = site_messages("late-ok", [True, True, True])
    deliver(database_url, newer, older)
    state = migrated.connection().run(
        "SELECT state, pass_streak, last_scheduled_at FROM webchecker.site_state"
    )
    assert state == [["up", 2, BASE_TIME + timedelta(minutes=11)]]


def test_two_writers_at_once_apply_each_check_once_in_order(
    database_url: str, migrated: Database
) -> None:
    """Overlapping batches of many sites on two connections, many rounds."""
    outcomes = ([False] * 3 + [True] * 3) * 4
    per_site = [site_messages(f"w{n:03d}", outcomes) for n in range(40)]
    values = [value for index in range(len(outcomes)) for value in (s[index] for s in per_site)]
    stores = [store_on(database_url), store_on(database_url, direct_copy=False)]
    barrier = threading.Barrier(2, timeout=60)

    def deliver(which: int) -> None:
        step = 80
        for start in range(0, len(values), step):
            barrier.wait()
            # both writers get the same rows at once, the second also some stored already
            # (one writer inserts each row and applies it; the other waits for its locks)
            first = max(0, start - 40) if which else start
            batch = values[first : start + step]
            stores[which].write(records(batch, first_offset=first + 10_000 * which))

    try:
        # the month's partition first (its creation racing a COPY is the writer's own matter)
        warm_up = message(site_id="warm", checked_at=BASE_TIME, tls_cert_expires_at=None)
        stores[0].write(records([warm_up], first_offset=99_999))
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(deliver, [0, 1]))
    finally:
        for store in stores:
            store.database.close()
    sites = sorted({value["site_id"] for value in values})
    expected = expected_alerts(values)
    assert stored_alerts(migrated, sites) == expected
    (count,) = migrated.connection().run("SELECT count(*) FROM webchecker.alerts")[0]
    assert count == sum(len(alerts) for key, alerts in expected.items() if "/" not in key) > 40


def test_a_maintenance_window_keeps_the_incident_closed(
    database_url: str, migrated: Database
) -> None:
    migrated.connection().run(
        "INSERT INTO webchecker.maintenance_windows (window_id, tags, starts_at, ends_at, reason)"
        " VALUES (gen_random_uuid(), ARRAY['db'], :starts, :ends, 'upgrade')",
        starts=BASE_TIME,
        ends=BASE_TIME + timedelta(minutes=5),
    )
    store = store_on(database_url)
    try:
        store.write(records(site_messages("in", [False] * 5, tags=["db"])))
        store.write(records(site_messages("out", [False] * 5, tags=["web"]), first_offset=5))
    finally:
        store.database.close()
    rows = migrated.connection().run(
        "SELECT site_id, state FROM webchecker.site_state ORDER BY site_id"
    )
    assert rows == [["in", "unknown"], ["out", "down"]]
    kinds = migrated.connection().run("SELECT site_id, type FROM webchecker.alerts ORDER BY seq")
    assert ["in", OPENED] not in kinds
    assert ["out", OPENED] in kinds


def test_the_writer_handler_moves_site_state(database_url: str, migrated: Database) -> None:
    """Through the handler's settings: thresholds from the messages, states readable."""
    from webchecker.store.writer import Writer, WriterSettings

    writer = Writer(
        WriterSettings.from_env({"DATABASE_URL": database_url, "CERT_WARNING_DAYS": "0"})
    )
    try:
        from tests.messages import msk_event

        writer.handle(msk_event(records(site_messages("h", [False], failure_threshold=1))))
    finally:
        writer.close()
    connection = migrated.connection()
    assert connection.run(
        "SELECT state, url, incident_id IS NOT NULL FROM webchecker.site_state"
    ) == [["down", "https://example.com/", True]]
    (payload,) = connection.run("SELECT payload FROM webchecker.alerts")[0]
    assert payload["type"] == OPENED
    assert payload["status_code"] == 503


def _state_row(database: Database, site_id: str) -> list[Any]:
    (row,) = database.connection().run(
        "SELECT state, pass_streak, fail_streak, last_check_id::text, last_scheduled_at, tags,"
        " url, streak_started_at, updated_at FROM webchecker.site_state WHERE site_id = :site",
        site=site_id,
    )
    return list(row)


def test_passes_of_a_settled_site_write_nothing_and_the_rules_agree(
    database_url: str, migrated: Database
) -> None:
    """The usual case (up, a pass streak going, all passed, same settings) writes no
    site_state row; the row left is the rules' state but for the watermark."""
    values = site_messages("fast", [True] * 5, tags=["web"])
    store = store_on(database_url)
    try:
        store.write(records(values[:2]))
        before = _state_row(migrated, "fast")
        with store.database.transaction() as connection:
            observations = [_row_of(CheckResult.from_message(v), "")[6] for v in values[2:4]]
            assert store.incidents._lock_settled(connection, observations) == {"fast"}
        store.write(records(values[2:4], first_offset=2))
        store.write(records(values[4:], first_offset=4))
    finally:
        store.database.close()
    after = _state_row(migrated, "fast")
    assert after == before  # not even updated_at moved
    expected = StateMachine(RULES).run(
        SiteState(site_id="fast"), [_row_of(CheckResult.from_message(v), "")[6] for v in values]
    )
    state, pass_streak, fail_streak, last_check_id, _, tags, url, started, _ = after
    assert [state, pass_streak, fail_streak, tags, url, started] == [
        expected.state,
        expected.pass_streak,
        expected.fail_streak,
        list(expected.tags),
        expected.url,
        expected.streak_started_at,
    ]
    assert expected.pass_streak == 2  # up: further passes are not counted
    assert last_check_id == values[1]["check_id"] != expected.last_check_id


def test_a_late_failure_after_unwritten_passes_is_still_late(
    database_url: str, migrated: Database
) -> None:
    """The watermark that settled batches did not write comes back from the checks: a
    failure older than them changes nothing; a newer one opens the incident."""
    rules = {"failure_threshold": 1, "success_threshold": 1, "tags": ["web"]}
    early = site_messages("wm", [True, True], **rules)
    settled = site_messages("wm", [True, True], start_minute=10, **rules)
    late = site_messages("wm", [False], start_minute=5, **rules)
    newer = site_messages("wm", [False], start_minute=12, **rules)
    store = store_on(database_url)
    try:
        store.write(records(early))
        store.write(records(settled, first_offset=2))
        assert _state_row(migrated, "wm")[3] == early[-1]["check_id"]  # not written
        store.write(records(late, first_offset=4))
        assert _state_row(migrated, "wm")[:3] == ["up", 1, 0]
        assert migrated.connection().run("SELECT count(*) FROM webchecker.incidents") == [[0]]
        store.write(records(newer, first_offset=5))
    finally:
        store.database.close()
    row = _state_row(migrated, "wm")
    assert (row[0], row[3]) == ("down", newer[0]["check_id"])
    # as if the late failure had never come
    assert stored_alerts(migrated, ["wm"]) == expected_alerts(early + settled + newer)


@pytest.mark.parametrize(
    ("change", "written"),
    [
        ({}, False),
        ({"tags": ["web", "eu"]}, True),
        ({"url": "https://example.com/v2"}, True),
        ({"alerts": False}, True),
        ({"start_minute": 24 * 60 + 10}, True),  # the watermark is a day old: refreshed
    ],
)
def test_a_settled_site_is_written_when_its_settings_change_or_once_a_day(
    database_url: str, migrated: Database, change: dict[str, Any], written: bool
) -> None:
    rules: dict[str, Any] = {"tags": ["web"]}
    first = site_messages("set", [True, True], **rules)
    start = change.pop("start_minute", 10)
    second = site_messages("set", [True], start_minute=start, **(rules | change))
    deliver(database_url, first, second)
    row = _state_row(migrated, "set")
    assert (row[3] == second[0]["check_id"]) is written
    if written:
        assert row[5] == second[0].get("tags", ["web"])
        assert row[6] == second[0]["url"]
