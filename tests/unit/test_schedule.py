"""The due rule, the tick, and sharding: pure functions, tables and properties."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.lambda_context import load_event
from webchecker.exceptions import InvalidEvent
from webchecker.schedule.plan import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    due_sites,
    format_tick,
    is_due,
    plan_shards,
    site_offset,
    tick_from_event,
    tick_minute,
)
from webchecker.sites import Site

TICK = datetime(2026, 11, 27, 19, 50, tzinfo=UTC)
site_ids = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,62}", fullmatch=True)
intervals = st.integers(min_value=1, max_value=1440).map(lambda minutes: minutes * 60)


def make_site(site_id: str, *, interval: int = 60, enabled: bool = True, **extra: object) -> Site:
    return Site.from_dict(
        {
            "id": site_id,
            "url": f"http://127.0.0.1/{site_id}",
            "interval": interval,
            "timeout": 5,
            "enabled": enabled,
            **extra,
        }
    )


# -- the tick --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-27T19:50:00Z", TICK),
        ("2026-11-27T19:50:59Z", TICK),
        ("2026-11-27T19:50:59.999999Z", TICK),
        ("2026-11-27T20:50:30+01:00", TICK),
        ("2026-11-27T19:50:00.000+00:00", TICK),
        ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_tick_is_the_event_time_floored_to_the_minute_in_utc(raw: str, expected: datetime) -> None:
    assert tick_from_event({"time": raw}) == expected


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({}, "missing"),
        ({"time": ""}, "missing"),
        ({"time": 1700000000}, "missing"),
        ({"time": "yesterday"}, "not an RFC 3339"),
        ({"time": "2026-11-27T19:50:00"}, "no time zone"),
    ],
)
def test_events_without_a_usable_time_are_refused(event: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidEvent, match=problem):
        tick_from_event(event)


def test_both_event_fixtures_give_the_same_tick() -> None:
    scheduled = tick_from_event(load_event("scheduler-scheduled"))
    scheduler = tick_from_event(load_event("scheduler-eventbridge-scheduler"))
    assert scheduled == scheduler == TICK
    assert format_tick(scheduled) == "2026-11-27T19:50:00Z"


def test_tick_minute_counts_minutes_since_the_epoch() -> None:
    assert tick_minute(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert tick_minute(datetime(1970, 1, 2, 0, 1, tzinfo=UTC)) == 1441


# -- the offset and the due rule -------------------------------------------------------


def test_offset_is_the_same_in_another_process_with_another_hash_seed() -> None:
    ids = ["example", "a", "shop.example-1", "x" * 63]
    code = (
        "import json, sys\n"
        "from webchecker.schedule.plan import site_offset\n"
        "print(json.dumps([site_offset(i) for i in json.loads(sys.argv[1])]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(ids)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == [site_offset(i) for i in ids]


def test_offset_is_pinned_across_releases() -> None:
    # Changing the offset function reshuffles every site's minute: this pins it.
    assert site_offset("example") == 0x50D858E0985ECC7F


@given(site_id=site_ids, interval=intervals, start=st.integers(0, 60_000_000))
@settings(max_examples=200, deadline=None)
def test_over_interval_consecutive_ticks_a_site_is_due_exactly_once(
    site_id: str, interval: int, start: int
) -> None:
    site = make_site(site_id, interval=interval)
    first = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(minutes=start)
    ticks = [first + timedelta(minutes=k) for k in range(interval // 60)]
    assert sum(is_due(site, tick) for tick in ticks) == 1


@given(site_id=site_ids, interval=intervals)
@settings(max_examples=50, deadline=None)
def test_a_disabled_site_is_never_due(site_id: str, interval: int) -> None:
    site = make_site(site_id, interval=interval, enabled=False)
    assert not any(is_due(site, TICK + timedelta(minutes=k)) for k in range(interval // 60))


def test_every_minute_sites_are_due_at_every_tick() -> None:
    sites = [make_site(f"s{i}") for i in range(50)]
    for k in range(5):
        assert due_sites(sites, TICK + timedelta(minutes=k)) == sites


@pytest.mark.parametrize("interval", [300, 600, 3600])
def test_equal_intervals_spread_evenly_over_the_minutes(interval: int) -> None:
    period = interval // 60
    sites = [make_site(f"site-{i}", interval=interval) for i in range(200 * period)]
    counts = Counter[int]()
    for k in range(period):
        counts[k] = len(due_sites(sites, TICK + timedelta(minutes=k)))
    assert sum(counts.values()) == len(sites)  # each once
    mean = len(sites) / period
    # A hash is not a perfect round-robin, but 200 sites a tick stay within +-35%.
    assert min(counts.values()) >= 0.65 * mean
    assert max(counts.values()) <= 1.35 * mean
    assert statistics.pstdev(counts.values()) <= 0.2 * mean


def test_mixed_intervals_balance_over_an_hour() -> None:
    mix = [60, 120, 300, 600, 900, 1800, 3600]
    sites = [make_site(f"m{i}", interval=mix[i % len(mix)]) for i in range(7000)]
    per_tick = [len(due_sites(sites, TICK + timedelta(minutes=k))) for k in range(60)]
    expected_total = sum(60 // (site.interval // 60) for site in sites)
    assert sum(per_tick) == expected_total
    mean = expected_total / 60
    assert max(per_tick) <= 1.3 * mean
    assert min(per_tick) >= 0.7 * mean


def test_replaying_an_old_tick_gives_the_same_due_sites() -> None:
    sites = [make_site(f"r{i}", interval=600) for i in range(100)]
    old = datetime(2020, 1, 1, 0, 7, tzinfo=UTC)
    first = due_sites(sites, tick_from_event({"time": "2020-01-01T00:07:42Z"}))
    assert first == due_sites(sites, old)
    assert first != due_sites(sites, old + timedelta(minutes=1))


# -- sharding --------------------------------------------------------------------------


def decoded(plan_payload: bytes) -> dict[str, object]:
    value: dict[str, object] = json.loads(plan_payload)
    return value


@pytest.mark.parametrize(("count", "max_sites"), [(0, 50), (1, 50), (50, 50), (51, 50), (1000, 7)])
def test_shard_count_and_contents(count: int, max_sites: int) -> None:
    sites = [make_site(f"c{i}") for i in range(count)]
    plan = plan_shards(sites, "2026-11-27T19:50:00Z", max_sites=max_sites)
    assert len(plan.shards) == math.ceil(count / max_sites)
    sent = []
    for shard in plan.shards:
        body = decoded(shard.payload)
        assert body["scheduled_at"] == "2026-11-27T19:50:00Z"
        assert isinstance(body["sites"], list)
        assert 1 <= len(body["sites"]) <= max_sites
        assert [s["id"] for s in body["sites"]] == list(shard.site_ids)
        sent.extend(body["sites"])
    assert sent == [site.to_dict() for site in sites]
    assert plan.oversized == ()


def test_payload_is_exactly_the_compact_json_of_the_contract_shape() -> None:
    sites = [make_site("a", regex="ok", headers={"X-Key": "é"}), make_site("b")]
    (shard,) = plan_shards(sites, "2026-11-27T19:50:00Z").shards
    expected = {"scheduled_at": "2026-11-27T19:50:00Z", "sites": [s.to_dict() for s in sites]}
    assert shard.payload == json.dumps(expected, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def test_large_sites_split_by_size_and_a_site_too_large_alone_is_skipped() -> None:
    big = "x" * 60_000  # four of these do not fit in 256 KB with the envelope
    sites = [make_site(f"big{i}", headers={"X-Pad": big}) for i in range(9)]
    huge = make_site("huge", headers={f"X-{i}": big for i in range(5)})
    plan = plan_shards([*sites[:4], huge, *sites[4:]], "2026-11-27T19:50:00Z", max_sites=50)
    assert [o.site_id for o in plan.oversized] == ["huge"]
    assert plan.oversized[0].size > DEFAULT_MAX_PAYLOAD_BYTES
    assert all(len(shard.payload) <= DEFAULT_MAX_PAYLOAD_BYTES for shard in plan.shards)
    assert [len(shard.site_ids) for shard in plan.shards] == [4, 4, 1]
    assert [i for shard in plan.shards for i in shard.site_ids] == [s.id for s in sites]


@given(
    sizes=st.lists(st.integers(0, 3000), max_size=60),
    max_sites=st.integers(1, 20),
    max_bytes=st.integers(400, 8000),
)
@settings(max_examples=150, deadline=None)
def test_shards_never_exceed_either_limit_and_lose_nothing(
    sizes: list[int], max_sites: int, max_bytes: int
) -> None:
    sites = [make_site(f"p{i}", body="b" * size) for i, size in enumerate(sizes)]
    plan = plan_shards(sites, "2026-11-27T19:50:00Z", max_sites=max_sites, max_bytes=max_bytes)
    for shard in plan.shards:
        assert len(shard.payload) <= max_bytes
        assert 1 <= len(shard.site_ids) <= max_sites
        assert len(decoded(shard.payload)["sites"]) == len(shard.site_ids)  # type: ignore[arg-type]
    sent = [i for shard in plan.shards for i in shard.site_ids]
    skipped = [o.site_id for o in plan.oversized]
    assert sorted(sent + skipped) == sorted(s.id for s in sites)
    for oversized in plan.oversized:
        assert oversized.size > max_bytes
    # Greedy packing: a shard is closed only when the next site would not fit.
    for current, following in zip(plan.shards, plan.shards[1:], strict=False):
        if len(current.site_ids) < max_sites:
            next_site = json.dumps(
                decoded(following.payload)["sites"][0],  # type: ignore[index]
                separators=(",", ":"),
            )
            assert len(current.payload) + 1 + len(next_site) > max_bytes


@pytest.mark.parametrize("raw", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_tick_out_of_range_in_utc_is_an_invalid_event(raw: str) -> None:
    """Issue 9 item 13's twin in the scheduler: OverflowError before."""
    with pytest.raises(InvalidEvent, match="out of range"):
        tick_from_event({"time": raw})
