"""Status, checks, report and incidents through the handler, on checks the writer stored."""

from __future__ import annotations

import io
import json
import uuid
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from tests.fixtures.aws import put_parameters
from tests.integration.api.conftest import SITES_PATH, ApiClient, rows, write_checks
from tests.messages import failed_message, message
from webchecker.cli import main as cli_main
from webchecker.store.database import Database

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

pytestmark = pytest.mark.postgres

NOW = datetime.now(UTC).replace(microsecond=0)


def seed_sites(ssm: SSMClient) -> None:
    put_parameters(
        ssm,
        {
            f"{SITES_PATH}/example": {"url": "https://example.com/"},
            f"{SITES_PATH}/quiet": {"url": "https://quiet.example/"},
            f"{SITES_PATH}/off": {"url": "https://off.example/", "enabled": False},
        },
    )


def checks_of(
    site: str, count: int, *, start: datetime, failing: bool = False
) -> list[dict[str, Any]]:
    make = failed_message if failing else message
    return [
        make(site_id=site, url=f"https://{site}.example/", checked_at=start + timedelta(minutes=i))
        for i in range(count)
    ]


def seed_state(
    database: Database, site: str, state: str, since: datetime, incident: str | None
) -> None:
    with database.transaction() as connection:
        connection.run(
            "INSERT INTO webchecker.site_state (site_id, state, since, url, incident_id)"
            " VALUES (:site, :state, :since, :url, CAST(:incident AS uuid))"
            " ON CONFLICT (site_id) DO UPDATE SET state = EXCLUDED.state, since = EXCLUDED.since,"
            " incident_id = EXCLUDED.incident_id",
            site=site, state=state, since=since, url=f"https://{site}.example/", incident=incident,
        )  # fmt: skip


def seed_incident(
    database: Database, site: str, opened: datetime, resolved: datetime | None
) -> str:
    incident_id = str(uuid.uuid4())
    with database.transaction() as connection:
        connection.run(
            "INSERT INTO webchecker.incidents (incident_id, site_id, url, tags, opened_at,"
            " resolved_at, error, error_detail, status_code) VALUES (CAST(:id AS uuid), :site,"
            " :url, CAST(:tags AS text[]), :opened, :resolved, 'status', 'got 503', 503)",
            id=incident_id, site=site, url=f"https://{site}.example/", tags=["prod"],
            opened=opened, resolved=resolved,
        )  # fmt: skip
    return incident_id


