"""The status page on real PostgreSQL, seeded through the writer handler: every number on the
page and in status.json equals a plain SQL computation over the raw checks and incidents.

Incidents, site states and maintenance windows are seeded with SQL (after the writer, which
may fill them itself once its state machine runs: the seeded ones replace them), so each
case is exactly what the test says.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.fixtures.postgres import DatabaseTemplates
from tests.integration.test_writer import invoke, load_app
from tests.messages import failed_message, message, msk_event, records
from tests.page_helpers import Article, percent, read_page
from webchecker.cli import main
from webchecker.histogram import BOUNDS_MS, bucket_of
from webchecker.page.model import DAYS, day_start, load_status
from webchecker.page.publish import DirectoryPublisher
from webchecker.page.settings import PageSettings
from webchecker.page.statuspage import StatusPage
from webchecker.store.database import Database, DatabaseSettings

pytestmark = pytest.mark.postgres

NOW = datetime.now(UTC).replace(microsecond=0)
TODAY = NOW.date()
SPECIAL = "x<b>\"&'"  # no valid site has this id; the writer stores it all the same
SPECIAL_DETAIL = "<script>alert('x')</script> & \"quoted\" \x07bell"
SPECIAL_TAG = "t<i>&"


def spread(
    site: str, start: datetime, end: datetime, step: timedelta, **fields: Any
) -> list[dict[str, Any]]:
    out = []
    moment = start
    while moment < end:
        out.append(message(site_id=site, checked_at=moment, **fields))
        moment += step
    return out


def seed_checks(app: ModuleType, values: list[dict[str, Any]]) -> None:
    for offset in range(0, len(values), 2000):
        batch = records(values[offset : offset + 2000], first_offset=offset)
        result = invoke(app, msk_event(batch))
        assert result["rejected"] == 0
        assert result["inserted"] == len(batch)


def sql(database: Database, statement: str, **params: Any) -> list[list[Any]]:
    with database.transaction() as connection:
        return connection.run(statement, **params)


def reset_state(database: Database) -> None:
    """Drops whatever the writer derived, so the seeded states and incidents are the truth."""
    sql(database, "DELETE FROM webchecker.incidents")
    sql(database, "DELETE FROM webchecker.site_state")


def put_state(
    database: Database,
    site: str,
    state: str,
    since: datetime | None,
    url: str,
    tags: list[str],
    last_checked: datetime | None = None,
) -> None:
    sql(
        database,
        "INSERT INTO webchecker.site_state (site_id, state, since, url, tags, last_checked_at)"
        " VALUES (:site, :state, :since, :url, CAST(:tags AS text[]), :last)",
        site=site,
        state=state,
        since=since,
        url=url,
        tags=tags,
        last=last_checked,
    )


def put_incident(
    database: Database,
    site: str,
    opened: datetime,
    resolved: datetime | None,
    *,
    error: str = "status",
    detail: str = "expected 200-399, got 503",
    status: int | None = 503,
) -> str:
    incident_id = str(uuid.uuid4())
    sql(
        database,
        "INSERT INTO webchecker.incidents (incident_id, site_id, url, opened_at, resolved_at,"
        " error, error_detail, status_code) VALUES (CAST(:id AS uuid), :site, 'https://x/',"
        " :opened, :resolved, :error, :detail, :status)",
        id=incident_id,
        site=site,
        opened=opened,
        resolved=resolved,
        error=error,
        detail=detail,
        status=status,
    )
    return incident_id


@pytest.fixture
def seeded(database_templates: DatabaseTemplates, database_url: str) -> Iterator[Database]:
    """A database of this test's own, copied from the one ``seed`` built (once a session:
    the tests read the same data, and one that changes it changes only its copy)."""
    database_templates.copy("status_page", seed, into=database_url)
    with Database(DatabaseSettings.from_url(database_url)) as database:
        yield database


def seed(database_url: str) -> None:
    """Seeds the database at ``database_url`` through the writer, then with SQL."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        app = load_app(monkeypatch, database_url, RETENTION_DAYS="0")
        try:
            with Database(DatabaseSettings.from_url(database_url)) as database:
                seed_sites(app, database)
        finally:
            app.WRITER.close()


