"""Sites in Parameter Store -> scheduler -> checker -> Kafka -> writer -> rows in PostgreSQL.

Every field of every row is checked, for sites that pass and for each way of failing that
loopback targets can produce; editing a site with `webchecker sites` changes what the
next ticks do.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import cli_env, put_sites, rows, wait_rows
from webchecker.cli import main as cli
from webchecker.local.stack import LocalStack
from webchecker.schedule.plan import site_offset, tick_minute

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def test_every_outcome_is_stored_with_every_field(stack: LocalStack) -> None:
    assert stack.demo is not None
    demo = stack.demo.url("").rstrip("/")
    listed = [
        {"id": "e1-healthy", "url": f"{demo}/healthy", "regex": "healthy"},
        {"id": "e1-redirect", "url": f"{demo}/redirect", "expected_status": ["200"]},
        {"id": "e1-not-found", "url": f"{demo}/missing", "expected_status": ["404"]},
        {"id": "e1-failing", "url": f"{demo}/failing"},
        {"id": "e1-wrong-body", "url": f"{demo}/wrong-body", "regex": "healthy"},
        {"id": "e1-timeout", "url": f"{demo}/hang", "timeout": 1},
        {"id": "e1-refused", "url": "http://127.0.0.1:9/", "timeout": 2},
        {"id": "e1-big", "url": f"{demo}/big", "regex": "needle"},
        {"id": "e1-garbage", "url": f"{demo}/garbage"},
        {"id": "e1-tls", "url": demo.replace("http://", "https://") + "/healthy"},
        {"id": "e1-blocked", "url": demo.replace("127.0.0.1", "127.0.0.2") + "/healthy"},
        {"id": "e1-disabled", "url": f"{demo}/healthy", "enabled": False},
        {"id": "e1-hourly", "url": f"{demo}/healthy", "interval": 3600},
    ]
    put_sites(stack, listed)
    sites = {site["id"]: site for site in listed}
    tick = stack.clock.start + timedelta(days=1)  # a tick of its own: no other test uses it
    tick -= timedelta(minutes=tick.minute)  # an hour boundary...
    started = datetime.now(UTC)
    summary = stack.tick(tick)

    # ... where the hourly site is due only if its offset says so (the scheduler's rule).
    hourly_due = (tick_minute(tick) + site_offset("e1-hourly")) % 60 == 0
    assert summary["sites"] == 13
    assert summary["invalid"] == 0
    due = summary["due"]
    assert due == 11 + hourly_due
    site_ids = [f"e1-{name}" for name in ("healthy", "redirect", "not-found", "failing")]
    site_ids += [f"e1-{name}" for name in ("wrong-body", "timeout", "refused", "big")]
    site_ids += [f"e1-{name}" for name in ("garbage", "tls", "blocked")]
    stored = wait_rows(stack, [*site_ids, "e1-disabled", "e1-hourly"], due)
    assert len(stored) == due
    by_site = {row["site_id"]: row for row in stored}
    assert "e1-disabled" not in by_site
    assert set(site_ids) <= set(by_site)

    expected = {
        # site: (ok, error, status_code, regex_matched, got a response)
        "e1-healthy": (True, None, 200, True, True),
        "e1-redirect": (True, None, 200, None, True),
        "e1-not-found": (True, None, 404, None, True),
        "e1-failing": (False, "status", 500, None, True),
        "e1-wrong-body": (False, "regex", 200, False, True),
        "e1-timeout": (False, "timeout", None, None, False),
        "e1-refused": (False, "connect", None, None, False),
        "e1-big": (False, "too_large", 200, False, True),
        "e1-garbage": (False, "invalid_response", None, None, False),
        "e1-tls": (False, "tls", None, None, False),
        "e1-blocked": (False, "blocked", None, None, False),
    }
    # Not reproducible on loopback alone: `dns` (a lookup that fails leaves the machine) and
    # `other`; the checker's own tests cover them.
    finished = datetime.now(UTC)
    assert stack.aws is not None
    region = stack.aws.region
    for site_id, (ok, error, status, matched, responded) in expected.items():
        row = by_site[site_id]
        assert (row["ok"], row["error"], row["status_code"], row["regex_matched"]) == (
            ok,
            error,
            status,
            matched,
        ), row
        assert row["schema"] == 1
        assert uuid.UUID(str(row["check_id"])).version == 4
        assert row["url"] == sites[site_id]["url"]
        assert row["region"] == region
        assert row["scheduled_at"] == tick
        assert started <= row["checked_at"] <= finished
        assert row["stored_at"] >= row["checked_at"]
        if responded:
            assert row["response_time_ms"] is not None
            assert row["response_time_ms"] > 0
        else:
            assert row["response_time_ms"] is None
        if error is None:
            assert row["error_detail"] is None
        else:
            assert row["error_detail"]
            assert len(row["error_detail"]) <= 500
    assert len({row["check_id"] for row in stored}) == len(stored)


def test_editing_a_site_changes_the_next_ticks(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stack.demo is not None
    demo = stack.demo.url("").rstrip("/")
    put_sites(
        stack,
        [
            {"id": "e2-interval", "url": f"{demo}/healthy"},
            {"id": "e2-regex", "url": f"{demo}/wrong-body", "regex": "healthy"},
            {"id": "e2-disable", "url": f"{demo}/healthy"},
        ],
    )
    ids = ["e2-interval", "e2-regex", "e2-disable"]
    first = stack.tick()
    assert first["due"] == 3
    before = wait_rows(stack, ids, 3)
    assert {row["site_id"]: row["ok"] for row in before} == {
        "e2-interval": True,
        "e2-regex": False,
        "e2-disable": True,
    }

    # The same commands a user runs in another terminal against the running stack.
    cli_env(stack, monkeypatch)
    assert cli(["sites", "set", "e2-interval", "interval=120"]) == 0
    assert cli(["sites", "set", "e2-regex", "regex=maintenance"]) == 0
    assert cli(["sites", "disable", "e2-disable"]) == 0
    capsys.readouterr()

    second, third = stack.tick(), stack.tick()
    # Every 2 minutes: due at exactly one of two consecutive ticks.
    assert second["due"] + third["due"] == 3
    after = wait_rows(stack, ids, 6)
    later = [row for row in after if row["scheduled_at"] > before[0]["scheduled_at"]]
    assert sorted(row["site_id"] for row in later) == ["e2-interval", "e2-regex", "e2-regex"]
    assert all(row["ok"] for row in later if row["site_id"] == "e2-regex")
    assert all(row["regex_matched"] for row in later if row["site_id"] == "e2-regex")
    assert len(rows(stack, ["e2-disable"])) == 1


def test_the_checkers_tell_the_next_tick_which_sites_were_slow(stack: LocalStack) -> None:
    assert stack.demo is not None
    demo = stack.demo.url("").rstrip("/")
    ids = ["e3-hang", "e3-fast", "e3-also-fast"]
    put_sites(
        stack,
        [
            {"id": "e3-fast", "url": f"{demo}/healthy"},
            {"id": "e3-also-fast", "url": f"{demo}/healthy"},
            {"id": "e3-hang", "url": f"{demo}/hang", "timeout": 1},
        ],
    )
    stack.tick()
    wait_rows(stack, ids, 3)
    assert stack.drain(timeout=30)  # the report is sent after the results are delivered
    # Through moto's SQS, as in AWS: the checker sent it, the scheduler read it.
    assert stack.tick()["slow_reports"] >= 1
    assert len(wait_rows(stack, ids, 6)) == 6  # and the sites were checked again
