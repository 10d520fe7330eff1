"""`webchecker maintenance` and `webchecker incidents` against real PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.messages import BASE_TIME, failed_message, message, records
from webchecker.cli import main
from webchecker.store.batch import CheckStore
from webchecker.store.database import Database
from webchecker.store.migrations import migrate

pytestmark = pytest.mark.postgres
LONG_AGO = BASE_TIME - timedelta(days=60)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> str:
    monkeypatch.setenv("DATABASE_URL", database_url)
    return database_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_add_list_and_remove_a_window(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "maintenance", "add", "--tag", "db", "--duration", "2h", "--reason", "upgrade",
        "--json",
    )  # fmt: skip
    assert code == 0
    window = json.loads(out)
    assert window["tags"] == ["db"]
    assert window["site_ids"] is None
    starts = datetime.fromisoformat(window["starts_at"])
    assert datetime.fromisoformat(window["ends_at"]) - starts == timedelta(hours=2)

    code, out, _ = run(capsys, "maintenance", "list")
    assert window["id"] in out
    assert "tags db" in out
    assert "(upgrade)" in out

    assert run(capsys, "maintenance", "remove", window["id"])[0] == 0
    assert json.loads(run(capsys, "maintenance", "list", "--json")[1]) == []
    code, _, err = run(capsys, "maintenance", "remove", window["id"])
    assert code == 2
    assert "no maintenance window" in err


def test_past_windows_are_listed_with_all(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "maintenance", "add", "--site", "a", "--start", "2020-01-01T00:00:00Z",
        "--end", "2020-01-01T01:00:00Z")  # fmt: skip
    assert json.loads(run(capsys, "maintenance", "list", "--json")[1]) == []
    (old,) = json.loads(run(capsys, "maintenance", "list", "--all", "--json")[1])
    assert old["site_ids"] == ["a"]


@pytest.mark.parametrize(
    ("argv", "message_part"),
    [
        (["--end", "2020-01-01T00:00:00Z"], "end must be after the start"),
        (["--end", "tomorrow"], "--end 'tomorrow'"),
        (["--end", "2999-01-01T00:00:00"], "UTC offset"),
        (["--duration", "soon"], "--duration"),
        (["--duration", "1h", "--site", "Bad Id"], "invalid site id"),
        (["--duration", "1h", "--tag", "x" * 40], "invalid tag"),
        (["--duration", "1h", "--reason", "a\x00b"], "reason"),
        (["--duration", "1h", "--reason", "r" * 501], "reason"),
    ],
)
def test_bad_windows_are_refused_naming_the_problem(
    env: str, capsys: pytest.CaptureFixture[str], argv: list[str], message_part: str
) -> None:
    code, _, err = run(capsys, "maintenance", "add", *argv)
    assert code == 2
    assert message_part in err
    assert json.loads(run(capsys, "maintenance", "list", "--all", "--json")[1]) == []


def test_a_window_id_that_is_not_a_uuid(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "maintenance", "remove", "nope")
    assert (code, "not a UUID" in err) == (2, True)


def seed(database: Database) -> None:
    migrate(database)
    store = CheckStore(database)
    now = datetime.now(UTC).replace(microsecond=0)
    values: list[dict[str, Any]] = []
    for site, outcomes in (("old", "ffppp"), ("open", "fff")):
        for index, outcome in enumerate(outcomes):
            moment = now - timedelta(minutes=30 - index) if site == "open" else LONG_AGO
            moment += timedelta(minutes=index) if site == "old" else timedelta()
            make = failed_message if outcome == "f" else message
            values.append(make(site_id=site, checked_at=moment, tls_cert_expires_at=None))
    store.write(records(values))


def test_incidents_lists_open_and_resolved(
    env: str, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(database)
    everything = json.loads(run(capsys, "incidents", "--since", "3650d", "--json")[1])
    assert [(i["site_id"], i["resolved_at"] is None) for i in everything] == [
        ("open", True),
        ("old", False),
    ]
    assert everything[1]["duration_seconds"] == 120.0
    recent = json.loads(run(capsys, "incidents", "--json")[1])
    assert [i["site_id"] for i in recent] == ["open"]
    assert json.loads(run(capsys, "incidents", "--open", "--site", "old", "--json")[1]) == []
    code, out, _ = run(capsys, "incidents", "--open")
    assert code == 0
    assert out.startswith("OPEN ")
    assert "open" in out
    assert "status 503" in out
    assert run(capsys, "incidents", "--since", "yesterday")[0] == 2


def test_sites_list_with_state_reads_the_database(
    env: str,
    database: Database,
    ssm_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.fixtures.aws import put_parameters

    seed(database)
    monkeypatch.setenv("SITES_PATH", "/webchecker/sites")
    put_parameters(
        ssm_client,
        {
            "/webchecker/sites/open": {"url": "http://127.0.0.1:8001/"},
            "/webchecker/sites/new": {"url": "http://127.0.0.1:8002/"},
        },
    )
    code, out, _ = run(capsys, "sites", "list", "--state")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[-1] == "STATE"
    rows = {line.split()[0]: line for line in lines[1:]}
    assert " down since " in rows["open"]
    assert rows["new"].endswith("unknown")  # no check applied yet
    plain = run(capsys, "sites", "list")[1].splitlines()
    assert "STATE" not in plain[0]
