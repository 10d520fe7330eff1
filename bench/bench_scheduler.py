"""Scheduler: time to read and fan out 10,000 and 100,000 sites, and the per-tick spread.

SSM and Lambda are answered by moto's server in its own process on loopback (Lambda's
Docker-free backend: async invokes are accepted with 202, nothing runs), so every read and
invoke is a real HTTP round trip through boto3. Sites are packed 50 to a parameter (arrays,
as DESIGN.md allows, ~3.5 KB each) to keep seeding 100,000 sites in moto bounded; reading
one site per parameter would take 10x the GetParametersByPath pages.

Baselines measured in the same run: the same shards invoked one after another
(sequential), first as moto answers (about 3 ms of CPU per invoke, nearly no waiting), then
with an emulated AWS round trip (INVOKE_LATENCY_MS slept in a botocore hook before every
invoke), which is the waiting that concurrency hides; and the per-tick load of the same
sites without the per-site offset (every site of an interval due at the same minute).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3

from webchecker.local.embedded.aws import EmbeddedAws
from webchecker.schedule.catalog import SiteStore, SiteStoreSettings
from webchecker.schedule.fanout import LambdaInvoker, fan_out, new_lambda_client
from webchecker.schedule.plan import Shard, due_sites, format_tick, plan_shards, tick_minute
from webchecker.schedule.slow_sites import SlowSiteHints, SlowSitesQueue
from webchecker.sites import Site

SITES_PER_PARAMETER = 50
CHECKS_PER_INVOCATION = 50
CONCURRENCY = 32
INVOKE_LATENCY_MS = 20  # assumed same-region Invoke round trip
REPORTED_SHARD = 800  # the template's ChecksPerInvocation: one slow-site report per shard
SLOW_EVERY = 20  # 1 site in 20 reported slow (bench_realistic's mix: ~5% take 1 s or more)
TICK = datetime(2026, 11, 27, 19, 50, tzinfo=UTC)
MIXED_INTERVALS = [60, 120, 300, 600, 900, 1800, 3600]


def seed(ssm: object, path: str, count: int) -> None:
    def put(first: int) -> None:
        items = [
            {"id": f"s{i:06d}", "url": f"http://127.0.0.1:9/{i}", "interval": 60}
            for i in range(first, min(first + SITES_PER_PARAMETER, count))
        ]
        ssm.put_parameter(  # type: ignore[attr-defined]
            Name=f"{path}/p{first:06d}", Value=json.dumps(items), Type="String", Overwrite=True
        )

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(0, count, SITES_PER_PARAMETER)))


def measure(aws: EmbeddedAws, count: int) -> None:
    path = f"/bench/n{count}"
    ssm = boto3.client("ssm")
    started = time.perf_counter()
    seed(ssm, path, count)
    seeded = time.perf_counter() - started

    store = SiteStore(SiteStoreSettings(path=path, cache_seconds=0), client=ssm)
    t0 = time.perf_counter()
    catalog = store.load(force=True)
    t1 = time.perf_counter()
    due = due_sites(catalog.sites, TICK)
    plan = plan_shards(due, format_tick(TICK), max_sites=CHECKS_PER_INVOCATION)
    t2 = time.perf_counter()
    assert len(catalog.sites) == len(due) == count, (len(catalog.sites), len(due))
    read, cut = t1 - t0, t2 - t1

    slow_sites(count, due, cut)

    invoker = LambdaInvoker("webchecker-checker", client=new_lambda_client(CONCURRENCY))
    fan_out(plan.shards[:CONCURRENCY], invoker, concurrency=CONCURRENCY)  # warm connections
    fan = timed_fan_out(plan.shards, invoker, CONCURRENCY)
    seq = timed_fan_out(plan.shards, invoker, 1)
    print(
        f"{count:>7,} sites ({count // SITES_PER_PARAMETER:,} parameters,"
        f" seeded in {seeded:.1f} s): read {read:5.2f} s | due+shard {cut:4.2f} s |"
        f" {len(plan.shards):,} invokes x{CONCURRENCY} {fan:5.2f} s |"
        f" tick total {read + cut + fan:5.2f} s"
    )
    print(
        f"{'':9}baseline: same invokes sequential {seq:5.2f} s -> concurrent {seq / fan:4.1f}x"
        " (moto answers in ~3 ms of CPU, so little latency to hide)"
    )
    # AWS answers an Invoke in tens of milliseconds, mostly waiting: emulate that wait.
    delay = emulate_latency(invoker)
    fan_l = timed_fan_out(plan.shards, invoker, CONCURRENCY)
    seq_l = timed_fan_out(plan.shards, invoker, 1)
    delay.cancel()
    print(
        f"{'':9}with {INVOKE_LATENCY_MS} ms emulated latency per invoke: concurrent {fan_l:5.2f} s"
        f" (tick total {read + cut + fan_l:5.2f} s), sequential {seq_l:6.2f} s"
        f" -> concurrent {seq_l / fan_l:4.1f}x"
    )


def slow_sites(count: int, due: Sequence[Site], cut: float) -> None:
    """The tick's extra work for the checkers' reports: drain them, plan with them."""
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"bench-slow-sites-{count}")["QueueUrl"]
    queue = SlowSitesQueue(url, client=sqs)
    reports = math.ceil(count / REPORTED_SHARD)
    for first in range(0, count, REPORTED_SHARD):
        last = min(first + REPORTED_SHARD, count)
        queue.send({f"s{i:06d}": 2.0 for i in range(first, last, SLOW_EVERY)})
    hints = SlowSiteHints()
    t0 = time.perf_counter()
    drained = queue.drain(lambda slow: hints.learn(slow, 0.0))
    t1 = time.perf_counter()
    plan = plan_shards(
        due, format_tick(TICK), max_sites=CHECKS_PER_INVOCATION, slow_seconds=hints.seconds
    )
    t2 = time.perf_counter()
    first_ids = {shard.site_ids[0] for shard in plan.shards}
    assert drained == reports, (drained, reports)
    assert len(hints) == len(range(0, count, SLOW_EVERY))
    assert all(int(site_id[1:]) % SLOW_EVERY == 0 for site_id in first_ids)  # slow ones first
    print(
        f"{'':9}slow-site reports: {drained} (one per {REPORTED_SHARD} sites) drained in"
        f" {t1 - t0:4.2f} s, {len(hints):,} slow sites; due+shard with them {t2 - t1:4.2f} s"
        f" ({(t2 - t1) / cut:4.2f}x without)"
    )


def timed_fan_out(shards: Sequence[Shard], invoker: LambdaInvoker, concurrency: int) -> float:
    started = time.perf_counter()
    result = fan_out(shards, invoker, concurrency=concurrency)
    elapsed = time.perf_counter() - started
    assert result.sent == len(shards), result.failed[:1]
    return elapsed


class emulate_latency:
    """Sleeps INVOKE_LATENCY_MS before every Invoke of this client (a botocore hook)."""

    def __init__(self, invoker: LambdaInvoker) -> None:
        self._events = invoker.client.meta.events
        self._events.register("before-call.lambda.Invoke", self._sleep)

    @staticmethod
    def _sleep(**_: object) -> None:
        time.sleep(INVOKE_LATENCY_MS / 1000)

    def cancel(self) -> None:
        self._events.unregister("before-call.lambda.Invoke", self._sleep)


def spread() -> None:
    sites = [
        Site.from_dict(
            {"id": f"m{i:06d}", "url": "http://127.0.0.1/", "interval": iv, "timeout": 5}
        )
        for i, iv in enumerate(MIXED_INTERVALS[i % len(MIXED_INTERVALS)] for i in range(20_000))
    ]
    ticks = [TICK + timedelta(minutes=k) for k in range(60)]  # lcm of the intervals
    t0 = time.perf_counter()
    per_tick = [len(due_sites(sites, tick)) for tick in ticks]
    elapsed = time.perf_counter() - t0
    # Baseline: no offset, a site is due when tick_minute % period == 0.
    naive = [sum(1 for s in sites if tick_minute(tick) % (s.interval // 60) == 0) for tick in ticks]
    for label, counts in (("with offset", per_tick), ("no offset (baseline)", naive)):
        mean = statistics.fmean(counts)
        print(
            f"  {label:<21} min {min(counts):6,} max {max(counts):6,} mean {mean:8.1f}"
            f" stddev {statistics.pstdev(counts):8.1f}  max/mean {max(counts) / mean:5.2f}"
        )
    assert sum(per_tick) == sum(naive)
    print(
        f"  (20,000 sites, intervals {MIXED_INTERVALS} s, over 60 ticks; due rule evaluated"
        f" {len(sites) * 60 / elapsed:,.0f} sites/s)"
    )


def main() -> int:
    counts = [int(arg) for arg in sys.argv[1:]] or [10_000, 100_000]
    with EmbeddedAws() as aws:
        os.environ.update(aws.client_env())
        request = urllib.request.Request(
            f"{aws.endpoint_url}/moto-api/config",
            data=json.dumps({"lambda": {"use_docker": False}}).encode(),
            method="POST",
        )
        urllib.request.urlopen(request, timeout=10).close()
        print("moto server (own process, loopback); Lambda: Docker-free backend, 202 per invoke")
        for count in counts:
            measure(aws, count)
    print("per-tick spread of due sites, mixed intervals:")
    spread()
    return 0


if __name__ == "__main__":
    sys.exit(main())
