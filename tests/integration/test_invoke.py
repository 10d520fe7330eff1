"""`webchecker invoke`, the Docker-free `sam local invoke`, on the real handlers.

Each invoke is its own process, as a user runs it (a fresh cold start, stdout holding only
the result), against the real broker, a real PostgreSQL and real HTTP servers on loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.http_targets import HttpTargets
from webchecker.store.database import Database, DatabaseSettings

ROOT = Path(__file__).resolve().parents[2]
MSK_TWO_CHECKS = Path(__file__).parent / "events" / "msk-two-checks.json"


def run_invoke(*args: str | Path, stdin: str | None = None) -> tuple[int, Any, str]:
    """``webchecker invoke ARGS`` in a new process: (exit status, stdout as JSON, stderr)."""
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "webchecker", "invoke", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    try:
        result = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"stdout is not one JSON document:\n{done.stdout}\nstderr:\n{done.stderr}")
    return done.returncode, result, done.stderr


def write_env_vars(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    path.write_text(json.dumps(sections))
    return path


@pytest.mark.postgres
def test_writer_fixture_lands_once_however_often_it_is_invoked(
    database_url: str, tmp_path: Path
) -> None:
    env_vars = write_env_vars(
        tmp_path / "env.json",
        {
            "Parameters": {"POWERTOOLS_LOG_LEVEL": "WARNING"},
            "WriterFunction": {"DATABASE_URL": database_url},
        },
    )

    first = run_invoke("WriterFunction", MSK_TWO_CHECKS, "--env-vars", env_vars)
    second = run_invoke("writer", MSK_TWO_CHECKS, "--env-vars", env_vars)

    assert first[:2] == (0, {"received": 2, "inserted": 2, "duplicates": 0, "rejected": 0})
    assert second[:2] == (0, {"received": 2, "inserted": 0, "duplicates": 2, "rejected": 0})
    # Powertools' metrics (EMF) went to stderr, as Lambda sends them to CloudWatch.
    assert '"ChecksInserted":[2.0]' in first[2]
    with Database(DatabaseSettings.from_url(database_url)) as db:
        rows = db.connection().run(
            "SELECT site_id, ok, status_code, error FROM webchecker.checks ORDER BY site_id"
        )
    assert [tuple(row) for row in rows] == [
        ("invoke-down", False, 503, "status"),
        ("invoke-ok", True, 200, None),
    ]


@pytest.mark.postgres
def test_writer_error_is_lambdas_error_object_and_exit_status_1(
    database_url: str, tmp_path: Path
) -> None:
    env_vars = write_env_vars(tmp_path / "env.json", {"writer": {"DATABASE_URL": database_url}})
    status, error, _ = run_invoke("writer", "-", "--env-vars", env_vars, stdin='{"records": {}}')
    assert status == 1
    assert error["errorType"] == "InvalidEvent"
    assert "aws:kafka" in error["errorMessage"]
    assert error["stackTrace"]


@pytest.mark.kafka
def test_checker_checks_and_publishes_a_shard_from_an_event_file(
    kafka_bootstrap: str, http_targets: HttpTargets, tmp_path: Path
) -> None:
    event = tmp_path / "checker.json"
    event.write_text(
        json.dumps(
            {
                "scheduled_at": "2026-01-05T12:34:00Z",
                "sites": [
                    {"id": "local-ok", "url": http_targets.url("/ok"), "timeout": 5},
                    {"id": "local-503", "url": http_targets.url("/status/503"), "timeout": 5},
                ],
            }
        )
    )
    env_vars = write_env_vars(
        tmp_path / "env.json",
        {
            "CheckerFunction": {
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "KAFKA_TOPIC": f"invoke-{uuid.uuid4().hex[:8]}",
                "KAFKA_AUTH": "none",
                # The targets are on loopback, which the guard refuses by default.
                "CHECKER_ALLOW_PRIVATE_TARGETS": True,
            }
        },
    )

    status, result, _ = run_invoke("checker", event, "--env-vars", env_vars)

    assert status == 0
    summary = {key: result[key] for key in ("checked", "ok", "failed", "published")}
    assert summary == {"checked": 2, "ok": 1, "failed": 1, "published": 2}


def test_cold_start_configuration_error_is_reported_like_lambda(tmp_path: Path) -> None:
    # null unsets the variable: the checker cannot start without a broker.
    env_vars = write_env_vars(tmp_path / "env.json", {"checker": {"KAFKA_BOOTSTRAP_SERVERS": None}})
    status, error, stderr = run_invoke(
        "checker", ROOT / "events" / "checker.json", "--env-vars", env_vars
    )
    assert status == 1
    assert error["errorType"] == "ConfigurationError"
    assert "KAFKA_BOOTSTRAP_SERVERS" in error["errorMessage"]
    assert "checker: error" in stderr


def test_unknown_function_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "webchecker", "invoke", "poller", "events/checker.json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "unknown function 'poller'" in done.stderr
    assert done.stdout == ""