def seed_sites(app: ModuleType, database: Database) -> None:
    """Six sites: 90 days of data, down right now, an incident spanning days, added today,
    no checks at all, and one full of HTML special characters."""
    rng = random.Random(12)
    checks: list[dict[str, Any]] = []
    moment = NOW - timedelta(days=DAYS, minutes=7)  # also before the first day's bar
    while moment < NOW:
        if rng.random() < 0.03:
            checks.append(failed_message(site_id="steady", checked_at=moment))
        else:
            latency = rng.lognormvariate(4.6, 0.6)
            checks.append(message(site_id="steady", checked_at=moment, response_time_ms=latency))
        moment += timedelta(minutes=30)
    down_since = NOW - timedelta(hours=2)
    checks.append(message(site_id="retired", checked_at=NOW - timedelta(days=100)))
    checks += spread("down-now", NOW - timedelta(days=3), down_since, timedelta(minutes=10))
    checks += [
        failed_message(site_id="down-now", checked_at=at, response_time_ms=None, status_code=None,
                       error="timeout", error_detail="no response within 10s")
        for at in (down_since + timedelta(minutes=10 * i) for i in range(12))
        if at < NOW
    ]  # fmt: skip
    span_open = day_start(TODAY - timedelta(days=5)) + timedelta(hours=22)
    span_close = day_start(TODAY - timedelta(days=3)) + timedelta(hours=3, minutes=30)
    moment = NOW - timedelta(days=10)
    while moment < NOW:
        failing = span_open <= moment < span_close
        make = failed_message if failing else message
        checks.append(make(site_id="spanning", checked_at=moment))
        moment += timedelta(minutes=60)
    checks += spread(
        "new-today", day_start(TODAY) + timedelta(seconds=1), NOW, timedelta(minutes=5)
    )
    checks += spread(
        SPECIAL,
        NOW - timedelta(hours=5),
        NOW,
        timedelta(minutes=20),
        url="https://user:s3cret@special.example/",
    )
    seed_checks(app, checks)

    reset_state(database)
    put_state(
        database, "steady", "up", NOW - timedelta(days=40), "https://steady.example/", ["prod"]
    )
    put_state(database, "down-now", "down", down_since, "https://down.example/", ["prod", "eu"])
    put_state(database, "spanning", "up", span_close, "https://spanning.example/", ["api"])
    sql(database, "UPDATE webchecker.site_state SET flapping = true WHERE site_id = 'spanning'")
    put_state(database, "new-today", "up", day_start(TODAY), "https://new.example/", [])
    put_state(database, "no-checks", "unknown", None, "https://none.example/", [])
    retired = NOW - timedelta(days=100)  # removed long ago: its state row stays behind
    put_state(database, "retired", "up", retired, "https://old.example/", [], retired)
    put_state(database, SPECIAL, "up", NOW - timedelta(hours=5),
              "https://user:s3cret@special.example/", [SPECIAL_TAG])  # fmt: skip
    put_incident(database, "down-now", down_since, None, error="timeout",
                 detail="no response within 10s", status=None)  # fmt: skip
    put_incident(database, "spanning", span_open, span_close)
    put_incident(database, "steady", NOW - timedelta(days=20, hours=1), NOW - timedelta(days=20))
    put_incident(
        database, "steady", NOW - timedelta(days=120), NOW - timedelta(days=119)
    )  # too old
    put_incident(database, SPECIAL, NOW - timedelta(hours=4), NOW - timedelta(hours=3, minutes=50),
                 detail=SPECIAL_DETAIL)  # fmt: skip


def render(database: Database, tmp_path: Path, **settings: Any) -> tuple[dict[str, Any], str]:
    out = tmp_path / "out"
    page = StatusPage(PageSettings(**settings), database, DirectoryPublisher(out))
    page.publish(now=NOW)
    document = json.loads((out / "status.json").read_text())
    return document, (out / "index.html").read_text()


def by_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {site["site_id"]: site for site in document["sites"]}


def articles(page: str) -> dict[str, Article]:
    return {article.heading: article for article in read_page(page).articles}


# -- the oracle: plain SQL over the raw rows ---------------------------------------------


INTERVALS = {"24h": "24 hours", "7d": "7 days", "30d": "30 days", "90d": "90 days"}


def sql_uptime(database: Database, site: str, window: str) -> float | None:
    (checks, failures), = sql(
        database,
        "SELECT count(*), count(*) FILTER (WHERE NOT ok) FROM webchecker.checks"
        " WHERE site_id = :site AND checked_at <= :now AND checked_at >="
        f" date_trunc('hour', CAST(:now AS timestamptz) - interval '{INTERVALS[window]}', 'UTC')",
        site=site,
        now=NOW,
    )  # fmt: skip
    return 100.0 * (checks - failures) / checks if checks else None


def sql_days(database: Database, site: str) -> dict[str, float]:
    rows = sql(
        database,
        "SELECT CAST(CAST(checked_at AT TIME ZONE 'UTC' AS date) AS text),"
        " 100.0 * count(*) FILTER (WHERE ok) / count(*) FROM webchecker.checks"
        " WHERE site_id = :site AND checked_at <= :now GROUP BY 1",
        site=site,
        now=NOW,
    )
    return {day: float(uptime) for day, uptime in rows}


