"""`webchecker local` as a newcomer runs it (`make run`): output, a second run continuing,
and a killed run leaving nothing that blocks the next one."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from webchecker.local.env_file import read as read_env_file

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

WEBCHECKER = [sys.executable, "-m", "webchecker"]


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # Outside pytest's basetemp (see tests/e2e/conftest.py: root runs PostgreSQL as pgserver).
    path = Path(tempfile.mkdtemp(prefix="webchecker-local-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def local_command(state_dir: Path, *extra: str) -> list[str]:
    return [
        *WEBCHECKER,
        "local",
        "--tick",
        "1",
        "--no-public-sites",
        "--demo-port",
        "0",
        "--state-dir",
        str(state_dir),
        *extra,
    ]


def clean_env() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")
    }
    return env


def checks_of(output: str, site_id: str) -> int:
    """The CHECKS column of the last table row for ``site_id``."""
    rows = re.findall(rf"^\S+\s+{re.escape(site_id)}\s+\S+\s+.*?\s(\d+)\s+http", output, re.M)
    assert rows, output
    return int(rows[-1])


def run_for(state_dir: Path, seconds: int, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        local_command(state_dir, "--duration", str(seconds)),
        capture_output=True,
        text=True,
        timeout=120,
        env=env or clean_env(),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_runs_continues_and_survives_being_killed(state_dir: Path) -> None:
    # One tick per run is enough: after the duration the run waits (up to 15 s) for the
    # checks in flight and prints a last table with every result (ticks.Ticker.run).
    first = run_for(state_dir, 1)
    assert "Webchecker local stack" in first
    assert "AWS_ENDPOINT_URL" in first
    assert re.search(r"^ok\s+demo-healthy\s+200\s", first, re.M), first
    assert re.search(r"^status\s+demo-failing\s+500\s", first, re.M), first
    assert re.search(r"^timeout\s+demo-timeout\s+-\s", first, re.M), first
    assert re.search(r"^regex\s+demo-wrong-body\s+200\s", first, re.M), first
    assert re.search(r"^connect\s+demo-refused\s", first, re.M), first
    checked = checks_of(first, "demo-healthy")
    assert checked >= 1
    saved = json.loads((state_dir / "sites.json").read_text())
    assert any(p["name"].endswith("/demo-healthy") for p in saved["parameters"])

    # A second run, killed with SIGKILL: no cleanup hook runs.
    process = subprocess.Popen(
        local_command(state_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=clean_env(),
    )
    try:
        deadline = time.monotonic() + 90
        env_file = state_dir / "env"
        env_file.unlink()
        while not env_file.exists():
            assert process.poll() is None, "webchecker local exited early"
            assert time.monotonic() < deadline, "webchecker local did not start"
            time.sleep(0.2)
        helpers = [
            json.loads((state_dir / "run" / name).read_text())["pid"]
            for name in ("moto.pid", "tansu.pid")
        ]
        postmaster = int((state_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        children = [child.pid for child in psutil.Process(process.pid).children()]
        assert children
        sourced = read_env_file(env_file)  # what `source .webchecker/env` set in a terminal
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    # Its servers are still there...
    assert all(psutil.pid_exists(pid) for pid in [*helpers, postmaster])
    # A site the user added on the demo server's address (the next run's demo has another
    # port, --demo-port 0): it is left as the user set it, and the banner says so.
    saved = json.loads((state_dir / "sites.json").read_text())
    mine = f"{saved['demo']}/healthy"
    saved["parameters"].append(
        {
            "name": "/webchecker/sites/my-app",
            "type": "String",
            "value": json.dumps({"id": "my-app", "url": mine}),
        }
    )
    (state_dir / "sites.json").write_text(json.dumps(saved))

    # ... and the next run, from a terminal that sourced the killed run's env file (its
    # DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS are stale), finds and stops them, starts its
    # own, then works, and the count goes on (the database and the site list are kept).
    third = run_for(state_dir, 1, env={**clean_env(), **sourced})
    assert "Note             KAFKA_BOOTSTRAP_SERVERS: an earlier run's" in third, third
    assert "Note             DATABASE_URL: this stack's embedded database" in third, third
    assert f"Note             my-app: still on the previous demo address {saved['demo']}" in third
    after = {
        p["name"]: json.loads(p["value"])
        for p in json.loads((state_dir / "sites.json").read_text())["parameters"]
    }
    assert after["/webchecker/sites/my-app"]["url"] == mine
    assert not after["/webchecker/sites/demo-healthy"]["url"].startswith(saved["demo"])
    assert re.search(r"^ok\s+demo-healthy\s+200\s", third, re.M), third
    assert checks_of(third, "demo-healthy") > checked
    for pid in [*helpers, postmaster, *children]:
        assert not _alive(pid), pid


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
