"""Shard planning by timeout: a site that may hold its invocation for 60 s never holds a
shard of 10-second sites (plan.group_by_timeout, used by the scheduler before packing)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from webchecker.schedule.plan import group_by_timeout, plan_shards
from webchecker.sites import Site

TIMEOUTS = (1, 5, 10, 30, 59)


def make_site(site_id: str, timeout: float) -> Site:
    return Site.from_dict(
        {"id": site_id, "url": f"https://example.com/{site_id}", "timeout": timeout}
    )


@given(st.lists(st.sampled_from(TIMEOUTS), max_size=80))
@settings(max_examples=100, deadline=None)
def test_grouping_orders_by_timeout_and_keeps_the_order_among_equals(timeouts: list[int]) -> None:
    sites = [make_site(f"s{i}", timeout) for i, timeout in enumerate(timeouts)]
    grouped = group_by_timeout(sites)
    assert sorted(s.id for s in grouped) == sorted(s.id for s in sites)
    assert [s.timeout for s in grouped] == sorted(timeouts)
    for timeout in set(timeouts):
        same = [s.id for s in sites if s.timeout == timeout]
        assert [s.id for s in grouped if s.timeout == timeout] == same


@given(st.lists(st.sampled_from(TIMEOUTS), max_size=120), st.integers(1, 25))
@settings(max_examples=100, deadline=None)
def test_at_most_one_shard_per_timeout_boundary_mixes_timeouts(
    timeouts: list[int], max_sites: int
) -> None:
    sites = [make_site(f"s{i}", timeout) for i, timeout in enumerate(timeouts)]
    plan = plan_shards(group_by_timeout(sites), "2026-12-02T17:00:00Z", max_sites=max_sites)
    mixed = 0
    for shard in plan.shards:
        body = json.loads(shard.payload)
        if len({site["timeout"] for site in body["sites"]}) > 1:
            mixed += 1
    assert mixed <= max(len(set(timeouts)) - 1, 0)
    assert sum(len(shard.site_ids) for shard in plan.shards) == len(sites)


def test_a_slow_site_does_not_hold_a_shard_of_fast_ones() -> None:
    # Arrival order interleaves them; without grouping every shard would hold a 59 s site.
    sites = [make_site(f"f{i}", 10 if i % 10 else 59) for i in range(100)]
    plan = plan_shards(group_by_timeout(sites), "2026-12-02T17:00:00Z", max_sites=10)
    longest = [
        max(json.loads(s.payload)["sites"], key=lambda x: x["timeout"])["timeout"]
        for s in plan.shards
    ]
    assert longest.count(59) == 1
    assert longest.count(10) == 9
    ungrouped = plan_shards(sites, "2026-12-02T17:00:00Z", max_sites=10)
    assert all(
        any(site["timeout"] == 59 for site in json.loads(shard.payload)["sites"])
        for shard in ungrouped.shards
    )
