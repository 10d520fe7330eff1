"""Spreading a shard's check starts (CHECKER_SPREAD_SECONDS): configuration and behaviour.

The spacing is a lower bound the code guarantees (a check never starts before its slot);
no upper bound on time is asserted.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from tests.fixtures.http_targets import HttpTargets
from webchecker.check.probe import DEFAULT_SPREAD_SECONDS, ProbeSettings, check_sites
from webchecker.exceptions import ConfigurationError
from webchecker.sites import Site


def test_spread_comes_from_its_variable_and_defaults_to_none() -> None:
    assert ProbeSettings.from_env({}).spread_seconds == DEFAULT_SPREAD_SECONDS == 0.0
    assert ProbeSettings.from_env({"CHECKER_SPREAD_SECONDS": "40"}).spread_seconds == 40.0


@pytest.mark.parametrize("raw", ["-1", "601", "nan", "inf", "soon"])
def test_a_bad_spread_is_refused_naming_it(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="CHECKER_SPREAD_SECONDS"):
        ProbeSettings.from_env({"CHECKER_SPREAD_SECONDS": raw})


def test_starts_are_spaced_over_the_spread_and_results_keep_site_order(
    http_targets: HttpTargets,
) -> None:
    sites = [
        Site.from_dict({"id": f"s{n}", "url": http_targets.url("/ok"), "timeout": 5})
        for n in range(4)
    ]
    settings = ProbeSettings(allow_private_targets=True, spread_seconds=0.8, concurrency=10)
    results = asyncio.run(check_sites(sites, scheduled_at=datetime.now(UTC), settings=settings))
    assert [r.site_id for r in results] == ["s0", "s1", "s2", "s3"]
    assert all(r.ok for r in results)
    starts = [r.checked_at for r in results]
    for n in range(1, 4):  # slot n starts 0.2 s x n after the first, never earlier
        assert (starts[n] - starts[0]).total_seconds() >= 0.2 * n - 0.01


def test_without_spread_every_check_starts_at_once(http_targets: HttpTargets) -> None:
    # Concurrency 1 makes the order observable: each check starts after the previous one.
    sites = [
        Site.from_dict({"id": f"s{n}", "url": http_targets.url("/ok"), "timeout": 5})
        for n in range(3)
    ]
    settings = ProbeSettings(allow_private_targets=True, concurrency=1)
    results = asyncio.run(check_sites(sites, scheduled_at=datetime.now(UTC), settings=settings))
    assert [r.site_id for r in results] == ["s0", "s1", "s2"]
    assert results[0].checked_at <= results[1].checked_at <= results[2].checked_at
