"""Scheduler ticks: the EventBridge schedule of the local stack, and its foreground loop.

Every ``tick_seconds`` the scheduler is invoked with an EventBridge scheduled event whose
``time`` is a simulated minute that advances one minute per tick, starting from now floored
to the minute: with ``--tick 5`` every 5 seconds is "a minute" to the scheduler, so a site
with interval 60 is due at every tick, one with interval 300 at every fifth. (``checked_at``
stays the real clock.)
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from webchecker.exceptions import WebcheckerError
from webchecker.local.live import LiveView
from webchecker.local.settings import STACK_NAME
from webchecker.schedule.plan import format_tick


def scheduled_event(tick: datetime, *, region: str) -> dict[str, Any]:
    """The EventBridge scheduled event whose ``time`` is ``tick``."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": format_tick(tick),
        "region": region,
        "resources": [f"arn:aws:events:{region}:000000000000:rule/{STACK_NAME}-every-minute"],
        "detail": {},
    }


class SimulatedClock:
    """Scheduler ticks one minute apart, starting at ``start`` (default: now, floored)."""

    def __init__(self, start: datetime | None = None) -> None:
        now = start or datetime.now(UTC)
        self.start = now.replace(second=0, microsecond=0)
        self.ticks = 0

    def next(self) -> datetime:
        tick = self.start + timedelta(minutes=self.ticks)
        self.ticks += 1
        return tick


class Pipeline(Protocol):
    """What the tick loop drives and waits for (the ``LocalStack``)."""

    def tick(self, moment: datetime | None = None) -> dict[str, Any]: ...

    def drain(self, timeout: float) -> bool: ...

    def wait_for_writer(self, *, timeout: float) -> bool: ...

    def save_sites(self) -> None: ...


Render = Callable[[LiveView, Mapping[str, Any]], None]


class Ticker:
    """Invokes the scheduler once per tick until a duration ends or ``stop`` is set."""

    def __init__(self, pipeline: Pipeline, *, tick_seconds: float, duration: float | None) -> None:
        self.pipeline = pipeline
        self.tick_seconds = tick_seconds
        self.duration = duration

    def run(self, view: LiveView, render: Render, *, stop: threading.Event | None = None) -> None:
        """Ticks until ``duration`` or ``stop``.

        On a terminal the table is refreshed every second; otherwise it is printed once per
        tick, when the tick's checks are stored (or when the next tick is due).
        """
        stop = stop or threading.Event()
        pipeline = self.pipeline
        started = time.monotonic()
        deadline = started + self.duration if self.duration else None
        next_tick = started
        last_summary: dict[str, Any] = {}
        complete = True  # the plain view has printed the latest tick's stored results
        while not stop.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if now >= next_tick:
                try:
                    last_summary = pipeline.tick()
                except WebcheckerError as error:
                    view.message(f"tick failed: {error}")
                next_tick += self.tick_seconds
                pipeline.save_sites()
                complete = False
            if not view.tty and not complete:
                until = min(next_tick, deadline or next_tick)
                complete = self.settle(until=until, stop=stop)
                if complete or time.monotonic() >= next_tick:
                    render(view, last_summary)  # at the latest when the next tick is due
            if view.tty:
                render(view, last_summary)
            wake = min(next_tick, deadline or next_tick, time.monotonic() + 1.0)
            stop.wait(max(0.0, wake - time.monotonic()))
        # A last table with the checks that were still in flight (waiting at most 15 s).
        settled = self.settle(until=time.monotonic() + 15.0, stop=threading.Event())
        if view.tty or not complete or not settled:
            render(view, last_summary)
        view.release()

    def settle(self, *, until: float, stop: threading.Event) -> bool:
        """Waits (until the monotonic time ``until``, or ``stop``) for every checker
        invocation to finish and the writer to store what they published; True if so."""
        while not stop.is_set():
            remaining = until - time.monotonic()
            if remaining <= 0:
                return False
            slice_ = min(0.5, remaining)
            if not self.pipeline.drain(slice_):
                continue
            if self.pipeline.wait_for_writer(timeout=slice_):
                return True
        return False
