"""The scheduler handler on the events/ fixtures, against Parameter Store and Lambda in moto.

Invokes go through boto3 to moto's Lambda (Docker-free backend: accepted with 202, not
run); ``InvokeRecorder`` reads what was really sent from botocore's event hooks.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from aws_lambda_powertools import Metrics

from tests.fixtures.aws import InvokeRecorder, put_parameters, unreachable_lambda_client
from tests.fixtures.lambda_context import FakeLambdaContext, cold_start, load_event, restore_logger
from webchecker.exceptions import FanoutError
from webchecker.schedule.catalog import SiteStore
from webchecker.schedule.fanout import LambdaInvoker
from webchecker.schedule.scheduler import SchedulerSettings, run_schedule

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

ROOT = "/webchecker/sites"
SERVICE = "webchecker-scheduler"
INTERVALS = [60, 120, 300, 600, 3600]


def due_by_contract(site_id: str, interval: int, when: datetime) -> bool:
    """DESIGN.md's rule, written out independently of webchecker.schedule.plan."""
    minute = int(when.timestamp()) // 60
    offset = int.from_bytes(hashlib.sha256(site_id.encode()).digest()[:8], "big")
    return (minute + offset) % (interval // 60) == 0


def load_app(monkeypatch: pytest.MonkeyPatch, **env: str) -> ModuleType:
    """Imports functions/scheduler/app.py afresh (its cold start reads the environment)."""
    monkeypatch.setenv("CHECKER_FUNCTION_NAME", "webchecker-checker")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", SERVICE)  # as template.yaml names it
    # Powertools configures a logger once per process, writing to the sys.stdout of that
    # moment (an earlier test's capture), and the handler rewires "webchecker" to it: start
    # both afresh for this test, and put them back afterwards.
    for name in (SERVICE, "webchecker"):
        restore_logger(monkeypatch, name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return cold_start("scheduler")


def recorded(app: ModuleType) -> InvokeRecorder:
    recorder = InvokeRecorder()
    recorder.attach(app.INVOKER.client)
    return recorder


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def metric(emf: dict[str, Any], name: str) -> float:
    """One metric's value from an EMF record (Powertools writes a list of values)."""
    value = emf[name]
    return float(value[0] if isinstance(value, list) else value)


@pytest.fixture
def catalog(ssm_client: SSMClient) -> dict[str, int]:
    """Seeds a mixed site list; returns the valid sites as id -> interval.

    340 single-site parameters (34+ pages of GetParametersByPath), arrays, SecureStrings
    in both shapes, and one invalid entry of every kind.
    """
    valid: dict[str, int] = {}
    single: dict[str, Any] = {}
    for i in range(340):
        interval = INTERVALS[i % len(INTERVALS)]
        single[f"{ROOT}/single/s{i:03d}"] = {"url": f"http://127.0.0.1:9/{i}", "interval": interval}
        valid[f"s{i:03d}"] = interval
    arrays: dict[str, Any] = {}
    for a in range(4):
        items = []
        for j in range(10):
            site_id = f"a{a}-{j}"
            interval = INTERVALS[j % len(INTERVALS)]
            items.append(
                {"id": site_id, "url": f"http://127.0.0.1:9/{site_id}", "interval": interval}
            )
            valid[site_id] = interval
        arrays[f"{ROOT}/arrays/pack{a}"] = items
    put_parameters(ssm_client, {**single, **arrays})
    secure_one = {"url": "http://127.0.0.1:9/", "headers": {"Authorization": "Bearer t0ken"}}
    secure_many = [{"id": "sec-b", "url": "http://127.0.0.1:9/b", "headers": {"X-Key": "k3y"}}]
    put_parameters(
        ssm_client,
        {f"{ROOT}/secret/sec-a": secure_one, f"{ROOT}/secret/many": secure_many},
        secure=frozenset({f"{ROOT}/secret/sec-a", f"{ROOT}/secret/many"}),
    )
    valid.update({"sec-a": 60, "sec-b": 60})
    put_parameters(
        ssm_client,
        {
            f"{ROOT}/bad/json": "{'url': 'http://127.0.0.1/'}",
            f"{ROOT}/bad/unknown-key": {"url": "http://127.0.0.1/", "intervall": 60},
            f"{ROOT}/bad/url": {"url": "ftp://127.0.0.1/"},
            f"{ROOT}/bad/interval": {"url": "http://127.0.0.1/", "interval": 90},
            f"{ROOT}/bad/regex": {"url": "http://127.0.0.1/", "regex": "(unclosed"},
            # "/bad/..." sorts before "/single/...", so this later duplicate is kept there
            f"{ROOT}/zz/duplicate": {"id": "s001", "url": "http://127.0.0.1/dup"},
            f"{ROOT}/arrays/pack9": [
                {"id": "ok-in-array", "url": "http://127.0.0.1:9/x"},
                {"id": "bad-in-array", "url": "http://127.0.0.1/", "timeout": 0},
            ],
        },
    )
    valid["ok-in-array"] = 60
    return valid


EXPECTED_INVALID = {
    (f"{ROOT}/bad/json", None),
    (f"{ROOT}/bad/unknown-key", None),
    (f"{ROOT}/bad/url", None),
    (f"{ROOT}/bad/interval", None),
    (f"{ROOT}/bad/regex", None),
    (f"{ROOT}/zz/duplicate", None),
    (f"{ROOT}/arrays/pack9", 1),
}


def test_handler_schedules_every_due_site_from_parameter_store(
    monkeypatch: pytest.MonkeyPatch,
    catalog: dict[str, int],
    checker_function: str,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = load_app(monkeypatch, CHECKS_PER_INVOCATION="20")
    recorder = recorded(app)
    event = load_event("scheduler-scheduled")
    tick = datetime(2026, 11, 27, 19, 50, tzinfo=UTC)
    expected_due = {i for i, interval in catalog.items() if due_by_contract(i, interval, tick)}

    result = app.lambda_handler(event, lambda_context)

    assert result["tick"] == "2026-11-27T19:50:00Z"
    assert result["sites"] == len(catalog)
    assert result["invalid"] == len(EXPECTED_INVALID)
    assert result["due"] == len(expected_due)
    assert result["invocations"] == math.ceil(len(expected_due) / 20) == len(recorder.invokes)
    assert (result["oversized"], result["failed_invocations"]) == (0, 0)
    assert sorted(recorder.site_ids()) == sorted(expected_due)  # each exactly once
    for invoke in recorder.invokes:
        assert (invoke.function_name, invoke.invocation_type) == (checker_function, "Event")
        assert invoke.status_code == 202
        assert invoke.payload["scheduled_at"] == "2026-11-27T19:50:00Z"
        assert 1 <= len(invoke.payload["sites"]) <= 20
    sent = {site["id"]: site for invoke in recorder.invokes for site in invoke.payload["sites"]}
    # SecureString parameters arrive decrypted, every default filled in.
    assert sent["sec-a"]["headers"] == {"Authorization": "Bearer t0ken"}
    assert sent["sec-b"]["headers"] == {"X-Key": "k3y"}
    assert sent["sec-a"]["timeout"] == 10
    assert sent["sec-a"]["expected_status"] == ["200-399"]
    assert sent["s001"]["url"] == "http://127.0.0.1:9/1"  # the first by name kept its id

    # Each skipped entry is one structured JSON warning with the parameter, index, reason.
    output = json_lines(capsys.readouterr().out)
    skipped = [line for line in output if str(line.get("message")).startswith("invalid site")]
    assert {line["level"] for line in skipped} == {"WARNING"}
    assert {line["name"] for line in skipped} == {"webchecker.schedule.scheduler"}
    assert {(line["parameter"], line.get("index")) for line in skipped} == EXPECTED_INVALID
    reasons = {line["parameter"]: line["reason"] for line in skipped}
    assert reasons[f"{ROOT}/bad/interval"].startswith("interval:")
    assert reasons[f"{ROOT}/bad/regex"].startswith("regex:")
    assert "duplicate" in reasons[f"{ROOT}/zz/duplicate"]
    (emf,) = [line for line in output if "_aws" in line]
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Webchecker"
    assert metric(emf, "InvalidSites") == len(EXPECTED_INVALID)
    assert metric(emf, "DueSites") == len(expected_due)
    assert metric(emf, "Invocations") == result["invocations"]


def test_a_replayed_old_event_schedules_by_its_own_time(
    monkeypatch: pytest.MonkeyPatch,
    catalog: dict[str, int],
    checker_function: str,
    lambda_context: FakeLambdaContext,
) -> None:
    app = load_app(monkeypatch)
    recorder = recorded(app)
    old = {"time": "2020-01-01T00:07:31Z"}  # EventBridge Scheduler input shape, years ago
    tick = datetime(2020, 1, 1, 0, 7, tzinfo=UTC)
    expected = sorted(i for i, interval in catalog.items() if due_by_contract(i, interval, tick))

    first = app.lambda_handler(old, lambda_context)
    first_ids = sorted(recorder.site_ids())
    recorder.invokes.clear()
    again = app.lambda_handler(old, lambda_context)

    assert first["tick"] == "2020-01-01T00:07:00Z"
    assert first_ids == expected == sorted(recorder.site_ids())
    assert first == again
    assert {invoke.payload["scheduled_at"] for invoke in recorder.invokes} == {
        "2020-01-01T00:07:00Z"
    }


def test_both_trigger_shapes_schedule_the_same_sites(
    monkeypatch: pytest.MonkeyPatch,
    catalog: dict[str, int],
    checker_function: str,
    lambda_context: FakeLambdaContext,
) -> None:
    app = load_app(monkeypatch)
    recorder = recorded(app)
    results = []
    for name in ("scheduler-scheduled", "scheduler-eventbridge-scheduler"):
        recorder.invokes.clear()
        results.append((app.lambda_handler(load_event(name), lambda_context), recorder.site_ids()))
    (a, a_ids), (b, b_ids) = results
    assert a == b
    assert sorted(a_ids) == sorted(b_ids)


def test_large_sites_are_sharded_under_the_payload_limit(
    monkeypatch: pytest.MonkeyPatch,
    ssm_client: SSMClient,
    checker_function: str,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # ~7.5 KB sites (about Parameter Store's 8 KB Advanced limit): 50 of them would be 375 KB.
    pad = "p" * 7500
    put_parameters(
        ssm_client,
        {f"{ROOT}/big/b{i:02d}": {"url": "http://127.0.0.1/", "body": pad} for i in range(120)},
    )
    # moto stores what real SSM would refuse: one site bigger than an invoke payload.
    put_parameters(
        ssm_client, {f"{ROOT}/big/huge": {"url": "http://127.0.0.1/", "body": "h" * 300_000}}
    )
    app = load_app(monkeypatch, CHECKS_PER_INVOCATION="50")
    recorder = recorded(app)

    result = app.lambda_handler(load_event("scheduler-scheduled"), lambda_context)

    assert (result["sites"], result["due"], result["oversized"]) == (121, 121, 1)
    assert sorted(recorder.site_ids()) == sorted(f"b{i:02d}" for i in range(120))
    assert all(invoke.size <= 256 * 1024 for invoke in recorder.invokes)
    assert max(invoke.size for invoke in recorder.invokes) > 200 * 1024  # packed, not sliced thin
    per_shard = 256 * 1024 // (7500 + 120)
    assert len(recorder.invokes) == result["invocations"] == math.ceil(120 / per_shard)
    output = json_lines(capsys.readouterr().out)
    assert any(line.get("site_id") == "huge" and line["level"] == "ERROR" for line in output)


def test_the_site_list_is_cached_for_sites_cache_seconds(
    monkeypatch: pytest.MonkeyPatch,
    ssm_client: SSMClient,
    checker_function: str,
    lambda_context: FakeLambdaContext,
) -> None:
    put_parameters(ssm_client, {f"{ROOT}/one": {"url": "http://127.0.0.1/"}})
    cached = load_app(monkeypatch, SITES_CACHE_SECONDS="3600")
    assert cached.lambda_handler(load_event("scheduler-scheduled"), lambda_context)["sites"] == 1
    put_parameters(ssm_client, {f"{ROOT}/two": {"url": "http://127.0.0.1/"}})
    assert cached.lambda_handler(load_event("scheduler-scheduled"), lambda_context)["sites"] == 1
    fresh = load_app(monkeypatch, SITES_CACHE_SECONDS="0")
    assert fresh.lambda_handler(load_event("scheduler-scheduled"), lambda_context)["sites"] == 2


def test_a_missing_checker_name_fails_at_cold_start(
    monkeypatch: pytest.MonkeyPatch, aws: None
) -> None:
    from webchecker.exceptions import ConfigurationError

    monkeypatch.setenv("CHECKER_FUNCTION_NAME", "")
    with pytest.raises(ConfigurationError, match="CHECKER_FUNCTION_NAME"):
        cold_start("scheduler")


def test_when_no_invoke_succeeds_the_tick_fails_after_its_metrics(
    ssm_client: SSMClient,
) -> None:
    # Nothing listens on this loopback port: every invoke fails (like a wrong function
    # name or a missing permission would in AWS). moto's Docker-free Lambda accepts any
    # function name, so the failure comes from the connection instead.
    put_parameters(ssm_client, {f"{ROOT}/one": {"url": "http://127.0.0.1/"}})
    client = unreachable_lambda_client()
    settings = SchedulerSettings(checker_function_name="webchecker-checker")
    metrics = Metrics(namespace="Webchecker")
    try:
        with pytest.raises(FanoutError, match="all 1 invokes of webchecker-checker failed"):
            run_schedule(
                load_event("scheduler-scheduled"),
                settings=settings,
                store=SiteStore(settings.store, client=ssm_client),
                invoker=LambdaInvoker("webchecker-checker", client=client),
                metrics=metrics,
            )
        assert metrics.metric_set["FailedInvocations"]["Value"] == [1.0]
        assert metrics.metric_set["DueSites"]["Value"] == [1.0]
    finally:
        metrics.clear_metrics()


def test_hostile_site_entries_are_invalid_and_the_tick_goes_on(
    monkeypatch: pytest.MonkeyPatch,
    ssm_client: SSMClient,
    checker_function: str,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 9 items 2 and 3: these failed the whole tick (OverflowError, UnicodeEncodeError)."""
    hostile = {
        f"{ROOT}/h/inf": '{"url": "http://127.0.0.1:9/", "interval": 1e309}',
        f"{ROOT}/h/nan": '{"url": "http://127.0.0.1:9/", "timeout": NaN}',
        f"{ROOT}/h/big": '{"url": "http://127.0.0.1:9/", "timeout": 1' + "0" * 400 + "}",
        f"{ROOT}/h/url": '{"url": "http://example.com/\\ud800"}',
        f"{ROOT}/h/header": '{"url": "http://127.0.0.1:9/", "headers": {"X": "\\udfff"}}',
        f"{ROOT}/h/body": '{"url": "http://127.0.0.1:9/", "body": "\\ud800"}',
        f"{ROOT}/h/regex": '{"url": "http://127.0.0.1:9/", "regex": "\\ud800"}',
        f"{ROOT}/h/backref": '{"url": "http://127.0.0.1:9/", "regex": "(a)\\\\1"}',
        f"{ROOT}/h/ctl": '{"url": "http://127.0.0.1:9/", "headers": {"X": "a\\u000bb"}}',
        f"{ROOT}/h/good": '{"url": "http://127.0.0.1:9/"}',
    }
    put_parameters(ssm_client, hostile)
    app = load_app(monkeypatch)
    recorder = recorded(app)

    result = app.lambda_handler(load_event("scheduler-scheduled"), lambda_context)

    assert (result["sites"], result["invalid"]) == (1, len(hostile) - 1)
    assert recorder.site_ids() == (["good"] if result["due"] else [])
    output = json_lines(capsys.readouterr().out)
    reasons = {
        line["parameter"]: line["reason"]
        for line in output
        if str(line.get("message")).startswith("invalid site")
    }
    fields = {name.rsplit("/", 1)[1]: reason.split(":", 1)[0] for name, reason in reasons.items()}
    assert fields == {
        "inf": "interval", "nan": "timeout", "big": "timeout", "url": "url",
        "header": "headers", "body": "body", "regex": "regex", "backref": "regex",
        "ctl": "headers",
    }  # fmt: skip
