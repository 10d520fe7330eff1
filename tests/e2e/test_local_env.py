"""Another terminal after `source .webchecker/env`: the env file is private, complete, and
what it sets works with `webchecker invoke` (`make invoke`) and `webchecker topic`."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import put_sites, state_file, wait_rows
from webchecker.local.env_file import read
from webchecker.local.stack import LocalStack

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]


def sourced(stack: LocalStack) -> dict[str, str]:
    """The environment of a shell that ran `source STATE_DIR/env` (a real shell)."""
    script = f"source {state_file(stack, 'env')} && env -0"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KAFKA_", "DB"))}
    base.pop("DATABASE_URL", None)
    done = subprocess.run(
        ["bash", "-c", script], env=base, capture_output=True, check=True, timeout=30
    )
    return dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)


def webchecker(
    env: dict[str, str], *args: str, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "webchecker", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_env_file_is_private_and_sets_what_the_functions_need(stack: LocalStack) -> None:
    path = state_file(stack, "env")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    env = sourced(stack)
    assert read(path) == {name: env[name] for name in read(path)}
    for name in ("CHECKER_FUNCTION_NAME", "KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "SITES_PATH"):
        assert env[name], name
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == stack.bootstrap_servers
    assert env["DATABASE_URL"] == stack.database_url


def test_invoke_scheduler_and_checker_after_sourcing_the_env(
    stack: LocalStack, tmp_path: Path
) -> None:
    assert stack.demo is not None
    site = {"id": "env-invoke", "url": stack.demo.url("/healthy"), "timeout": 5}
    put_sites(stack, [site])
    env = sourced(stack)

    scheduler = webchecker(env, "invoke", "scheduler", "events/scheduler-scheduled.json")
    assert scheduler.returncode == 0, scheduler.stdout + scheduler.stderr
    summary: dict[str, Any] = json.loads(scheduler.stdout)
    assert (summary["sites"], summary["invocations"]) == (1, 1)

    event = tmp_path / "checker.json"
    event.write_text(json.dumps({"scheduled_at": "2026-01-05T12:34:00Z", "sites": [site]}))
    checker = webchecker(env, "invoke", "checker", str(event))
    assert checker.returncode == 0, checker.stdout + checker.stderr
    assert json.loads(checker.stdout)["published"] == 1
    # The scheduler's invocation and ours: both reached the topic and the database.
    assert len(wait_rows(stack, ["env-invoke"], 2)) >= 2


def test_topic_command_prints_the_latest_check_results(stack: LocalStack) -> None:
    assert stack.demo is not None
    put_sites(stack, [{"id": "env-topic", "url": stack.demo.url("/healthy")}])
    stack.tick()
    wait_rows(stack, ["env-topic"], 1)

    # The command the README shows for reading the topic (issue 9 item 19).
    readme = (ROOT / "README.md").read_text()
    shown = next(line for line in readme.splitlines() if "webchecker topic --count" in line)
    args = shlex.split(shown.split("#")[0].split("webchecker", 1)[1])
    assert args[:2] == ["topic", "--count"]
    done = webchecker(sourced(stack), *args[:2], "3")

    assert done.returncode == 0, done.stderr
    assert "stopped after" not in done.stderr  # it read to the end of the topic
    messages = [json.loads(line) for line in done.stdout.splitlines()]
    assert 1 <= len(messages) <= 3
    assert all("site_id" in message and "check_id" in message for message in messages)
    assert "env-topic" in {message["site_id"] for message in messages}
