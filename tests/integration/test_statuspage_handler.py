"""functions/statuspage/app.py on real PostgreSQL and moto's S3: the files land in the bucket
with their content types, the same bytes `webchecker status-page` writes to a directory."""

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


def test_each_run_writes_whole_new_versions(app: ModuleType, s3: S3Client) -> None:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    first = app.lambda_handler({}, FakeLambdaContext())
    second = app.lambda_handler({}, FakeLambdaContext())

    assert first["files"] == second["files"] == 2
    versions = s3.list_object_versions(Bucket=BUCKET).get("Versions", [])
    assert sorted(v["Key"] for v in versions) == [
        "index.html",
        "index.html",
        "status.json",
        "status.json",
    ]


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
