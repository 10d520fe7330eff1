"""The whole pipeline on local services for the end-to-end tests.

Real moto server, real Tansu broker (S3 storage on moto, so a restart keeps topics and
offsets), an embedded PostgreSQL the tests may stop and start, the demo targets, and the
three functions run by the local Lambda Invoke API; one stack for the session, each test
replaces the site list and reads only its own sites. Ticks are driven directly.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from webchecker.exceptions import StoreUnavailable
from webchecker.local.stack import LocalSettings, LocalStack
from webchecker.store.batch import COLUMNS as STORED_COLUMNS

RETRY_DELAYS = (2.0, 4.0)


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    # Not under pytest's basetemp: as root, PostgreSQL runs as another user and needs its
    # directory's parents searchable, and every new pytest session resets pytest-of-root
    # to 0700 (other test runs on this machine would lock the server out mid-test).
    state_dir = Path(tempfile.mkdtemp(prefix="webchecker-e2e-"))
    settings = LocalSettings(
        state_dir=state_dir,
        seed=False,
        persist_sites=False,
        public_sites=False,
        demo_port=None,
        durable_broker=True,
        retry_delays=RETRY_DELAYS,
        checker_workers=2,
        function_env={
            # A checker that cannot publish fails in 2 s (default 30 s): the retry test waits less.
            "KAFKA_DELIVERY_TIMEOUT_MS": "2000",
            # Only 127.0.0.1 may be checked (not all private targets, as in `webchecker local`),
            # so that a site on 127.0.0.2 shows `blocked` without any traffic leaving loopback.
            "CHECKER_ALLOW_PRIVATE_TARGETS": "false",
            "CHECKER_ALLOWED_NETWORKS": "127.0.0.1/32",
        },
    )
    try:
        with LocalStack(settings) as running:
            yield running
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


def put_sites(stack: LocalStack, sites: Sequence[dict[str, Any]]) -> None:
    """Replaces every site parameter with one parameter per site in ``sites``."""
    client = stack.ssm()
    path = stack.settings.sites_path
    names = [parameter["name"] for parameter in stack.export_sites()]
    for start in range(0, len(names), 10):
        client.delete_parameters(Names=names[start : start + 10])
    for site in sites:
        client.put_parameter(
            Name=f"{path}/{site['id']}", Value=json.dumps(site), Type="String", Overwrite=True
        )


COLUMNS = (*STORED_COLUMNS, "stored_at")  # every field of the message, and when stored


def rows(stack: LocalStack, site_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Every stored check of ``site_ids``, oldest tick first."""
    sql = (
        f"SELECT {', '.join(COLUMNS)} FROM webchecker.checks "
        "WHERE site_id = ANY(CAST(:ids AS text[])) ORDER BY scheduled_at, site_id"
    )
    try:
        with stack.database.transaction() as connection:
            found = connection.run(sql, ids=list(site_ids))
    except StoreUnavailable:
        return []  # the database was restarted: the next call reconnects
    except Exception as error:
        if "does not exist" in str(error):  # before the writer's first batch
            return []
        raise
    return [dict(zip(COLUMNS, row, strict=True)) for row in found]


def wait_rows(
    stack: LocalStack, site_ids: Sequence[str], count: int, *, timeout: float = 60.0
) -> list[dict[str, Any]]:
    """Waits until ``count`` checks of ``site_ids`` are stored (then a little longer, to
    catch a duplicate that would arrive late)."""
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = rows(stack, site_ids)
        if len(found) >= count:
            stack.wait_for_writer(timeout=5.0)
            return rows(stack, site_ids)
        time.sleep(0.2)
    raise AssertionError(f"{len(found)} of {count} checks stored after {timeout:g}s: {found}")


def cli_env(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment `webchecker sites` gets from `source .webchecker/env`."""
    for key, value in stack.aws_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SITES_PATH", stack.settings.sites_path)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def state_file(stack: LocalStack, name: str) -> Path:
    return stack.state_dir / name
