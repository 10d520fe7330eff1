"""The API handler on moto (SSM, SNS) and a real PostgreSQL: fixtures and request helpers.

Requests are the payload 2.0 event files in ``events/`` next to this file; a test changes
only what it is about (the path, the query, the body, a header).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from tests.fixtures.aws import AWS_REGION
from tests.fixtures.lambda_context import FakeLambdaContext, cold_start, restore_logger
from tests.fixtures.postgres import DatabaseTemplates, migrated_copy
from tests.messages import msk_event, records
from webchecker.store.database import Database

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

EVENTS = Path(__file__).parent / "events"
SITES_PATH = "/webchecker/sites"
_UNSET: Any = object()


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


def api_event(
    name: str,
    *,
    path: str | None = None,
    query: Mapping[str, str] | None = None,
    body: Any = _UNSET,
    headers: Mapping[str, str] | None = None,
    method: str | None = None,
) -> dict[str, Any]:
    """The event file ``events/<name>.json`` with the given parts replaced."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    if path is not None:
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
    if method is not None:
        event["requestContext"]["http"]["method"] = method
    if query is not None:
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
        event["queryStringParameters"] = dict(query) or None
        if not query:
            event.pop("queryStringParameters")
    if body is not _UNSET:
        event["body"] = body if isinstance(body, str) or body is None else json.dumps(body)
    if headers:
        event["headers"] = {**event["headers"], **{k.lower(): v for k, v in headers.items()}}
    return event


def reply_of(response: Mapping[str, Any]) -> Reply:
    headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
    return Reply(int(response["statusCode"]), headers, str(response.get("body") or ""))


class ApiClient:
    """Calls the handler of functions/api/app.py with event files."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.replies: list[Reply] = []

    def __call__(self, name: str, **changes: Any) -> Reply:
        response = self.module.lambda_handler(api_event(name, **changes), FakeLambdaContext())
        reply = reply_of(response)
        self.replies.append(reply)
        return reply


@pytest.fixture
def sns_client(aws: None) -> SNSClient:
    client: SNSClient = boto3.client("sns", region_name=AWS_REGION)
    return client


@pytest.fixture
def alert_topic(sns_client: SNSClient) -> str:
    return sns_client.create_topic(Name="webchecker-alerts")["TopicArn"]


@pytest.fixture
def migrated(database_url: str, database_templates: DatabaseTemplates) -> Iterator[Database]:
    with migrated_copy(database_templates, database_url) as database:
        yield database


@pytest.fixture
def api_env(
    monkeypatch: pytest.MonkeyPatch,
    aws: None,
    migrated: Database,
    database_url: str,
    alert_topic: str,
) -> dict[str, str]:
    restore_logger(monkeypatch)
    env = {
        "DATABASE_URL": database_url,
        "SITES_PATH": SITES_PATH,
        "SITES_CACHE_SECONDS": "0",
        "ALERT_TOPIC_ARN": alert_topic,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "webchecker-api",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def api(api_env: dict[str, str]) -> Iterator[ApiClient]:
    module = cold_start("api")
    yield ApiClient(module)
    module.API.services.close()


def write_checks(monkeypatch: pytest.MonkeyPatch, messages: list[dict[str, Any]]) -> dict[str, int]:
    """Stores check messages through the writer's real handler (DATABASE_URL as set)."""
    restore_logger(monkeypatch)
    writer = cold_start("writer")
    try:
        result: dict[str, int] = writer.lambda_handler(
            msk_event(records(messages)), FakeLambdaContext()
        )
    finally:
        writer.WRITER.close()
    return result


def rows(database: Database, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with database.transaction() as connection:
        return [tuple(row) for row in connection.run(sql, **params)]