def test_status_joins_state_latest_check_and_open_incident(
    api: ApiClient, ssm_client: SSMClient, migrated: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_sites(ssm_client)
    written = checks_of("example", 3, start=NOW - timedelta(minutes=10))
    assert write_checks(monkeypatch, written)["inserted"] == 3
    opened = NOW - timedelta(minutes=30)
    incident_id = seed_incident(migrated, "example", opened, None)
    seed_state(migrated, "example", "down", opened, incident_id)

    status = api("site-status")
    assert status.status == 200, status.text
    body = status.json
    assert body["site_id"] == "example"
    assert body["state"] == "down"
    assert body["since"] == opened.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert body["last_check"]["check_id"] == written[-1]["check_id"]
    assert body["last_check"] == {**written[-1]}
    assert body["incident"]["incident_id"] == incident_id
    assert body["incident"]["state"] == "open"
    assert body["incident"]["duration_seconds"] is None

    quiet = api("site-status", path="/v1/sites/quiet/status").json
    assert quiet["state"] == "unknown"
    assert quiet["last_check"] is None
    assert quiet["incident"] is None
    assert api("site-status", path="/v1/sites/off/status").json["state"] == "disabled"
    missing = api("site-status", path="/v1/sites/nope/status")
    assert missing.status == 404
    assert missing.content_type == "application/problem+json"


def test_status_in_a_maintenance_window(
    api: ApiClient, ssm_client: SSMClient, migrated: Database
) -> None:
    seed_sites(ssm_client)
    window = {
        "site_ids": ["example"],
        "starts_at": (NOW - timedelta(minutes=5)).isoformat(),
        "ends_at": (NOW + timedelta(hours=1)).isoformat(),
        "reason": "upgrade",
    }
    created = api("add-maintenance", body=window)
    assert created.status == 201, created.text
    status = api("site-status").json
    assert status["state"] == "maintenance"
    assert status["maintenance"]["id"] == created.json["id"]
    assert api("site-status", path="/v1/sites/quiet/status").json["state"] == "unknown"


def test_checks_newest_first_in_pages_through_every_row(
    api: ApiClient, ssm_client: SSMClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_sites(ssm_client)
    start = NOW - timedelta(hours=2)
    written = checks_of("example", 5, start=start) + checks_of("quiet", 2, start=start)
    # two checks at the same instant: the cursor breaks the tie on check_id
    written.append(message(site_id="example", checked_at=start + timedelta(minutes=4)))
    write_checks(monkeypatch, written)
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(10):
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = api("site-checks", query=query)
        assert page.status == 200, page.text
        seen += page.json["checks"]
        cursor = page.json["next_cursor"]
        if cursor is None:
            break
    mine = [m for m in written if m["site_id"] == "example"]
    assert sorted(c["check_id"] for c in seen) == sorted(m["check_id"] for m in mine)
    times = [c["checked_at"] for c in seen]
    assert times == sorted(times, reverse=True)
    since = (start + timedelta(minutes=3)).isoformat()
    until = (start + timedelta(minutes=4)).isoformat()
    window = api("site-checks", query={"since": since, "until": until}).json["checks"]
    assert [c["checked_at"] for c in window] == [mine[3]["checked_at"]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WzEsMl0"}, "cursor"),  # [1,2]: decodes, wrong shape
        ({"since": "yesterday"}, "since"),
        ({"until": "99999999999w"}, "until"),
    ],
)
def test_checks_bad_queries_are_422_naming_the_parameter(
    api: ApiClient, ssm_client: SSMClient, query: dict[str, str], field: str
) -> None:
    seed_sites(ssm_client)
    reply = api("site-checks", query=query)
    assert reply.status == 422, reply.text
    assert reply.json["errors"][0]["field"] == field


def test_checks_of_an_unknown_site_are_404(api: ApiClient) -> None:
    assert api("site-checks", path="/v1/sites/nope/checks").status == 404


def test_report_is_webchecker_report_json(
    api: ApiClient,
    ssm_client: SSMClient,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
) -> None:
    seed_sites(ssm_client)
    start = NOW - timedelta(hours=3)
    write_checks(
        monkeypatch,
        checks_of("example", 6, start=start)
        + checks_of("example", 2, start=start + timedelta(minutes=30), failing=True)
        + checks_of("quiet", 3, start=start),
    )  # fmt: skip
    reply = api("report", query={"since": "7d"})
    assert reply.status == 200, reply.text
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli_main(["report", "--json", "--since", "7d"]) == 0
    assert reply.json == {"sites": json.loads(out.getvalue())}
    assert [s["site_id"] for s in reply.json["sites"]] == ["example", "quiet"]
    assert reply.json["sites"][0]["failures"] == 2
    one = api("report").json["sites"]
    assert [s["site_id"] for s in one] == ["example"]
    assert api("report", query={"since": "soon"}).json["errors"][0]["field"] == "since"
    assert api("report", query={"site": "Not An Id"}).status == 422


def test_incidents_filters_and_pages(api: ApiClient, migrated: Database) -> None:
    base = NOW - timedelta(days=3)
    resolved = [
        seed_incident(
            migrated, "example", base + timedelta(hours=i), base + timedelta(hours=i, minutes=5)
        )
        for i in range(3)
    ]  # fmt: skip
    open_one = seed_incident(migrated, "quiet", base + timedelta(hours=10), None)
    everything = api("incidents", query={"limit": "2"})
    assert everything.status == 200, everything.text
    ids = [i["incident_id"] for i in everything.json["incidents"]]
    rest = api("incidents", query={"limit": "2", "cursor": everything.json["next_cursor"]}).json
    ids += [i["incident_id"] for i in rest["incidents"]]
    assert ids == [open_one, *reversed(resolved)]
    assert rest["next_cursor"] is None
    opened = api("incidents").json["incidents"]
    assert [i["incident_id"] for i in opened] == [open_one]
    done = api("incidents", query={"state": "resolved", "site_id": "example"}).json["incidents"]
    assert len(done) == 3
    assert all(i["duration_seconds"] == 300.0 for i in done)
    assert done[0]["tags"] == ["prod"]
    assert done[0]["status_code"] == 503
    assert api("incidents", query={"state": "closed"}).json["errors"][0]["field"] == "state"
    assert rows(migrated, "SELECT count(*) FROM webchecker.incidents") == [(4,)]
