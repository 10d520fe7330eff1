"""template.yaml's checker sizing (bench_realistic's defaults): the timeout covers the
spread, the longest site timeout and Kafka delivery; a default shard fits one payload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from webchecker.check.probe import MAX_SPREAD_SECONDS
from webchecker.local.settings import LocalSettings
from webchecker.schedule.plan import DEFAULT_MAX_PAYLOAD_BYTES, plan_shards
from webchecker.sites import Site

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    decoded, errors = decode(str(ROOT / "template.yaml"))
    assert not errors
    assert decoded is not None
    return dict(decoded)


def test_checker_timeout_covers_the_largest_spread_a_site_timeout_and_delivery(
    template: dict[str, Any],
) -> None:
    checker = template["Resources"]["CheckerFunction"]["Properties"]
    variables = checker["Environment"]["Variables"]
    assert variables["CHECKER_STARTS_PER_SECOND"] == {"Ref": "CheckerStartsPerSecond"}
    spread_max = MAX_SPREAD_SECONDS
    delivery_s = int(variables["KAFKA_DELIVERY_TIMEOUT_MS"]) / 1000
    assert checker["Timeout"] > spread_max + 60 + delivery_s


def test_a_default_shard_of_typical_sites_is_one_payload(template: dict[str, Any]) -> None:
    per_invocation = template["Parameters"]["ChecksPerInvocation"]["Default"]
    sites = [
        Site.from_dict(
            {"id": f"site-{n:05d}", "url": f"https://www.example-{n:05d}.com/health/check"}
        )
        for n in range(per_invocation)
    ]
    plan = plan_shards(sites, "2026-12-02T17:00:00Z", max_sites=per_invocation)
    assert len(plan.shards) == 1
    assert len(plan.shards[0].payload) <= DEFAULT_MAX_PAYLOAD_BYTES


def test_the_local_stack_shards_as_the_template_does(template: dict[str, Any]) -> None:
    # `make run` and bench_pipeline measure the shard size that `sam deploy` ships.
    per_invocation = template["Parameters"]["ChecksPerInvocation"]["Default"]
    assert LocalSettings().checks_per_invocation == per_invocation