def sql_incident_minutes(database: Database, site: str) -> dict[str, float]:
    rows = sql(
        database,
        "SELECT CAST(CAST(d AS date) AS text), coalesce(sum(greatest(0, extract(epoch FROM"
        "  least(coalesce(i.resolved_at, :now), d + interval '1 day', :now)"
        "  - greatest(i.opened_at, d))) / 60.0) FILTER (WHERE i.incident_id IS NOT NULL), 0)"
        " FROM generate_series(CAST(:first AS timestamptz), CAST(:last AS timestamptz),"
        "   interval '1 day') AS d"
        " LEFT JOIN webchecker.incidents i ON i.site_id = :site"
        "  AND i.opened_at < d + interval '1 day' AND coalesce(i.resolved_at, :now) > d"
        " GROUP BY d",
        site=site,
        now=NOW,
        first=day_start(TODAY - timedelta(days=DAYS - 1)),
        last=day_start(TODAY),
    )
    return {day: float(minutes) for day, minutes in rows}


def sql_latency(database: Database, site: str, fraction: float) -> float | None:
    (value,), = sql(
        database,
        f"SELECT percentile_disc({fraction}) WITHIN GROUP (ORDER BY response_time_ms)"
        " FROM webchecker.checks WHERE site_id = :site AND response_time_ms IS NOT NULL"
        " AND checked_at <= :now AND checked_at >="
        " date_trunc('hour', CAST(:now AS timestamptz) - interval '24 hours', 'UTC')",
        site=site,
        now=NOW,
    )  # fmt: skip
    return None if value is None else float(value)


def assert_within_bucket(estimate: float | None, exact: float | None) -> None:
    """The histogram's resolution: the estimate lies in the exact value's bucket."""
    assert (estimate is None) == (exact is None)
    if estimate is None or exact is None:
        return
    bucket = bucket_of(exact)
    low = BOUNDS_MS[bucket - 1] if bucket > 0 else 0.0
    high = BOUNDS_MS[bucket] if bucket < len(BOUNDS_MS) else float("inf")
    assert low - 0.05 <= estimate <= high + 0.05, (estimate, exact, low, high)


# -- numbers --------------------------------------------------------------------------------


SITES = ["steady", "down-now", "spanning", "new-today", "no-checks", SPECIAL]


def test_every_site_with_data_appears_with_exactly_the_contract_fields(
    seeded: Database, tmp_path: Path
) -> None:
    document, _ = render(seeded, tmp_path)

    assert set(document) == {"generated_at", "sites"}
    assert sorted(by_id(document)) == sorted(SITES)
    for site in document["sites"]:
        assert set(site) == {
            "site_id", "url", "tags", "state", "since", "uptime", "days", "latency_ms",
            "incidents", "certificate_expires_at",
        }  # fmt: skip
        assert set(site["uptime"]) == {"24h", "7d", "30d", "90d"}
        assert set(site["latency_ms"]) == {"p50", "p95"}
        assert len(site["days"]) == DAYS
        dates = [day["date"] for day in site["days"]]
        assert dates[-1] == TODAY.isoformat()
        assert dates == sorted(dates)
        assert date.fromisoformat(dates[0]) == TODAY - timedelta(days=DAYS - 1)


@pytest.mark.parametrize("site", SITES)
def test_uptime_per_window_equals_sql_over_the_raw_checks(
    seeded: Database, tmp_path: Path, site: str
) -> None:
    document, page = render(seeded, tmp_path)
    shown = articles(page)[site]

    for index, window in enumerate(INTERVALS):
        expected = sql_uptime(seeded, site, window)
        got = by_id(document)[site]["uptime"][window]
        if expected is None:
            assert got is None
        else:
            assert got == pytest.approx(expected, abs=0.0005)
        assert shown.uptime[index] == percent(expected)


@pytest.mark.parametrize("site", SITES)
def test_each_day_uptime_and_incident_minutes_equal_sql(
    seeded: Database, tmp_path: Path, site: str
) -> None:
    document, page = render(seeded, tmp_path)
    uptimes = sql_days(seeded, site)
    minutes = sql_incident_minutes(seeded, site)
    titles = " | ".join(articles(page)[site].titles)

    for day in by_id(document)[site]["days"]:
        expected = uptimes.get(day["date"])
        if expected is None:
            assert day["uptime"] is None, day
        else:
            assert day["uptime"] == pytest.approx(expected, abs=0.0005), day
        # shown to 0.1 minute: off by at most half of that (plus float error: 25.8 - 25.75)
        assert day["incident_minutes"] == pytest.approx(minutes[day["date"]], abs=0.0501), day
        if minutes[day["date"]] > 0:  # a day with incidents has its own tooltip
            moment = date.fromisoformat(day["date"])
            assert f"{moment.day} {moment:%b %Y}: " in titles


