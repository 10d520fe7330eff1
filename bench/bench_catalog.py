"""Parameter Store at scale: the scheduler's site refresh at 10,000 and 100,000 sites,
against moto throttled like the real API.

Parameter Store's default throughput is 40 transactions per second shared by
GetParameter, GetParameters and GetParametersByPath (AWS Systems Manager endpoints and
quotas); GetParametersByPath returns at most 10 parameters per call. Here moto's server
(own process, loopback) stands behind a token bucket of that rate (burst 40) in a
botocore hook: a call without a token gets ``ThrottlingException`` (HTTP 400) without
reaching moto, and botocore's retries (standard mode, 8 attempts, as the scheduler's
client) back off as they would against AWS.

Layouts (sites of ~70 bytes: id, https URL, interval):
- one parameter per site, as ``webchecker sites add`` writes them (the baseline; the
  standard tier caps it at 10,000 parameters, so 100,000 is not possible this way);
- packed by ``webchecker sites pack`` (``webchecker.schedule.packing``): arrays of at most
  4 KB.

Measured: a cold refresh (``SiteStore.load(force=True)``: what a tick does once per
``SITES_CACHE_SECONDS``), its calls and throttled calls, then due + shard planning; and a
cached tick (``SITES_CACHE_SECONDS`` not yet expired).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from webchecker.local.embedded.aws import EmbeddedAws
from webchecker.schedule import packing
from webchecker.schedule.catalog import SiteStore, SiteStoreSettings
from webchecker.schedule.plan import due_sites, format_tick, group_by_timeout, plan_shards

RATE = 40.0  # transactions per second, GetParameter + GetParameters + GetParametersByPath
TICK = datetime(2026, 12, 2, 17, 0, tzinfo=UTC)
THROTTLED_OPERATIONS = ("GetParameter", "GetParameters", "GetParametersByPath")


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.at = burst, time.monotonic()
        self.lock = threading.Lock()
        self.calls = self.throttled = 0

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            self.calls += 1
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            self.throttled += 1
            return False


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def throttled_client(bucket: TokenBucket) -> Any:
    client = boto3.client("ssm", config=Config(retries={"mode": "standard", "max_attempts": 8}))
    body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()

    def gate(request: Any, **_: Any) -> AWSResponse | None:
        if bucket.take():
            return None
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "bench"}
        return AWSResponse(request.url, 400, headers, _Raw(body))

    for operation in THROTTLED_OPERATIONS:
        client.meta.events.register(f"before-send.ssm.{operation}", gate)
    return client


def make_sites(count: int) -> list[dict[str, Any]]:
    intervals = (60, 60, 60, 300, 600)
    return [
        {
            "id": f"s{n:06d}",
            "url": f"https://site-{n:06d}.example.com/",
            "interval": intervals[n % len(intervals)],
        }
        for n in range(count)
    ]


def seed(path: str, sites: list[dict[str, Any]], packed: bool) -> int:
    """Writes the sites unthrottled (moto directly); returns the number of parameters."""
    ssm = boto3.client("ssm")
    if packed:
        listing = {
            f"{path}/{site['id']}": packing.StoredValue(value=json.dumps(site)) for site in sites
        }
        plan = packing.plan_packs(listing, path)
        values = {pack.name: pack.value for pack in plan.packs}
    else:
        values = {f"{path}/{site['id']}": json.dumps(site) for site in sites}

    def put(item: tuple[str, str]) -> None:
        ssm.put_parameter(Name=item[0], Value=item[1], Type="String", Overwrite=True)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, values.items()))
    return len(values)


def reset(aws: EmbeddedAws) -> None:
    """Empties moto: it scans every parameter it holds on each call, so layouts run alone."""
    request = urllib.request.Request(f"{aws.endpoint_url}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=30).close()


def measure(
    aws: EmbeddedAws, count: int, packed: bool, baseline: float | None, readers: int = 1
) -> float:
    reset(aws)
    path = f"/bench/{'packed' if packed else 'single'}{count}"
    parameters = seed(path, make_sites(count), packed)
    bucket = TokenBucket(RATE, RATE)
    stores = [
        SiteStore(SiteStoreSettings(path=path, cache_seconds=300), client=throttled_client(bucket))
        for _ in range(readers)
    ]
    store = stores[0]
    started = time.perf_counter()
    with ThreadPoolExecutor(readers) as pool:
        catalogs = list(pool.map(lambda each: each.load(force=True), stores))
    read = time.perf_counter() - started
    catalog = catalogs[0]
    assert all(len(c.sites) == count for c in catalogs), [len(c.sites) for c in catalogs]
    started = time.perf_counter()
    due = due_sites(catalog.sites, TICK)
    plan = plan_shards(group_by_timeout(due), format_tick(TICK), max_sites=500)
    cut = time.perf_counter() - started
    started = time.perf_counter()
    store.load()  # within SITES_CACHE_SECONDS: no call
    cached = time.perf_counter() - started + cut
    layout = f"packed into {parameters:,} parameters" if packed else "one parameter per site"
    if readers > 1:
        layout += f", {readers} readers at once"
    ratio = f"; {baseline / read:.1f}x faster than the baseline" if baseline else " (baseline)"
    answered = bucket.calls - bucket.throttled
    print(
        f"{count:>7,} sites, {layout}: cold refresh {read:6.2f} s ({bucket.calls:,} calls, "
        f"{bucket.throttled:,} throttled; at most {RATE:g}/s in AWS: >= {answered / RATE:.1f} s)"
        f"{ratio}; due+shard {cut:.2f} s ({len(due):,} due, {len(plan.shards)} shards); "
        f"cached tick {cached:.2f} s",
        flush=True,
    )
    return read


def main() -> int:
    with EmbeddedAws() as aws:
        os.environ.update(aws.client_env())
        print(
            f"moto server (own process), SSM reads throttled to {RATE:g}/s (token bucket, "
            "ThrottlingException beyond it), botocore standard retries, 8 attempts"
        )
        baseline = measure(aws, 10_000, packed=False, baseline=None)
        measure(aws, 10_000, packed=True, baseline=baseline)
        measure(aws, 100_000, packed=True, baseline=baseline * 10)
        measure(aws, 100_000, packed=True, baseline=baseline * 10, readers=4)
        print(
            "  (for 100,000 sites the baseline is 10x the 10,000-site one: one parameter per "
            "site cannot hold them in the standard tier)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
