"""Pacing a shard's check starts (CHECKER_STARTS_PER_SECOND): configuration and behaviour.

The spacing is a lower bound the code guarantees (a check never starts before its slot);
no upper bound on time is asserted.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from tests.fixtures.http_targets import HttpTargets
from webchecker.check.probe import (
    DEFAULT_STARTS_PER_SECOND,
    MAX_SPREAD_SECONDS,
    SLOW_SECONDS,
    ProbeSettings,
    SlowSites,
    check_sites,
    start_order,
    start_step,
)
from webchecker.exceptions import ConfigurationError
from webchecker.sites import Site


def sites_of(http_targets: HttpTargets, count: int) -> list[Site]:
    return [
        Site.from_dict({"id": f"s{n}", "url": http_targets.url("/ok"), "timeout": 5})
        for n in range(count)
    ]


def test_the_rate_comes_from_its_variable_and_defaults_to_all_at_once() -> None:
    assert ProbeSettings.from_env({}).starts_per_second == DEFAULT_STARTS_PER_SECOND == 0.0
    settings = ProbeSettings.from_env({"CHECKER_STARTS_PER_SECOND": "16.5"})
    assert settings.starts_per_second == 16.5


@pytest.mark.parametrize("raw", ["-1", "10001", "nan", "inf", "soon"])
def test_a_bad_rate_is_refused_naming_it(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="CHECKER_STARTS_PER_SECOND"):
        ProbeSettings.from_env({"CHECKER_STARTS_PER_SECOND": raw})


def test_starts_are_paced_at_the_rate_and_results_keep_site_order(
    http_targets: HttpTargets,
) -> None:
    settings = ProbeSettings(allow_private_targets=True, starts_per_second=5.0, concurrency=10)
    results = asyncio.run(
        check_sites(sites_of(http_targets, 4), scheduled_at=datetime.now(UTC), settings=settings)
    )
    assert [r.site_id for r in results] == ["s0", "s1", "s2", "s3"]
    assert all(r.ok for r in results)
    starts = [r.checked_at for r in results]
    for n in range(1, 4):  # slot n is 0.2 s x n after the first, never earlier
        assert (starts[n] - starts[0]).total_seconds() >= 0.2 * n - 0.01


@pytest.mark.parametrize(
    ("count", "rate", "step"),
    [
        (500, 17.0, 1 / 17),  # the template's defaults: 500 starts over ~29.4 s
        (20, 17.0, 1 / 17),  # a small shard: done in ~1.2 s, not stretched to a full spread
        (2000, 17.0, MAX_SPREAD_SECONDS / 2000),  # capped: never beyond MAX_SPREAD_SECONDS
        (500, 0.0, 0.0),  # 0: all at once
        (0, 17.0, 0.0),
    ],
)
def test_the_step_between_starts(count: int, rate: float, step: float) -> None:
    assert start_step(count, rate) == pytest.approx(step)
    assert start_step(count, rate) * count <= MAX_SPREAD_SECONDS


def test_without_pacing_every_check_starts_at_once(http_targets: HttpTargets) -> None:
    # Concurrency 1 makes the order observable: each check starts after the previous one.
    settings = ProbeSettings(allow_private_targets=True, concurrency=1)
    results = asyncio.run(
        check_sites(sites_of(http_targets, 3), scheduled_at=datetime.now(UTC), settings=settings)
    )
    assert [r.site_id for r in results] == ["s0", "s1", "s2"]
    assert results[0].checked_at <= results[1].checked_at <= results[2].checked_at


def test_longest_timeouts_start_first_then_the_sites_remembered_as_slow() -> None:
    def site(site_id: str, timeout: float) -> Site:
        return Site.from_dict({"id": site_id, "url": "https://example.com/", "timeout": timeout})

    sites = [site("a", 10), site("b", 10), site("c", 30), site("d", 10), site("e", 10)]
    slow = SlowSites()
    assert start_order(sites, slow) == [2, 0, 1, 3, 4]  # nothing remembered: timeouts only
    slow.record("d", 4.0)
    slow.record("b", 10.0)  # timed out the last time
    slow.record("e", 0.2)  # fast: not remembered
    assert start_order(sites, slow) == [2, 1, 3, 0, 4]


def test_the_memory_forgets_a_site_that_was_fast_again_and_stays_bounded() -> None:
    slow = SlowSites(limit=2)
    slow.record("a", SLOW_SECONDS)
    assert slow.held("a") == SLOW_SECONDS
    slow.record("a", SLOW_SECONDS / 2)
    assert slow.held("a") == 0.0
    for site_id in ("b", "c", "d"):
        slow.record(site_id, 5.0)
    assert len(slow) == 2
    assert slow.held("b") == 0.0  # the oldest went first
    assert slow.held("d") == 5.0


def test_a_site_remembered_as_slow_starts_first_and_results_keep_site_order(
    http_targets: HttpTargets,
) -> None:
    # Concurrency 1 makes the start order observable.
    settings = ProbeSettings(allow_private_targets=True, concurrency=1)
    sites = [
        Site.from_dict({"id": "fast", "url": http_targets.url("/ok"), "timeout": 5}),
        Site.from_dict({"id": "slow", "url": http_targets.url("/slow/1.2"), "timeout": 5}),
    ]
    slow = SlowSites()
    first = asyncio.run(
        check_sites(sites, scheduled_at=datetime.now(UTC), settings=settings, slow=slow)
    )
    assert first[0].checked_at < first[1].checked_at  # nothing known yet: as given
    assert slow.held("slow") >= 1.2
    assert slow.held("fast") == 0.0
    second = asyncio.run(
        check_sites(sites, scheduled_at=datetime.now(UTC), settings=settings, slow=slow)
    )
    assert [r.site_id for r in second] == ["fast", "slow"]
    assert all(r.ok for r in second)
    assert second[1].checked_at < second[0].checked_at  # the slow one went first
