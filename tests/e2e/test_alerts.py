"""Site alerts end to end: a site goes down, one incident.opened reaches the local webhook
sink (through the notifier and moto's SNS); back up, one incident.resolved; a broker
restart in between changes nothing."""

from __future__ import annotations

import itertools
from typing import Any

from tests.e2e.conftest import put_sites, rows
from webchecker.local.stack import LocalStack
from webchecker.results import format_timestamp


def tick_and_settle(stack: LocalStack) -> None:
    stack.tick()
    assert stack.drain(60)
    assert stack.wait_for_writer(timeout=60)


def sent(stack: LocalStack, site_id: str) -> list[dict[str, Any]]:
    return [entry for entry in stack.alerts.received() if entry["alert"]["site_id"] == site_id]


def test_down_then_up_sends_one_opened_and_one_resolved(stack: LocalStack) -> None:
    assert stack.demo is not None
    demo = stack.demo.url("").rstrip("/")
    site = {"id": "al-down", "url": f"{demo}/failing", "tags": ["e2e"]}
    put_sites(stack, [site])
    tick_and_settle(stack)  # the first failed check
    # the second (the threshold) waits in the topic across a broker restart
    assert stack.broker is not None
    stack.stop_poller()
    try:
        stack.tick()
        assert stack.drain(60)
        stack.broker.stop()
        stack.broker.start()
    finally:
        stack.start_poller()
    assert stack.wait_for_writer(timeout=60)
    tick_and_settle(stack)  # the notifier's next run publishes it
    opened = sent(stack, "al-down")
    assert [entry["alert"]["type"] for entry in opened] == ["incident.opened"]
    assert opened[0]["subject"] == "DOWN al-down: status 500"
    assert opened[0]["alert"]["tags"] == ["e2e"]

    put_sites(stack, [{**site, "url": f"{demo}/healthy"}])
    for _ in range(3):  # two passes resolve it; the next run publishes
        tick_and_settle(stack)
    alerts = [entry["alert"] for entry in sent(stack, "al-down")]
    assert [alert["type"] for alert in alerts] == ["incident.opened", "incident.resolved"]
    resolved = alerts[1]
    assert resolved["incident_id"] == alerts[0]["incident_id"]
    # from the first failed check to the first passing one, as stored
    checks = rows(stack, ["al-down"])
    first_failed = next(row for row in checks if not row["ok"])["checked_at"]
    first_passed = next(row for row in checks if row["ok"])["checked_at"]
    assert resolved["opened_at"] == format_timestamp(first_failed)
    assert resolved["resolved_at"] == format_timestamp(first_passed)
    assert resolved["duration_seconds"] == round((first_passed - first_failed).total_seconds(), 3)


def test_a_flapping_site_sends_one_notice_then_holds_the_rest(stack: LocalStack) -> None:
    """The demo's /flapping answers 200 and 503 in turn: with thresholds of 1 every tick
    opens or resolves an incident. Two incidents are notified in full, the third opening
    is the flapping notice, then nothing while it keeps flapping."""
    assert stack.demo is not None
    demo = stack.demo.url("").rstrip("/")
    site = {
        "id": "al-flap",
        "url": f"{demo}/flapping",
        "failure_threshold": 1,
        "success_threshold": 1,
    }
    put_sites(stack, [site])
    for _ in range(10):
        tick_and_settle(stack)
    kinds = [entry["alert"]["type"] for entry in sent(stack, "al-flap")]
    outcomes = [row["ok"] for row in rows(stack, ["al-flap"])]
    assert len(outcomes) == 10
    assert all(a != b for a, b in itertools.pairwise(outcomes))  # alternating
    with stack.database.transaction() as connection:
        (incidents,) = connection.run(
            "SELECT count(*) FROM webchecker.incidents WHERE site_id = 'al-flap'"
        )[0]
        (flapping,) = connection.run(
            "SELECT flapping FROM webchecker.site_state WHERE site_id = 'al-flap'"
        )[0]
    assert incidents >= 4  # every failure opened one: all recorded
    assert flapping
    assert kinds == ["incident.opened", "incident.resolved"] * 2 + ["site.flapping"]
