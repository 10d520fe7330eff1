"""Alert latency in the local pipeline: from the failing check's ``checked_at`` to the alert
reaching a webhook subscribed to the SNS topic.

The local stack (``webchecker local``: scheduler, checkers, Kafka, poller, writer,
PostgreSQL, the notifier after every tick, moto's SNS delivering to a webhook sink) with
``SITES`` sites that pass for two ticks, then all fail: each opens an incident at its
second failed check (the default threshold), and as they go down in the same tick one
summary notice lists them all. Ticks are ``TICK_SECONDS`` of real time apart. Per site:
the notice's arrival at the sink - checked_at of the check that reached the threshold.
Goal: under one tick plus 5 s (the notifier runs once per tick, right after the
scheduler). Uses DATABASE_URL if set, else the stack's embedded PostgreSQL.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from webchecker.local.stack import LocalSettings, LocalStack

SITES = 20
TICK_SECONDS = 10.0
TICKS = 6


def main() -> int:
    state_dir = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    settings = LocalSettings(
        state_dir=state_dir,
        seed=False,
        persist_sites=False,
        public_sites=False,
        demo_port=None,
        tick_seconds=TICK_SECONDS,
        checker_workers=2,
    )
    try:
        with LocalStack(settings) as stack:
            return run(stack)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


def run(stack: LocalStack) -> int:
    assert stack.demo is not None
    demo = stack.demo.url("").rstrip("/")
    client = stack.ssm()
    ids = [f"latency-{n:02d}" for n in range(SITES)]
    for site_id in ids:
        client.put_parameter(
            Name=f"{stack.settings.sites_path}/{site_id}",
            Value=f'{{"url": "{demo}/healthy"}}',
            Type="String",
            Overwrite=True,
        )
    next_tick = time.monotonic()
    for number in range(TICKS):
        if number == 2:  # from the third tick on, every site fails
            for site_id in ids:
                client.put_parameter(
                    Name=f"{stack.settings.sites_path}/{site_id}",
                    Value=f'{{"url": "{demo}/failing"}}',
                    Type="String",
                    Overwrite=True,
                )
        time.sleep(max(0.0, next_tick - time.monotonic()))
        next_tick += TICK_SECONDS
        stack.tick()
    stack.drain(60)
    stack.wait_for_writer(timeout=60)
    # each site's notice: its incident.opened, or the summary that lists it (10 or more
    # sites going down in one tick are summarized)
    received: dict[str, datetime] = {}
    for entry in stack.alerts.received():
        alert, at = entry["alert"], datetime.fromisoformat(entry["received_at"])
        if alert["type"] == "incident.opened":
            received[alert["site_id"]] = at
        elif alert["type"] == "incidents.summary" and alert["of"] == "incident.opened":
            received.update(dict.fromkeys(alert["site_ids"], at))
    with stack.database.transaction() as connection:
        rows = connection.run(
            "SELECT site_id, checked_at FROM webchecker.checks WHERE NOT ok"
            " ORDER BY site_id, scheduled_at"
        )
    threshold: dict[str, datetime] = {}
    seen: dict[str, int] = {}
    for site_id, checked_at in rows:
        seen[site_id] = seen.get(site_id, 0) + 1
        if seen[site_id] == 2:
            threshold[site_id] = checked_at
    latencies = sorted(
        (received[site] - threshold[site]).total_seconds() for site in received if site in threshold
    )
    if len(latencies) != SITES:
        print(f"only {len(latencies)} of {SITES} incident.opened alerts arrived")
        return 1
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    notices = len(stack.alerts.received())
    print(f"{SITES} sites down at once, ticks {TICK_SECONDS:g} s apart, {notices} notice(s)")
    print("from the check that reached the threshold to the webhook sink:")
    print(f"p50 {p50:.2f} s, p99 {p99:.2f} s, max {latencies[-1]:.2f} s")
    goal = TICK_SECONDS + 5
    print(f"goal: p99 under one tick plus 5 s ({goal:g} s):", "met" if p99 < goal else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
