"""The slow-site reports (checker -> scheduler): their format, the scheduler's memory of
them, and the order they give each shard."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webchecker.schedule.plan import plan_shards
from webchecker.schedule.slow_sites import (
    MAX_REPORTED,
    SlowSiteHints,
    encode_report,
    parse_report,
)
from webchecker.sites import Site

TICK = "2026-12-03T08:00:00Z"


def sites(count: int, timeout: int = 10) -> list[Site]:
    return [
        Site.from_dict({"id": f"s{n}", "url": f"https://s{n}.example/", "timeout": timeout})
        for n in range(count)
    ]


def test_a_report_round_trips_and_keeps_only_the_slowest() -> None:
    slow = {f"s{n}": float(n) for n in range(MAX_REPORTED + 50)}
    parsed = parse_report(encode_report(slow))
    assert len(parsed) == MAX_REPORTED
    assert min(parsed.values()) == 50.0  # the 50 fastest were left out
    assert parsed["s300"] == 300.0


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (None, "expected a JSON text"),
        ("{", "not JSON"),
        ("[1]", "expected a JSON object"),
        ('{"slow": {}}', "version"),
        ('{"v": 2, "slow": {}}', "version"),
        ('{"v": 1}', "slow must be an object"),
        ('{"v": 1, "slow": {"a": "3"}}', "'a' must be a number"),
        ('{"v": 1, "slow": {"a": true}}', "'a' must be a number"),
        ('{"v": 1, "slow": {"a": -1}}', "finite and >= 0"),
        ('{"v": 1, "slow": {"a": NaN}}', "finite and >= 0"),
        ('{"v": 1, "slow": {"a": Infinity}}', "finite and >= 0"),
        ('{"v": 1, "slow": {"a": 1e999}}', "finite and >= 0"),
        ('{"v": 1, "slow": {"' + "x" * 600 + '": 1}}', "over 512 chars"),
        ("[" * 100_000, "not JSON"),
    ],
)
def test_a_bad_report_is_one_clear_error(body: object, named: str) -> None:
    with pytest.raises(ValueError, match="report: ") as raised:
        parse_report(body)
    assert named in str(raised.value)


@given(st.text(max_size=300))
def test_any_text_parses_or_raises_value_error(body: str) -> None:
    try:
        parsed = parse_report(body)
    except ValueError as error:
        assert str(error).startswith("report: ")
    else:
        assert all(math.isfinite(s) and s >= 0 for s in parsed.values())


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=40),  # surrogates and control characters included
        st.floats(min_value=0, max_value=1e6, allow_nan=False),
        max_size=40,
    )
)
def test_any_slow_sites_survive_the_round_trip(slow: dict[str, float]) -> None:
    parsed = parse_report(encode_report(slow))
    assert parsed.keys() == slow.keys()
    assert all(abs(parsed[site] - seconds) <= 0.005 for site, seconds in slow.items())


def test_any_json_value_in_a_report_is_handled() -> None:
    for value in (0, "x", [], {}, {"v": 1, "slow": []}, {"v": 1, "slow": {"a": None}}):
        with pytest.raises(ValueError, match="report: "):
            parse_report(json.dumps(value))


def test_hints_are_forgotten_after_their_ttl_unless_repeated() -> None:
    hints = SlowSiteHints(ttl=600)
    hints.learn({"a": 10.0, "b": 2.0}, now=0)
    hints.learn({"a": 9.5}, now=500)  # a repeated, b not
    hints.forget_older_than(now=700)
    assert hints.seconds("a") == 9.5
    assert hints.seconds("b") == 0.0
    assert len(hints) == 1


def test_the_memory_is_bounded_dropping_the_oldest() -> None:
    hints = SlowSiteHints(limit=3)
    hints.learn({"a": 1.0, "b": 1.0}, now=0)
    hints.learn({"c": 1.0, "d": 1.0}, now=1)
    assert [hints.seconds(s) for s in "abcd"] == [0.0, 1.0, 1.0, 1.0]


def test_a_shard_lists_its_slow_sites_first_and_keeps_its_members() -> None:
    hints = SlowSiteHints()
    hints.learn({"s7": 10.0, "s3": 2.5, "s12": 4.0}, now=0)
    plain = plan_shards(sites(15), TICK, max_sites=5)
    hinted = plan_shards(sites(15), TICK, max_sites=5, slow_seconds=hints.seconds)
    assert [set(s.site_ids) for s in hinted.shards] == [set(s.site_ids) for s in plain.shards]
    assert [s.site_ids for s in hinted.shards] == [
        ("s3", "s0", "s1", "s2", "s4"),
        ("s7", "s5", "s6", "s8", "s9"),
        ("s12", "s10", "s11", "s13", "s14"),
    ]
    for shard in hinted.shards:  # the payload lists the sites in the same order
        payload = json.loads(shard.payload)
        assert tuple(site["id"] for site in payload["sites"]) == shard.site_ids
        assert payload["scheduled_at"] == TICK


def test_without_hints_the_order_is_unchanged() -> None:
    hinted = plan_shards(sites(7), TICK, max_sites=4, slow_seconds=SlowSiteHints().seconds)
    assert [s.site_ids for s in hinted.shards] == [
        ("s0", "s1", "s2", "s3"),
        ("s4", "s5", "s6"),
    ]
