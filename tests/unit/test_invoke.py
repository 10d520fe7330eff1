"""The Docker-free invoke's edge: names, SAM env-vars files, environment and stdout handling.

The handlers here are tiny files written by the tests (the real ones run in
tests/integration/test_invoke.py), so what is tested is the invoke machinery itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from webchecker.exceptions import ConfigurationError
from webchecker.local.invoke import Invocation, invoke, read_env_vars, read_event, resolve_function

ECHO_HANDLER = """
import os, sys
COLD_START_VALUE = os.environ.get("INVOKE_TEST_VALUE")
print("a log line from the cold start")

def lambda_handler(event, context):
    print("a log line from the handler")
    return {
        "event": event,
        "cold_start_value": COLD_START_VALUE,
        "removed": os.environ.get("INVOKE_TEST_REMOVED"),
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "service": os.environ.get("POWERTOOLS_SERVICE_NAME"),
        "trace_disabled": os.environ.get("POWERTOOLS_TRACE_DISABLED"),
    }
"""

FAILING_HANDLER = """
def lambda_handler(event, context):
    raise LookupError("no such site: " + event["site"])
"""


def write_handler(root: Path, function: str, source: str) -> None:
    folder = root / "functions" / function
    folder.mkdir(parents=True)
    (folder / "app.py").write_text(source)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("scheduler", "scheduler"),
        ("checker", "checker"),
        ("writer", "writer"),
        ("SchedulerFunction", "scheduler"),
        ("CheckerFunction", "checker"),
        ("WriterFunction", "writer"),
        ("writerfunction", "writer"),
        (" Writer ", "writer"),
    ],
)
def test_function_names_and_sam_logical_ids_resolve(given: str, expected: str) -> None:
    assert resolve_function(given) == expected


@pytest.mark.parametrize("given", ["", "poller", "Writer Function", "functions/writer"])
def test_unknown_function_names_are_refused_with_the_choices(given: str) -> None:
    with pytest.raises(ConfigurationError, match="expected one of scheduler, checker, writer"):
        resolve_function(given)


def test_env_vars_file_merges_parameters_then_the_functions_own_section(tmp_path: Path) -> None:
    path = tmp_path / "env.json"
    path.write_text(
        json.dumps(
            {
                "Parameters": {"A": "global", "B": "global", "C": "global", "D": 7},
                "writer": {"B": "short"},
                "WriterFunction": {"C": "logical", "E": True, "F": None},
                "CheckerFunction": {"A": "other function"},
            }
        )
    )
    assert read_env_vars(path, "writer") == {
        "A": "global",
        "B": "short",
        "C": "logical",
        "D": "7",
        "E": "true",
        "F": "",
    }
    assert read_env_vars(path, "checker")["A"] == "other function"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object of objects"),
        ('{"Parameters": ["A=1"]}', "'Parameters' must be an object"),
        ('{"WriterFunction": {"A": {"nested": 1}}}', "WriterFunction.A must be a scalar"),
    ],
)
def test_bad_env_vars_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "env.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=message):
        read_env_vars(path, "writer")


def test_missing_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"env-vars file .*missing\.json"):
        read_env_vars(tmp_path / "missing.json", "writer")
    with pytest.raises(ConfigurationError, match=r"event file .*missing\.json"):
        read_event(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        read_event(str(tmp_path / "bad.json"))


def test_handler_sees_the_environment_at_cold_start_and_it_is_restored_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_handler(tmp_path, "checker", ECHO_HANDLER)
    monkeypatch.setenv("INVOKE_TEST_REMOVED", "from the shell")
    monkeypatch.delenv("INVOKE_TEST_VALUE", raising=False)
    monkeypatch.delenv("POWERTOOLS_SERVICE_NAME", raising=False)
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    before = dict(os.environ)

    outcome = invoke(
        Invocation(
            function="CheckerFunction",
            event={"sites": [1, 2]},
            env={"INVOKE_TEST_VALUE": "from the file", "INVOKE_TEST_REMOVED": ""},
            timeout_s=90,
            memory_mb=1024,
        ),
        root=tmp_path,
    )

    assert outcome.ok
    assert outcome.payload["event"] == {"sites": [1, 2]}
    assert outcome.payload["cold_start_value"] == "from the file"
    assert outcome.payload["removed"] is None
    assert outcome.payload["function_name"] == "CheckerFunction"
    assert outcome.payload["memory"] == 1024
    assert 0 < outcome.payload["remaining_ms"] <= 90_000
    assert outcome.payload["service"] == "checker"
    assert outcome.payload["trace_disabled"] == "true"
    assert dict(os.environ) == before
    captured = capsys.readouterr()
    # stdout is kept for the result: whatever the function prints goes to stderr.
    assert captured.out == ""
    assert "a log line from the cold start" in captured.err
    assert "a log line from the handler" in captured.err


def test_every_invoke_is_a_cold_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_handler(tmp_path, "writer", ECHO_HANDLER)
    values = []
    for value in ("first", "second"):
        monkeypatch.setenv("INVOKE_TEST_VALUE", value)
        outcome = invoke(Invocation(function="writer", event={}), root=tmp_path)
        values.append(outcome.payload["cold_start_value"])
    assert values == ["first", "second"]


def test_a_raising_handler_gives_lambdas_error_object(tmp_path: Path) -> None:
    write_handler(tmp_path, "scheduler", FAILING_HANDLER)
    outcome = invoke(Invocation(function="scheduler", event={"site": "api"}), root=tmp_path)
    assert not outcome.ok
    assert outcome.payload["errorType"] == "LookupError"
    assert outcome.payload["errorMessage"] == "no such site: api"
    assert any("lambda_handler" in line for line in outcome.payload["stackTrace"])
    assert json.loads(outcome.to_json()) == outcome.payload


def test_a_checkout_without_the_handler_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no handler file"):
        invoke(Invocation(function="writer", event={}), root=tmp_path)