@pytest.mark.parametrize("site", ["steady", "down-now", "spanning", "new-today", SPECIAL])
def test_latency_percentiles_match_sql_within_the_histogram_resolution(
    seeded: Database, tmp_path: Path, site: str
) -> None:
    document, page = render(seeded, tmp_path)
    latency = by_id(document)[site]["latency_ms"]

    assert_within_bucket(latency["p50"], sql_latency(seeded, site, 0.5))
    assert_within_bucket(latency["p95"], sql_latency(seeded, site, 0.95))
    (shown,) = [s for s in load_status(seeded, PageSettings(), now=NOW).sites if s.site_id == site]
    assert shown.latency_p50_ms == pytest.approx(latency["p50"], abs=0.05)
    assert f"p50 {shown.latency_p50_ms:,.0f} ms" in " ".join(articles(page)[site].text)


def test_a_site_down_right_now_shows_its_ongoing_incident(seeded: Database, tmp_path: Path) -> None:
    document, page = render(seeded, tmp_path)
    site = by_id(document)["down-now"]

    assert site["state"] == "down"
    assert site["since"] == (NOW - timedelta(hours=2)).isoformat().replace("+00:00", ".000Z")
    (incident,) = site["incidents"]
    assert incident["resolved_at"] is None
    assert incident["duration_seconds"] == 7200
    assert incident["error"] == "timeout"
    assert "Down" in articles(page)["down-now"].state
    reader = read_page(page)
    assert "Partial outage: 1 of 6 sites is down." in "".join(reader.text)
    row = page.split('<td data-label="Site">down-now</td>', 1)[1].split("</tr>", 1)[0]
    assert "ongoing" in row
    assert "2 h 0 min" in row


def test_an_incident_spanning_days_counts_in_each_day(seeded: Database, tmp_path: Path) -> None:
    document, page = render(seeded, tmp_path)
    shown = articles(page)
    assert "flapping" in " ".join(shown["spanning"].text)  # site_state.flapping, in words
    assert "flapping" not in " ".join(shown["steady"].text)
    days = {day["date"]: day for day in by_id(document)["spanning"]["days"]}

    assert days[(TODAY - timedelta(days=5)).isoformat()]["incident_minutes"] == 120
    assert days[(TODAY - timedelta(days=4)).isoformat()]["incident_minutes"] == 1440
    assert days[(TODAY - timedelta(days=3)).isoformat()]["incident_minutes"] == 210
    assert days[(TODAY - timedelta(days=2)).isoformat()]["incident_minutes"] == 0
    (incident,) = by_id(document)["spanning"]["incidents"]
    assert incident["duration_seconds"] == (2 + 24 + 3.5) * 3600


def test_a_site_added_today_has_data_for_today_only(seeded: Database, tmp_path: Path) -> None:
    document, _ = render(seeded, tmp_path)
    site = by_id(document)["new-today"]

    assert site["days"][-1]["uptime"] == 100.0
    assert all(day["uptime"] is None for day in site["days"][:-1])
    assert site["uptime"]["90d"] == 100.0


def test_a_site_without_checks_shows_no_data_anywhere(seeded: Database, tmp_path: Path) -> None:
    document, page = render(seeded, tmp_path)
    site = by_id(document)["no-checks"]

    assert site["state"] == "unknown"
    assert set(site["uptime"].values()) == {None}
    assert {day["uptime"] for day in site["days"]} == {None}
    assert {day["incident_minutes"] for day in site["days"]} == {0}
    assert site["latency_ms"] == {"p50": None, "p95": None}
    assert site["certificate_expires_at"] is None
    shown = articles(page)["no-checks"]
    assert shown.uptime == ["no data"] * 4
    assert "No data yet" in shown.state


def test_incidents_are_recent_and_newest_first(seeded: Database, tmp_path: Path) -> None:
    document, page = render(seeded, tmp_path)

    steady = by_id(document)["steady"]["incidents"]
    assert len(steady) == 1  # the one 120 days ago is outside the 90 days
    assert steady[0]["duration_seconds"] == 3600
    table = page.split("<h2>Recent incidents</h2>", 1)[1]
    order = [
        table.index(f'data-label="Site">{name}<') for name in ("down-now", "spanning", "steady")
    ]
    assert order == sorted(order)


