"""Pacing a shard's check starts (CHECKER_STARTS_PER_SECOND, CHECKER_CPU_BUDGET): configuration
and behaviour.

The spacing is a lower bound the code guarantees (a check never starts before its slot);
no upper bound on time is asserted.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from tests.fixtures.http_targets import HttpTargets
from webchecker.check.probe import (
    CPU_POLL_SECONDS,
    DEFAULT_CPU_BUDGET,
    DEFAULT_STARTS_PER_SECOND,
    FULL_CORE_MB,
    MAX_SPREAD_SECONDS,
    SLOW_SECONDS,
    CpuPacer,
    ProbeSettings,
    SlowSites,
    check_sites,
    start_order,
    start_step,
)
from webchecker.exceptions import ConfigurationError
from webchecker.results import CheckResult
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


# --- CPU-budget pacing (CHECKER_CPU_BUDGET) ----------------------------------------------


def test_the_budget_comes_from_its_variable_and_the_share_from_lambdas_memory() -> None:
    local = ProbeSettings.from_env({})
    assert local.cpu_budget == DEFAULT_CPU_BUDGET
    assert local.cpu_share == 0.0  # not in Lambda: no share known, nothing paced
    assert CpuPacer.of(local) is None
    lambda_ = ProbeSettings.from_env(
        {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "160", "CHECKER_CPU_BUDGET": "0.5"}
    )
    assert lambda_.cpu_budget == 0.5
    assert lambda_.cpu_share == pytest.approx(160 / FULL_CORE_MB)
    pacer = CpuPacer.of(lambda_)
    assert pacer is not None
    assert pacer.limit == pytest.approx(0.5 * 160 / FULL_CORE_MB)
    off = ProbeSettings.from_env(
        {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "160", "CHECKER_CPU_BUDGET": "0"}
    )
    assert CpuPacer.of(off) is None


@pytest.mark.parametrize("raw", ["-0.1", "1.5", "nan", "inf", "half"])
def test_a_bad_budget_is_refused_naming_it(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="CHECKER_CPU_BUDGET"):
        ProbeSettings.from_env({"CHECKER_CPU_BUDGET": raw})


@pytest.mark.parametrize("raw", ["-1", "20000", "lots"])
def test_a_bad_lambda_memory_is_refused_naming_it(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="AWS_LAMBDA_FUNCTION_MEMORY_SIZE"):
        ProbeSettings.from_env({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": raw})


@pytest.mark.parametrize(("budget", "share"), [(float("nan"), 0.1), (1.5, 0.1), (0.5, -1.0)])
def test_settings_refuse_a_bad_budget_or_share(budget: float, share: float) -> None:
    with pytest.raises(ConfigurationError):
        ProbeSettings(cpu_budget=budget, cpu_share=share)


class FakeTime:
    """A clock and a CPU-time counter the test moves by hand; sleeping advances the clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.used = 0.0
        self.cores = 0.0  # CPU used per second slept

    def clock(self) -> float:
        return self.now

    def cpu(self) -> float:
        return self.used

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.used += self.cores * seconds


def test_the_pacer_holds_while_the_recent_cpu_use_is_over_its_limit() -> None:
    fake = FakeTime()
    pacer = CpuPacer(0.1, window=0.3, clock=fake.clock, cpu=fake.cpu, sleep=fake.sleep)
    assert not pacer.busy()  # no history yet: a start is never held for lack of it
    fake.now, fake.used = 0.3, 0.06  # 0.2 cores over the window: over 0.1
    assert pacer.busy()
    asyncio.run(pacer.hold())  # idle while held: the window's use drops under the limit
    assert pacer.holds == 1
    # Held until the window no longer covers the use (its timing within 0.3 s is unknown).
    assert 0.0 < pacer.delayed <= 0.3 + CPU_POLL_SECONDS
    assert not pacer.busy()
    fake.now += 0.3
    fake.used += 0.01  # 0.03 cores: under
    asyncio.run(pacer.hold())
    assert pacer.holds == 1  # not held again


def test_the_holds_of_one_invocation_stop_at_their_cap() -> None:
    fake = FakeTime()
    fake.cores = 2.0  # something else keeps using two cores: never back under the limit
    pacer = CpuPacer(
        0.1, window=0.3, max_delay=1.0, clock=fake.clock, cpu=fake.cpu, sleep=fake.sleep
    )
    pacer.busy()
    fake.now, fake.used = 0.3, 0.6
    asyncio.run(pacer.hold())
    assert 1.0 <= pacer.delayed <= 1.0 + CPU_POLL_SECONDS
    spent = pacer.delayed
    asyncio.run(pacer.hold())  # the cap is spent: later starts are not held
    assert pacer.delayed == spent
    assert pacer.holds == 1


def test_a_tiny_budget_delays_starts_and_results_keep_site_order(
    http_targets: HttpTargets,
) -> None:
    # The CPU-time function reports two cores in use: every start after the first window
    # is held, so the holds add up; the same shard with an idle CPU is never held.
    settings = ProbeSettings(allow_private_targets=True, starts_per_second=50.0, concurrency=10)
    sites = sites_of(http_targets, 8)

    def run(pacer: CpuPacer) -> list[CheckResult]:
        return asyncio.run(
            check_sites(sites, scheduled_at=datetime.now(UTC), settings=settings, pacer=pacer)
        )

    idle = CpuPacer(0.01, window=0.05, cpu=lambda: 0.0)
    quiet = run(idle)
    assert idle.holds == 0
    assert idle.delayed == 0.0
    busy = CpuPacer(0.01, window=0.05, max_delay=0.5, cpu=lambda: 2.0 * time.monotonic())
    paced = run(busy)
    assert busy.holds > 0
    assert busy.delayed > 0.0
    assert busy.delayed <= 0.5 + CPU_POLL_SECONDS  # capped
    for results in (quiet, paced):
        assert [r.site_id for r in results] == [f"s{n}" for n in range(8)]
        assert all(r.ok for r in results)
    # Starts stay in order: a hold moves the later starts, it never lets them overtake.
    starts = [r.checked_at for r in paced]
    assert starts == sorted(starts)
