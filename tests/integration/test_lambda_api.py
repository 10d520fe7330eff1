"""The local Lambda Invoke API through boto3, with small handler files of the tests' own."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from webchecker.exceptions import InvocationFailed
from webchecker.local.embedded.lambda_api import (
    MAX_EVENT_PAYLOAD,
    FunctionSpec,
    LambdaApi,
    RetryPolicy,
)

HANDLER = """
import os, pathlib

def lambda_handler(event, context):
    print("invoked", context.function_name, context.aws_request_id)
    if event.get("sleep"):
        import time
        time.sleep(event["sleep"])
    marker = pathlib.Path(event.get("fail_until_exists", "/nonexistent-never"))
    if event.get("fail") or (event.get("fail_until_exists") and not marker.exists()):
        raise RuntimeError("asked to fail")
    if event.get("fail_until_exists"):
        marker.with_suffix(".done").write_text(context.aws_request_id)
    return {"echo": event, "color": os.environ["COLOR"], "memory": context.memory_limit_in_mb}
"""


@pytest.fixture
def api(tmp_path: Path) -> Iterator[LambdaApi]:
    (tmp_path / "app.py").write_text(HANDLER)
    spec = FunctionSpec(
        name="echo", path=tmp_path / "app.py", concurrency=2, memory_mb=256, timeout_s=1.5
    )
    with LambdaApi(
        [spec],
        env={"COLOR": "green"},
        retry=RetryPolicy(delays=(0.2, 0.2)),
        log_dir=tmp_path / "logs",
        failures_path=tmp_path / "failures.jsonl",
    ) as running:
        yield running


def client(api: LambdaApi):  # type: ignore[no-untyped-def]
    return boto3.client(
        "lambda",
        endpoint_url=api.endpoint_url,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_request_response_returns_the_handler_result(api: LambdaApi, tmp_path: Path) -> None:
    response = client(api).invoke(
        FunctionName="arn:aws:lambda:eu-west-1:123456789012:function:echo",
        Payload=json.dumps({"a": 1}),
    )
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    body = json.loads(response["Payload"].read())
    assert body == {"echo": {"a": 1}, "color": "green", "memory": 256}
    # What the function prints goes to its log, like CloudWatch Logs.
    assert "invoked echo" in (tmp_path / "logs" / "echo.log").read_text()


def test_a_handler_error_is_a_function_error(api: LambdaApi) -> None:
    response = client(api).invoke(FunctionName="echo", Payload=b'{"fail": true}')
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "RuntimeError"
    assert error["errorMessage"] == "asked to fail"
    with pytest.raises(InvocationFailed, match="asked to fail"):
        api.invoke("echo", {"fail": True})


def test_unknown_function_and_oversized_event_are_refused(api: LambdaApi) -> None:
    lam = client(api)
    with pytest.raises(ClientError) as missing:
        lam.invoke(FunctionName="nope", Payload=b"{}")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as large:
        lam.invoke(
            FunctionName="echo", InvocationType="Event", Payload=b"{}" + b" " * MAX_EVENT_PAYLOAD
        )
    assert large.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert api.stats["echo"].invocations == 0


def test_event_invocations_answer_at_once_and_run_concurrently(api: LambdaApi) -> None:
    lam = client(api)
    for n in range(6):
        response = lam.invoke(FunctionName="echo", InvocationType="Event", Payload=f'{{"n": {n}}}')
        assert response["StatusCode"] == 202
    assert api.drain(30)
    attempts = [a for a in api.attempts if a.function == "echo"]
    assert len(attempts) == 6
    assert all(a.ok for a in attempts)
    assert len({a.pid for a in attempts}) <= 2  # two containers, reused
    assert not api.failures


def test_a_failed_event_is_retried_then_succeeds(api: LambdaApi, tmp_path: Path) -> None:
    marker = tmp_path / "recovered"
    client(api).invoke(
        FunctionName="echo",
        InvocationType="Event",
        Payload=json.dumps({"fail_until_exists": str(marker)}),
    )
    deadline = time.monotonic() + 30
    while not any(not a.ok for a in api.attempts) and time.monotonic() < deadline:
        time.sleep(0.02)
    marker.write_text("")  # the cause goes away before the retry
    assert api.drain(30)
    assert [(a.attempt, a.ok) for a in api.attempts][-2:] == [(1, False), (2, True)]
    assert api.attempts[-1].request_id == marker.with_suffix(".done").read_text()
    assert not api.failures


def test_an_event_failing_three_times_goes_to_the_failure_list(
    api: LambdaApi, tmp_path: Path
) -> None:
    client(api).invoke(FunctionName="echo", InvocationType="Event", Payload=b'{"fail": 1}')
    assert api.drain(30)
    assert [(a.attempt, a.ok) for a in api.attempts] == [(1, False), (2, False), (3, False)]
    assert len(api.failures) == 1
    failed = api.failures[0]
    assert failed.attempts == 3
    assert "asked to fail" in failed.error
    saved = [json.loads(line) for line in (tmp_path / "failures.jsonl").read_text().splitlines()]
    assert saved == [failed.__dict__]


def test_an_invocation_past_the_timeout_fails_like_lambda(api: LambdaApi) -> None:
    response = client(api).invoke(FunctionName="echo", Payload=b'{"sleep": 30}')
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "Task timed out after 1.50 seconds",
    }
    # The container is still usable.
    assert api.invoke("echo", {"after": 1})["echo"] == {"after": 1}