def test_html_special_characters_are_escaped_and_userinfo_never_appears(
    seeded: Database, tmp_path: Path
) -> None:
    document, page = render(seeded, tmp_path)

    for raw in ("<b>", "<script>", "<i>"):
        assert raw not in page
    assert "x&lt;b&gt;&quot;&amp;&#x27;" in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;" in page
    assert "\x07" not in page
    assert "s3cret" not in page
    assert "user:" not in page
    special = by_id(document)[SPECIAL]
    assert special["tags"] == [SPECIAL_TAG]  # JSON carries the values as they are
    assert special["url"] == "https://special.example/"
    assert special["incidents"][0]["error_detail"] == SPECIAL_DETAIL
    assert "s3cret" not in json.dumps(document)
    assert articles(page)[SPECIAL].heading == SPECIAL  # the text reads back unchanged
    assert not (tmp_path / "out" / "badges").joinpath(f"{SPECIAL}.svg").exists()
    assert (tmp_path / "out" / "badges" / "steady.svg").is_file()


def test_sites_are_chosen_by_id_or_tag(seeded: Database, tmp_path: Path) -> None:
    document, page = render(
        seeded, tmp_path, site_ids=frozenset({"new-today"}), tags=frozenset({"prod"})
    )

    assert sorted(by_id(document)) == ["down-now", "new-today", "steady"]
    assert sorted(articles(page)) == ["down-now", "new-today", "steady"]
    assert "spanning" not in page


def test_maintenance_windows_current_and_upcoming(seeded: Database, tmp_path: Path) -> None:
    sql(
        seeded,
        "INSERT INTO webchecker.maintenance_windows (window_id, site_ids, tags, starts_at,"
        " ends_at, reason) VALUES (gen_random_uuid(), ARRAY['new-today'], NULL, :a, :b, 'now'),"
        " (gen_random_uuid(), NULL, ARRAY['api'], :c, :d, 'later <upgrade>'),"
        " (gen_random_uuid(), NULL, NULL, :e, :f, 'over')",
        a=NOW - timedelta(minutes=5), b=NOW + timedelta(hours=1),
        c=NOW + timedelta(days=1), d=NOW + timedelta(days=1, hours=2),
        e=NOW - timedelta(days=2), f=NOW - timedelta(days=1),
    )  # fmt: skip

    document, page = render(seeded, tmp_path)

    assert by_id(document)["new-today"]["state"] == "maintenance"
    assert by_id(document)["spanning"]["state"] == "up"  # its window has not begun
    section = page.split("<h2>Maintenance</h2>", 1)[1].split("</section>", 1)[0]
    assert section.count("<tr><td") == 2  # the finished window is not listed
    assert "later &lt;upgrade&gt;" in section
    assert "tagged api" in section
    assert section.index('class="now">now<') < section.index('data-label="When">upcoming<')


def test_an_empty_database_renders_an_empty_page(database: Database, tmp_path: Path) -> None:
    document, page = render(database, tmp_path)  # migrates the fresh database first

    assert document == {"generated_at": document["generated_at"], "sites": []}
    assert "No sites are monitored yet." in page
    assert "No incidents in the last 90 days." in page


def test_the_model_reads_nothing_but_rollups_states_incidents_windows_and_latest_rows(
    seeded: Database,
) -> None:
    """With the raw checks of the period gone, the numbers stay (only the latest row per
    site is read, for the certificate and the URL)."""
    before = load_status(seeded, PageSettings(), now=NOW)
    sql(
        seeded,
        "DELETE FROM webchecker.checks WHERE checked_at < :cut",
        cut=NOW - timedelta(minutes=59),
    )

    after = load_status(seeded, PageSettings(), now=NOW)

    assert [s.uptime for s in after.sites] == [s.uptime for s in before.sites]
    assert [s.days for s in after.sites] == [s.days for s in before.sites]
    assert [s.latency_p95_ms for s in after.sites] == [s.latency_p95_ms for s in before.sites]


def test_cli_writes_the_same_files(
    seeded: Database, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("STATUS_PAGE_TAGS", "prod")
    monkeypatch.delenv("DB_SCHEMA", raising=False)

    assert main(["status-page", "--out", str(tmp_path / "cli")]) == 0

    assert "2 sites" in capsys.readouterr().out
    document = json.loads((tmp_path / "cli" / "status.json").read_text())
    assert sorted(by_id(document)) == ["down-now", "steady"]
    assert (tmp_path / "cli" / "index.html").read_text().startswith("<!doctype html>")
    badge = (tmp_path / "cli" / "badges" / "down-now.svg").read_text()
    assert "down-now: down" in badge
