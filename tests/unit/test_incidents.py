"""The state machine's rules (store/incidents.py), without a database.

Thresholds are checked against an oracle written differently: it reads the sequence as
runs of equal outcomes instead of counting check by check.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webchecker.store.incidents import (
    CERTIFICATE,
    FLAPPING,
    OPENED,
    RESOLVED,
    STABLE,
    IncidentSettings,
    MaintenanceWindow,
    Observation,
    SiteState,
    StateMachine,
)

START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
NO_FLAPPING = IncidentSettings(flap_opens=0)


def check(
    minute: int,
    ok: bool,
    *,
    site_id: str = "s",
    failure_threshold: object = None,
    success_threshold: object = None,
    **fields: Any,
) -> Observation:
    scheduled = START + timedelta(minutes=minute)
    values: dict[str, Any] = {
        "check_id": str(uuid.UUID(int=minute + 1)),
        "site_id": site_id,
        "url": "https://example.com/",
        "scheduled_at": scheduled,
        "checked_at": scheduled + timedelta(seconds=1),
        "ok": ok,
        "error": None if ok else "status",
        "error_detail": None if ok else f"got 503 at minute {minute}",
        "status_code": 200 if ok else 503,
        "cert_expires_at": None,
        "failure_threshold": failure_threshold,
        "success_threshold": success_threshold,
    }
    values.update(fields)
    return Observation(**values)


def run(
    outcomes: Sequence[bool],
    settings: IncidentSettings = NO_FLAPPING,
    windows: Sequence[MaintenanceWindow] = (),
    **fields: Any,
) -> tuple[SiteState, StateMachine]:
    machine = StateMachine(settings, windows, created_at=START)
    state = machine.run(
        SiteState(site_id="s"), [check(i, ok, **fields) for i, ok in enumerate(outcomes)]
    )
    return state, machine


def incidents_of(machine: StateMachine) -> list[tuple[str, str | None]]:
    return [(row["opened_at"], row["resolved_at"]) for row in machine.changes.incidents.values()]


def minute_text(minute: int) -> str:
    moment = START + timedelta(minutes=minute, seconds=1)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def oracle(
    outcomes: Sequence[bool], fail: int, passes: int
) -> tuple[str, list[tuple[int, int | None]]]:
    """(final state, [(opening index, resolving index or None)]) from runs of outcomes."""
    state, incidents, index = "unknown", [], 0
    for ok, run_ in itertools.groupby(outcomes):
        length = len(list(run_))
        if not ok and length >= fail and state != "down":
            state = "down"
            incidents.append((index, None))
        elif ok and length >= passes and state != "up":
            if state == "down":
                incidents[-1] = (incidents[-1][0], index)
            state = "up"
        index += length
    return state, incidents


PATTERNS = [
    [False] * 12 + [True] * 12,
    [True, False] * 6 + [False] * 10 + [True, False, True, True] * 4 + [True] * 10,
    [False, False, True, False, False, False, True, True, True, False] * 3 + [True] * 11,
]


@pytest.mark.parametrize(("fail", "passes"), list(itertools.product(range(1, 11), range(1, 11))))
def test_every_threshold_combination_opens_and_resolves_where_the_runs_say(
    fail: int, passes: int
) -> None:
    for outcomes in PATTERNS:
        state, machine = run(outcomes, failure_threshold=fail, success_threshold=passes)
        expected_state, expected = oracle(outcomes, fail, passes)
        assert state.state == expected_state
        assert incidents_of(machine) == [
            (minute_text(opened), None if resolved is None else minute_text(resolved))
            for opened, resolved in expected
        ]
        kinds = [alert["type"] for alert in machine.changes.alerts]
        assert kinds.count(OPENED) == len(expected)
        assert kinds.count(RESOLVED) == sum(1 for _, resolved in expected if resolved is not None)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.booleans(), max_size=60),
    st.integers(1, 10),
    st.integers(1, 10),
)
def test_any_sequence_matches_the_oracle(outcomes: list[bool], fail: int, passes: int) -> None:
    state, machine = run(outcomes, failure_threshold=fail, success_threshold=passes)
    expected_state, expected = oracle(outcomes, fail, passes)
    assert state.state == expected_state
    assert [row["opened_at"] for row in machine.changes.incidents.values()] == [
        minute_text(opened) for opened, _ in expected
    ]


def test_before_any_check_a_site_is_unknown_and_one_failure_of_two_changes_nothing() -> None:
    state, machine = run([False])
    assert state.state == "unknown"
    assert (state.fail_streak, machine.changes.alerts) == (1, [])


def test_the_incident_carries_the_first_failed_check_and_the_resolution_its_duration() -> None:
    outcomes = [True, True, False, False, False, True, True]
    state, machine = run(outcomes)
    opened, resolved = machine.changes.alerts
    assert opened["type"] == OPENED
    assert opened["opened_at"] == minute_text(2)
    assert (opened["error"], opened["status_code"]) == ("status", 503)
    assert opened["error_detail"] == "got 503 at minute 2"
    assert resolved["type"] == RESOLVED
    assert resolved["incident_id"] == opened["incident_id"]
    assert resolved["resolved_at"] == minute_text(5)
    assert resolved["duration_seconds"] == 180.0
    assert state.state == "up"
    assert state.since == START + timedelta(minutes=5, seconds=1)
    assert opened["alert_id"] != resolved["alert_id"]


def test_a_late_check_is_ignored() -> None:
    machine = StateMachine(NO_FLAPPING, created_at=START)
    state = SiteState(site_id="s")
    assert machine.advance(state, check(5, True))
    assert not machine.advance(state, check(3, False))
    assert not machine.advance(state, check(5, True))  # the same check again
    assert (state.fail_streak, state.pass_streak, machine.changes.late) == (0, 1, 2)


def test_invalid_thresholds_fall_back_to_two() -> None:
    for bad in (0, 11, "3", 2.5, True, None, [1]):
        state, _ = run([False], failure_threshold=bad)
        assert state.state == "unknown", bad
        state, _ = run([False, False], failure_threshold=bad)
        assert state.state == "down", bad


def test_alerts_false_records_the_incident_and_writes_no_alert() -> None:
    _state, machine = run([False, False, True, True], alerts=False)
    assert len(machine.changes.incidents) == 1
    assert machine.changes.alerts == []


def test_tags_are_copied_into_the_alerts() -> None:
    _, machine = run([False, False], tags=["prod", "BAD TAG", "eu"])
    assert machine.changes.alerts[0]["tags"] == ["prod", "eu"]


def test_a_maintenance_window_keeps_incidents_from_opening() -> None:
    window = MaintenanceWindow(
        starts_at=START + timedelta(minutes=2), ends_at=START + timedelta(minutes=8)
    )
    outcomes = [True, True] + [False] * 6 + [False, False]
    state, machine = run(outcomes, windows=[window])
    # minutes 2..7 are covered; 8 and 9 fail after it: the incident opens at minute 8
    assert incidents_of(machine) == [(minute_text(8), None)]
    assert state.state == "down"


def test_a_window_for_other_sites_or_tags_does_not_cover() -> None:
    others = [
        MaintenanceWindow(
            starts_at=START, ends_at=START + timedelta(hours=1), site_ids=frozenset({"x"})
        ),
        MaintenanceWindow(
            starts_at=START, ends_at=START + timedelta(hours=1), tags=frozenset({"db"})
        ),
    ]
    _, machine = run([False, False], windows=others, tags=["web"])
    assert len(machine.changes.incidents) == 1
    by_tag = MaintenanceWindow(
        starts_at=START, ends_at=START + timedelta(hours=1), tags=frozenset({"web"})
    )
    _, machine = run([False, False], windows=[by_tag], tags=["web"])
    assert machine.changes.incidents == {}


def test_an_incident_notified_before_a_window_is_resolved_inside_it() -> None:
    window = MaintenanceWindow(
        starts_at=START + timedelta(minutes=3), ends_at=START + timedelta(hours=1)
    )
    _, machine = run([False, False, False, True, True], windows=[window])
    assert [alert["type"] for alert in machine.changes.alerts] == [OPENED, RESOLVED]


FLAPPY = IncidentSettings(
    flap_opens=3, flap_window=timedelta(minutes=60), flap_steady=timedelta(minutes=30)
)


def test_flapping_sends_one_notice_holds_the_rest_and_reports_when_steady() -> None:
    # down 2, up 2, six times: opens at minutes 0, 4, 8, 12, 16, 20
    outcomes = [False, False, True, True] * 6 + [False] * 40
    state, machine = run(outcomes, settings=FLAPPY)
    kinds = [alert["type"] for alert in machine.changes.alerts]
    # two incidents notified in full, then the notice; the 7th incident (minute 24) stays
    # down: once steady for 30 minutes its held opening is sent
    assert kinds == [OPENED, RESOLVED, OPENED, RESOLVED, FLAPPING, STABLE, OPENED]
    assert len(machine.changes.incidents) == 7
    stable, held = machine.changes.alerts[-2:]
    assert stable["state"] == "down"
    assert held["opened_at"] == minute_text(24)
    assert stable["scheduled_at"] == held["scheduled_at"]
    assert not state.flapping
    # the held incident is marked notified, so its resolution will be sent
    assert state.incident_notified


def test_a_flapping_site_that_settles_up_sends_only_the_stable_notice() -> None:
    outcomes = [False, False, True, True] * 4 + [True] * 40
    state, machine = run(outcomes, settings=FLAPPY)
    kinds = [alert["type"] for alert in machine.changes.alerts]
    assert kinds == [OPENED, RESOLVED, OPENED, RESOLVED, FLAPPING, STABLE]
    assert machine.changes.alerts[-1]["state"] == "up"
    assert machine.changes.alerts[-1]["incident_id"] is None
    assert state.state == "up"


def test_opens_spread_wider_than_the_window_are_not_flapping() -> None:
    outcomes = ([False, False] + [True] * 38) * 5
    _, machine = run(outcomes, settings=FLAPPY)
    kinds = [alert["type"] for alert in machine.changes.alerts]
    assert FLAPPING not in kinds
    assert kinds.count(OPENED) == 5


def test_a_certificate_is_warned_about_once_and_a_new_one_again() -> None:
    machine = StateMachine(IncidentSettings(cert_warning_days=14), created_at=START)
    state = SiteState(site_id="s")
    far = START + timedelta(days=60)
    soon = START + timedelta(days=10)
    renewed_soon = START + timedelta(days=13)
    for minute, expires in enumerate([far, soon, soon, soon, renewed_soon, renewed_soon]):
        machine.advance(state, check(minute, True, cert_expires_at=expires))
    warnings = [a for a in machine.changes.alerts if a["type"] == CERTIFICATE]
    assert [a["certificate_expires_at"] for a in warnings] == [
        soon.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        renewed_soon.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    ]
    assert len({a["alert_id"] for a in warnings}) == 2


def test_certificate_warnings_off_with_zero_days() -> None:
    machine = StateMachine(IncidentSettings(cert_warning_days=0), created_at=START)
    machine.advance(SiteState(site_id="s"), check(0, True, cert_expires_at=START))
    assert machine.changes.alerts == []


def test_settings_from_the_environment() -> None:
    settings = IncidentSettings.from_env(
        {"CERT_WARNING_DAYS": "7", "ALERT_FLAP_OPENS": "0", "ALERT_FLAP_WINDOW_MINUTES": "15"}
    )
    assert settings.cert_warning_days == 7
    assert settings.flap_opens == 0
    assert settings.flap_window == timedelta(minutes=15)
    assert IncidentSettings.from_env({}) == IncidentSettings()


@pytest.mark.parametrize("value", ["-1", "x", "nan", "1e9"])
def test_bad_settings_name_the_variable(value: str) -> None:
    from webchecker.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="CERT_WARNING_DAYS"):
        IncidentSettings.from_env({"CERT_WARNING_DAYS": value})
