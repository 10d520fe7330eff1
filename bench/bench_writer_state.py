"""Writer throughput with the state machine (site states, incidents, alert outbox) on and off.

10,000 sites, 5,000-row batches (each batch holds 5,000 different sites; a site gets a
check every second batch, a new tick every 10,000 rows); one site in 50 fails for three
ticks out of six, so incidents open and resolve (and some flap) while the bench runs.
Both variants write the same batches through ``CheckStore.write`` (validation, direct
COPY, rollups, rejects; the state machine on one side only) into their own schema on
the same server, interleaved, after a warm-up that creates every site's state row.

Goal: the state machine costs at most 20% of the writer's rows/s (on >= 0.80x off). Uses
DATABASE_URL if set, else an embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from scratch_database import scratch_database
from webchecker.results import CheckResult
from webchecker.store.batch import CheckStore
from webchecker.store.database import Database, DatabaseSettings
from webchecker.store.migrations import migrate
from webchecker.store.msk import KafkaRecord

SITES = 10_000
BATCH = 5_000
WARM_UP = 4  # batches: every site's row exists, and the tables are warm
MEASURED = 20  # batches per variant, interleaved (medians: the machine is shared)
START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)


def checks() -> Iterator[bytes]:
    """An endless stream of messages: round robin over the sites, a tick per round."""
    tick = 0
    while True:
        scheduled = START + timedelta(minutes=tick)
        failing_tick = (tick // 3) % 2 == 1
        for site in range(SITES):
            fails = failing_tick and site % 50 == 0
            checked = scheduled + timedelta(milliseconds=site % 1000)
            yield CheckResult(
                check_id=str(uuid.uuid4()), site_id=f"site-{site:05d}",
                url=f"https://site-{site}.example/", region="eu-west-1",
                scheduled_at=scheduled, checked_at=checked,
                response_time_ms=None if fails else float(site % 900),
                status_code=None if fails else 200, ok=not fails,
                error="timeout" if fails else None,
                error_detail="no response within 10 s" if fails else None,
                regex_matched=None, dns_ms=1.5, connect_ms=10.25, tls_ms=20.5, ttfb_ms=80.0,
                tls_cert_expires_at=START + timedelta(days=60),
                tags=("bench", f"group-{site % 7}"),
            ).to_json()  # fmt: skip
        tick += 1


def batches(stream: Iterator[bytes], first_offset: int) -> Iterator[list[KafkaRecord]]:
    offset = first_offset
    while True:
        batch = [
            KafkaRecord(topic="webchecker.checks", partition=0, offset=offset + i, value=value)
            for i, value in zip(range(BATCH), stream, strict=False)
        ]
        offset += BATCH
        yield batch


def main() -> int:
    with scratch_database("state") as url:
        return run(url)


def run(url: str) -> int:
    stores = {}
    for variant in ("off", "on"):
        database = Database(DatabaseSettings.from_url(url, schema=f"bench_{variant}"))
        migrate(database)
        stores[variant] = CheckStore(database, track_state=variant == "on")
    # the same batches for both: one stream, each batch written by both stores
    source = batches(checks(), 0)
    for _ in range(WARM_UP):
        batch = next(source)
        for store in stores.values():
            assert store.write(batch).inserted == BATCH
    seconds: dict[str, list[float]] = {"off": [], "on": []}
    for round_ in range(MEASURED):
        batch = next(source)
        order = ("off", "on") if round_ % 2 == 0 else ("on", "off")
        for variant in order:
            started = time.perf_counter()
            outcome = stores[variant].write(batch)
            seconds[variant].append(time.perf_counter() - started)
            assert outcome.inserted == BATCH, outcome
    on_db = stores["on"].database
    connection = on_db.connection()
    (states,) = connection.run("SELECT count(*) FROM bench_on.site_state")[0]
    (incidents,) = connection.run("SELECT count(*) FROM bench_on.incidents")[0]
    kinds = dict(connection.run("SELECT type, count(*) FROM bench_on.alerts GROUP BY 1"))
    assert states == SITES, states
    off, on = (BATCH / statistics.median(seconds[variant]) for variant in ("off", "on"))
    print(f"server: {connection.run('SHOW server_version')[0][0]}")
    print(f"{'batch':>6}  {'sites':>6}  {'off rows/s':>11}  {'on rows/s':>10}  {'on/off':>7}")
    print(f"{BATCH:>6}  {SITES:>6}  {off:>11,.0f}  {on:>10,.0f}  {on / off:>6.2f}x")
    print(
        f"medians of {MEASURED} interleaved batches after {WARM_UP} warm-up batches each;"
        f" state machine: {states:,} site states, {incidents} incidents,"
        f" alerts {json.dumps(kinds, sort_keys=True)}"
    )
    print("goal: the state machine costs at most 20% (on >= 0.80x off):",
          "met" if on / off >= 0.8 else "NOT met")  # fmt: skip
    for store in stores.values():
        store.database.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
