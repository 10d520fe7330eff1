"""When a site is due, and how the due sites are cut into checker payloads.

Pure functions, no AWS: the tick comes from the triggering event (never the wall clock, so
a delayed or replayed event schedules the same sites), every site gets a stable offset from
a hash of its id, and the due sites are packed into shards that respect both the per-invoke
site count and the asynchronous-invoke payload limit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from webchecker.exceptions import InvalidEvent
from webchecker.sites import Site

# Lambda's limit on an asynchronous invoke's payload (issue 4: 256 KB).
DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024
DEFAULT_CHECKS_PER_INVOCATION = 50

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def tick_from_event(event: Mapping[str, Any]) -> datetime:
    """The tick of a scheduler event: its ``time``, in UTC, floored to the minute.

    Both supported triggers carry the time under ``time``: an EventBridge scheduled event
    (``"time": "2026-11-27T19:48:00Z"``), and an EventBridge Scheduler target whose input is
    ``{"time": "<aws.scheduler.scheduled-time>"}``.
    """
    raw = event.get("time") if isinstance(event, Mapping) else None
    if not isinstance(raw, str) or not raw:
        raise InvalidEvent('scheduler event: "time" is missing (expected an RFC 3339 time)')
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidEvent(f"scheduler event: time {raw[:64]!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise InvalidEvent(f"scheduler event: time {raw[:64]!r} has no time zone (expected ...Z)")
    try:
        return moment.astimezone(UTC).replace(second=0, microsecond=0)
    except OverflowError:  # 0001-01-01T00:00:00+01:00: before year 1 in UTC
        raise InvalidEvent(f"scheduler event: time {raw[:64]!r} is out of range in UTC") from None


def tick_minute(tick: datetime) -> int:
    """Whole minutes since the Unix epoch."""
    return int((tick - _EPOCH).total_seconds()) // 60


def site_offset(site_id: str) -> int:
    """A stable offset for a site id: the first 8 bytes of its SHA-256, as an integer.

    Unlike ``hash()``, this is the same in every process, Python version and release.
    """
    return int.from_bytes(hashlib.sha256(site_id.encode("utf-8")).digest()[:8], "big")


def is_due(site: Site, tick: datetime) -> bool:
    """``(tick_minute + offset) % (interval / 60) == 0``; a disabled site is never due."""
    if not site.enabled:
        return False
    period = max(site.interval // 60, 1)
    return (tick_minute(tick) + site_offset(site.id)) % period == 0


def due_sites(sites: Iterable[Site], tick: datetime) -> list[Site]:
    return [site for site in sites if is_due(site, tick)]


def group_by_timeout(sites: Iterable[Site]) -> list[Site]:
    """The sites ordered by timeout (stable: the order is kept among equal timeouts).

    A checker invocation lasts as long as its slowest check, and a site that never answers
    holds it for its whole timeout; packed in this order, sites with a 60 s timeout share
    shards with each other and never hold a shard of 10-second sites for 60 s.
    """
    return sorted(sites, key=lambda site: site.timeout)


def format_tick(tick: datetime) -> str:
    """RFC 3339 UTC with ``Z``, as in the fan-out payload's ``scheduled_at``."""
    return tick.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, kw_only=True)
class Shard:
    """One checker payload, already encoded (its size is exactly what is sent)."""

    site_ids: tuple[str, ...]
    payload: bytes


@dataclass(frozen=True, kw_only=True)
class OversizedSite:
    """A site whose payload alone exceeds the limit: reported and never sent."""

    site_id: str
    size: int


@dataclass(frozen=True, kw_only=True)
class ShardPlan:
    shards: tuple[Shard, ...]
    oversized: tuple[OversizedSite, ...]


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def plan_shards(
    sites: Sequence[Site],
    scheduled_at: str,
    *,
    max_sites: int = DEFAULT_CHECKS_PER_INVOCATION,
    max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    slow_seconds: Callable[[str], float] | None = None,
) -> ShardPlan:
    """Packs sites, in order, into payloads ``{"scheduled_at", "sites"}``.

    Each payload holds at most ``max_sites`` sites and at most ``max_bytes`` bytes of
    compact JSON, however large the sites are; a site that cannot fit even alone is
    returned in ``oversized`` instead of being sent. With ``slow_seconds`` (how long a site
    held its recent checks), each shard lists its slowest sites first, so the checker
    starts them first; which sites share a shard does not depend on it.
    """
    if max_sites < 1:
        raise ValueError("max_sites must be at least 1")
    # The payload is assembled from pre-encoded parts so its size is known exactly:
    # head + site + "," + site + ... + tail, byte-identical to json.dumps of the dict.
    head = _dumps({"scheduled_at": scheduled_at, "sites": []})[: -len(b"]}")]
    tail = b"]}"
    envelope = len(head) + len(tail)

    shards: list[Shard] = []
    oversized: list[OversizedSite] = []
    ids: list[str] = []
    parts: list[bytes] = []
    size = envelope

    def close() -> None:
        nonlocal size
        if parts:
            order: Sequence[int] = range(len(ids))
            if slow_seconds is not None:  # stable: equal (and unknown) sites keep their order
                order = sorted(order, key=lambda i: -slow_seconds(ids[i]))
            shards.append(
                Shard(
                    site_ids=tuple(ids[i] for i in order),
                    payload=head + b",".join(parts[i] for i in order) + tail,
                )
            )
        ids.clear()
        parts.clear()
        size = envelope

    for site in sites:
        encoded = _dumps(site.to_dict())
        if envelope + len(encoded) > max_bytes:
            oversized.append(OversizedSite(site_id=site.id, size=envelope + len(encoded)))
            continue
        extra = len(encoded) + (1 if parts else 0)
        if len(parts) >= max_sites or size + extra > max_bytes:
            close()
            extra = len(encoded)
        ids.append(site.id)
        parts.append(encoded)
        size += extra
    close()
    return ShardPlan(shards=tuple(shards), oversized=tuple(oversized))
