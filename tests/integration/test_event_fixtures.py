"""Every fixture in events/ runs through its handler, as `webchecker invoke` runs it.

These are the files users hand to `sam local invoke -e`; each one must work against local
services: the scheduler's against moto (SSM, Lambda), the checker's against the real broker,
the writer's against a real PostgreSQL. A new file in events/ must be added to HANDLERS.
"""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.aws import put_parameters, s3_with_bucket
from webchecker.check import guard
from webchecker.check.transport import KafkaSettings, read_messages
from webchecker.local.invoke import Invocation, invoke
from webchecker.results import CheckResult
from webchecker.store.database import Database, DatabaseSettings

ROOT = Path(__file__).resolve().parents[2]
EVENTS = sorted((ROOT / "events").glob("*.json"))
HANDLERS = {
    "checker.json": "checker",
    "scheduler-scheduled.json": "scheduler",
    "scheduler-eventbridge-scheduler.json": "scheduler",
    "writer-msk.json": "writer",
    "writer-msk-poison.json": "writer",
    "notifier-scheduled.json": "notifier",
    "webhook-sns.json": "webhook",
    "statuspage-scheduled.json": "statuspage",
    "api-list-sites.json": "api",
}


def test_every_fixture_has_a_handler() -> None:
    assert {path.name for path in EVENTS} == set(HANDLERS)


def run(function: str, event: dict[str, Any], env: dict[str, str]) -> Any:
    outcome = invoke(Invocation(function=function, event=event, env=env), root=ROOT)
    assert outcome.ok, outcome.payload
    return outcome.payload


@pytest.mark.parametrize("name", [n for n, f in HANDLERS.items() if f == "scheduler"])
def test_scheduler_fixture(name: str, ssm_client: Any, checker_function: str) -> None:
    sites = [{"id": f"site-{n}", "url": f"https://site-{n}.example"} for n in range(12)]
    put_parameters(ssm_client, {"/webchecker/sites/all": json.dumps(sites)})
    event = json.loads((ROOT / "events" / name).read_text())

    summary = run(
        "scheduler",
        event,
        {"CHECKER_FUNCTION_NAME": checker_function, "SITES_PATH": "/webchecker/sites"},
    )

    # Every site has interval 60, so every one is due at any tick.
    assert summary["tick"][:16] == event["time"][:16]
    assert (summary["sites"], summary["due"], summary["invalid"]) == (12, 12, 0)
    assert summary["invocations"] == 1


@pytest.mark.kafka
def test_checker_fixture(kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The fixture names public sites. Tests never leave the machine, so the resolver answers
    # as it does without internet: the handler still checks, publishes and reports each one.
    async def no_dns(host: str, port: int) -> list[guard.IPAddress]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(guard, "resolve", no_dns)
    topic = f"test.fixtures.{uuid.uuid4().hex[:12]}"
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "KAFKA_TOPIC": topic, "KAFKA_AUTH": "none"}
    event = json.loads((ROOT / "events" / "checker.json").read_text())

    summary = run("checker", event, env)

    count = len(event["sites"])
    assert summary["checked"] == summary["failed"] == summary["published"] == count
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("KAFKA_TOPIC", topic)
    messages = read_messages(KafkaSettings.from_env(), count=count, timeout=15)
    results = [CheckResult.from_json(m.value) for m in messages]
    assert sorted(r.site_id for r in results) == sorted(s["id"] for s in event["sites"])
    assert {r.error for r in results} == {"dns"}


@pytest.mark.postgres
@pytest.mark.parametrize("name", ["writer-msk.json", "writer-msk-poison.json"])
def test_writer_fixture(name: str, database_url: str) -> None:
    event = json.loads((ROOT / "events" / name).read_text())
    records = [r for batch in event["records"].values() for r in batch]

    first = run("writer", event, {"DATABASE_URL": database_url})
    again = run("writer", event, {"DATABASE_URL": database_url})

    assert first["received"] == again["received"] == len(records)
    assert first["inserted"] + first["duplicates"] + first["rejected"] == len(records)
    assert first["inserted"] > 0
    if name == "writer-msk.json":
        assert first["rejected"] == 0
    else:
        assert first["rejected"] > 0
    # Delivered twice, stored once: the second delivery inserts nothing new.
    assert again["inserted"] == 0
    with Database(DatabaseSettings.from_env({"DATABASE_URL": database_url})) as db:
        connection = db.connection()
        stored = connection.run("SELECT count(*) FROM webchecker.checks")[0][0]
        kept = connection.run("SELECT count(*) FROM webchecker.check_rejects")[0][0]
    assert (stored, kept) == (first["inserted"], first["rejected"])


@pytest.mark.postgres
def test_statuspage_fixture(aws: None, database_url: str) -> None:
    s3 = s3_with_bucket("status-page")
    event = json.loads((ROOT / "events" / "statuspage-scheduled.json").read_text())

    result = run(
        "statuspage", event, {"DATABASE_URL": database_url, "STATUS_BUCKET": "status-page"}
    )

    assert result == {
        "sites": 0,
        "files": 2,
        "bytes": result["bytes"],
        "written": 2,
        "unchanged": 0,
        "deleted": 0,
    }
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket="status-page")["Contents"]}
    assert keys == {"index.html", "status.json"}


@pytest.mark.postgres
def test_notifier_fixture(database_url: str, aws: None) -> None:
    import boto3

    topic = boto3.client("sns").create_topic(Name="webchecker-alerts")["TopicArn"]
    event = json.loads((ROOT / "events" / "notifier-scheduled.json").read_text())
    env = {"DATABASE_URL": database_url, "ALERT_TOPIC_ARN": topic}

    # a database without alerts yet: the notifier migrates it and finds nothing to send
    assert run("notifier", event, env) == {"sent": 0, "pending": 0}


def test_webhook_fixture(http_targets: Any) -> None:
    event = json.loads((ROOT / "events" / "webhook-sns.json").read_text())
    env = {"WEBHOOK_URL": http_targets.url("/ok"), "WEBHOOK_FLAVOUR": "slack"}
    before = len(http_targets.requests_to("/ok"))

    assert run("webhook", event, env) == {"posted": 1}

    (posted,) = http_targets.requests_to("/ok")[before:]
    assert json.loads(posted.body)["text"] == "DOWN example-com: status 503"


def test_api_fixture(ssm_client: Any, database_url: str) -> None:
    put_parameters(ssm_client, {"/webchecker/sites/example": {"url": "https://example.com/"}})
    event = json.loads((ROOT / "events" / "api-list-sites.json").read_text())
    env = {"DATABASE_URL": database_url, "SITES_PATH": "/webchecker/sites"}
    response = run("api", event, env)
    assert response["statusCode"] == 200, response
    assert [site["id"] for site in json.loads(response["body"])["sites"]] == ["example"]
