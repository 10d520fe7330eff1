"""functions/statuspage/app.py on real PostgreSQL and moto's S3: the files land in the bucket
with their content types, the same bytes `webchecker status-page` writes to a directory; a
later run with the same data rewrites only index.html and status.json."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

from tests.fixtures.aws import s3_with_bucket
from tests.fixtures.lambda_context import FakeLambdaContext, load_app
from tests.messages import failed_message, message, records
from webchecker.exceptions import ConfigurationError, StatusPageError
from webchecker.page.publish import S3Publisher
from webchecker.page.settings import PageSettings
from webchecker.page.statuspage import StatusPage
from webchecker.store.batch import CheckStore
from webchecker.store.database import Database
from webchecker.store.migrations import RetentionSettings, migrate

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.postgres

BUCKET = "webchecker-status"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def s3(aws: None) -> S3Client:
    return s3_with_bucket(BUCKET)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, database_url: str, s3: S3Client) -> Iterator[ModuleType]:
    module = load_app(monkeypatch, "statuspage", DATABASE_URL=database_url, STATUS_BUCKET=BUCKET)
    yield module
    module.PAGE.close()


def test_handler_puts_page_json_and_badges_into_the_bucket(
    app: ModuleType, s3: S3Client, database: Database
) -> None:
    migrate(database)
    CheckStore(database, retention=RetentionSettings()).write(
        records(
            [
                # two of each: enough for the default thresholds, should the writer's state
                # machine run, and the latest check says the same when it does not
                message(site_id="shop", checked_at=NOW - timedelta(minutes=4)),
                message(site_id="shop", checked_at=NOW - timedelta(minutes=3)),
                failed_message(site_id="api", checked_at=NOW - timedelta(minutes=3)),
                failed_message(site_id="api", checked_at=NOW - timedelta(minutes=2)),
            ]
        )
    )

    result = app.lambda_handler({}, FakeLambdaContext())

    assert result["sites"] == 2
    assert result["files"] == 4
    assert (result["written"], result["unchanged"], result["deleted"]) == (4, 0, 0)
    objects = {item["Key"]: item for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert set(objects) == {"index.html", "status.json", "badges/shop.svg", "badges/api.svg"}
    page = s3.get_object(Bucket=BUCKET, Key="index.html")
    assert page["ContentType"] == "text/html; charset=utf-8"
    assert page["CacheControl"] == "public, max-age=60"
    assert b"<h3" in page["Body"].read()
    document = json.loads(s3.get_object(Bucket=BUCKET, Key="status.json")["Body"].read())
    states = {site["site_id"]: site["state"] for site in document["sites"]}
    assert states == {"shop": "up", "api": "down"}
    badge = s3.get_object(Bucket=BUCKET, Key="badges/shop.svg")
    assert badge["ContentType"] == "image/svg+xml"


def seed(database: Database, *messages: dict[str, object]) -> None:
    CheckStore(database, retention=RetentionSettings()).write(records(list(messages)))


def versions(s3: S3Client) -> dict[str, int]:
    counts: dict[str, int] = {}
    for version in s3.list_object_versions(Bucket=BUCKET).get("Versions", []):
        counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts


@pytest.fixture
def versioned(s3: S3Client) -> S3Client:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return s3


def test_a_second_run_reports_the_unchanged_badges(
    app: ModuleType, versioned: S3Client, database: Database
) -> None:
    migrate(database)
    seed(
        database,
        message(site_id="shop", checked_at=NOW - timedelta(minutes=4)),
        message(site_id="api", checked_at=NOW - timedelta(minutes=4)),
    )
    first = app.lambda_handler({}, FakeLambdaContext())
    second = app.lambda_handler({}, FakeLambdaContext())

    assert (first["written"], first["unchanged"]) == (4, 0)
    # index.html and status.json carry the generated time: unchanged only within a second
    assert second["unchanged"] >= 2
    assert second["written"] + second["unchanged"] == second["files"] == 4
    assert versions(versioned)["badges/shop.svg"] == versions(versioned)["badges/api.svg"] == 1


def test_unchanged_data_rewrites_only_the_page_and_a_changed_site_its_badge(
    versioned: S3Client, database: Database
) -> None:
    migrate(database)
    seed(
        database,
        message(site_id="shop", checked_at=NOW - timedelta(minutes=4)),
        message(site_id="api", checked_at=NOW - timedelta(minutes=4)),
    )
    page = StatusPage(PageSettings(), database, S3Publisher(BUCKET, client=versioned))

    first = page.publish(now=NOW)
    again = page.publish(now=NOW + timedelta(minutes=5))  # the next scheduled run
    shop_before = versioned.get_object(Bucket=BUCKET, Key="badges/shop.svg")["Body"].read()
    seed(
        database,
        failed_message(site_id="shop", checked_at=NOW + timedelta(minutes=6)),
        failed_message(site_id="shop", checked_at=NOW + timedelta(minutes=7)),
    )
    changed = page.publish(now=NOW + timedelta(minutes=10))

    assert (first["written"], first["unchanged"]) == (4, 0)
    assert (again["written"], again["unchanged"], again["deleted"]) == (2, 2, 0)
    assert (changed["written"], changed["unchanged"]) == (3, 1)
    assert versions(versioned) == {
        "index.html": 3,
        "status.json": 3,
        "badges/shop.svg": 2,
        "badges/api.svg": 1,
    }
    shop_after = versioned.get_object(Bucket=BUCKET, Key="badges/shop.svg")["Body"].read()
    assert b"100%" in shop_before
    assert shop_after != shop_before
    assert b"100%" not in shop_after  # two of its three checks failed


def test_a_site_no_longer_shown_loses_its_badge(versioned: S3Client, database: Database) -> None:
    migrate(database)
    seed(
        database,
        message(site_id="shop", checked_at=NOW - timedelta(minutes=4)),
        message(site_id="api", checked_at=NOW - timedelta(minutes=4)),
    )
    publisher = S3Publisher(BUCKET, client=versioned)
    StatusPage(PageSettings(), database, publisher).publish(now=NOW)

    only_shop = StatusPage(PageSettings(site_ids=frozenset({"shop"})), database, publisher)
    result = only_shop.publish(now=NOW + timedelta(minutes=5))

    assert (result["sites"], result["written"], result["unchanged"]) == (1, 2, 1)
    assert result["deleted"] == 1
    keys = {item["Key"] for item in versioned.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {"index.html", "status.json", "badges/shop.svg"}


def test_cold_start_without_a_bucket_fails_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.delenv("STATUS_BUCKET", raising=False)
    with pytest.raises(ConfigurationError, match="STATUS_BUCKET"):
        load_app(monkeypatch, "statuspage", DATABASE_URL=database_url)


def test_cold_start_with_a_bad_selection_fails_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    with pytest.raises(ConfigurationError, match="STATUS_PAGE_TAGS"):
        load_app(
            monkeypatch,
            "statuspage",
            DATABASE_URL=database_url,
            STATUS_BUCKET=BUCKET,
            STATUS_PAGE_TAGS="<x>",
        )


def test_a_missing_bucket_is_a_status_page_error(s3: S3Client) -> None:
    publisher = S3Publisher("no-such-bucket", client=s3)
    with pytest.raises(StatusPageError, match="no-such-bucket"):
        publisher.publish({"index.html": (b"x", "text/html")})
