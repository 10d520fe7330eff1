"""Which sites were slow lately, told back by the checkers, so each shard starts them first.

A checker invocation lasts until its last check ends. A site that never answers holds it
for its whole timeout after its start: started last in a paced shard, it adds that timeout
to the invocation (bench_realistic run 18: 8.4 s of a ~45 s invocation). A checker
container remembers its own slow sites, but at scale (about 125 shards a minute on as many
containers) a shard rarely returns to the container that learned it. So every checker
invocation sends the sites it found slow to a queue (``SLOW_SITES_QUEUE_URL``, SQS), and the
scheduler, one warm container ticking every minute, reads the queue at each tick and puts
each shard's known slow sites first. Shard membership never changes: only the order inside
a shard does.

A report is one small JSON message: ``{"v": 1, "slow": {"<site id>": seconds, ...}}``.
Hints are advisory: a message of any other shape is logged and dropped, an unreachable
queue only leaves the order to the timeouts, and a hint expires when no checker repeated
it for ``HINT_TTL_SECONDS``. A cold scheduler container starts empty and learns from the
reports still in the queue (kept five minutes).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

REPORT_VERSION = 1
#: At most this many sites per report, the slowest: a message stays a few kilobytes.
MAX_REPORTED = 256
#: A hint no checker repeated for this long is forgotten: a little over the longest interval
#: (a day), so a daily site is still known at its next check. A site that is fast again
#: keeps its early start until then, which costs nothing.
HINT_TTL_SECONDS = 25 * 3600.0
#: The scheduler's memory: enough for every slow site of 100,000 (bench: ~5% are slow).
MAX_HINTS = 50_000
#: Reading the queue may take this long per tick at most; the rest waits for the next one.
MAX_DRAIN_SECONDS = 5.0
_MAX_SITE_ID = 512  # longer is no site id (sites.py caps ids far below)
#: botocore's defaults (60 s to connect, 60 s to read, retried) could hold a checker whose
#: subnet has no route to SQS for minutes after its results were delivered, until its
#: Timeout, and a timed-out invocation is retried: its sites would be checked twice. A hint
#: is not worth more than a few seconds.
CLIENT_CONFIG = Config(
    connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 2}
)


def encode_report(slow: Mapping[str, float]) -> str:
    """The message a checker sends: its slowest sites (at most ``MAX_REPORTED``)."""
    slowest = sorted(slow.items(), key=lambda item: -item[1])[:MAX_REPORTED]
    return json.dumps(
        {"v": REPORT_VERSION, "slow": {site: round(seconds, 2) for site, seconds in slowest}},
        separators=(",", ":"),
    )


def parse_report(body: object) -> dict[str, float]:
    """The slow sites of one message; ``ValueError`` naming what is wrong with it."""
    if not isinstance(body, str):
        raise ValueError(f"report: expected a JSON text, got {type(body).__name__}")
    try:
        report = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise ValueError(f"report: not JSON ({str(error)[:100]})") from None
    if not isinstance(report, dict):
        raise ValueError(f"report: expected a JSON object, got {type(report).__name__}")
    if report.get("v") != REPORT_VERSION:
        raise ValueError(f"report: version {str(report.get('v'))[:20]!r}, expected 1")
    slow = report.get("slow")
    if not isinstance(slow, dict):
        raise ValueError("report: slow must be an object of site id to seconds")
    parsed: dict[str, float] = {}
    for site, seconds in slow.items():
        if len(site) > _MAX_SITE_ID:
            raise ValueError(f"report: site id {site[:40]!r}... is over {_MAX_SITE_ID} chars")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ValueError(f"report: seconds of {site[:40]!r} must be a number")
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"report: seconds of {site[:40]!r} must be finite and >= 0")
        parsed[site] = float(seconds)
    return parsed


class SlowSiteHints:
    """The scheduler's memory of slow sites: seconds held, forgotten after a TTL.

    Module state of the scheduler's container; a cold container starts empty and learns
    within a tick (every shard of the previous minute reported).
    """

    __slots__ = ("_held", "limit", "ttl")

    def __init__(self, *, limit: int = MAX_HINTS, ttl: float = HINT_TTL_SECONDS) -> None:
        self.limit = limit
        self.ttl = ttl
        self._held: dict[str, tuple[float, float]] = {}  # site id -> (seconds, heard at)

    def __len__(self) -> int:
        return len(self._held)

    def learn(self, slow: Mapping[str, float], now: float) -> None:
        for site, seconds in slow.items():
            self._held.pop(site, None)  # re-inserted last: the newest entry
            self._held[site] = (seconds, now)
        while len(self._held) > self.limit:
            del self._held[next(iter(self._held))]

    def forget_older_than(self, now: float) -> None:
        # Insertion order is the order heard: the stale ones are at the front.
        while self._held:
            site, (_, heard) = next(iter(self._held.items()))
            if now - heard < self.ttl:
                break
            del self._held[site]

    def seconds(self, site_id: str) -> float:
        """How long the site held its check lately (0 when not known as slow)."""
        held = self._held.get(site_id)
        return 0.0 if held is None else held[0]


class SlowSitesQueue:
    """The SQS queue both ends share: checkers ``send``, the scheduler ``drain``s it."""

    def __init__(self, queue_url: str, *, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> SQSClient:
        if self._client is None:  # created on first use: a checker may never report
            import boto3

            self._client = boto3.client("sqs", config=CLIENT_CONFIG)
        return self._client

    def send(self, slow: Mapping[str, float]) -> bool:
        """Sends a report; never raises (a lost hint costs only a later start)."""
        if not slow:
            return True
        try:
            self.client.send_message(QueueUrl=self.queue_url, MessageBody=encode_report(slow))
        except (BotoCoreError, ClientError) as error:
            logger.warning("slow sites not reported to the scheduler: %s", error)
            return False
        return True

    def drain(
        self,
        learn: Callable[[Mapping[str, float]], None],
        *,
        max_seconds: float = MAX_DRAIN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> int:
        """Hands every report in the queue to ``learn`` and deletes it; returns the count.

        Never raises: a queue that cannot be read leaves the hints as they were.
        """
        deadline = clock() + max_seconds
        received = 0
        while clock() < deadline:
            try:
                # Short polling: an answer may miss messages on SQS servers it did not
                # sample; those are read at a later tick, still fresh (no tick waits).
                answer = self.client.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
                )
            except (BotoCoreError, ClientError) as error:
                logger.warning("slow-site reports not read: %s", error)
                break
            messages = answer.get("Messages", [])
            if not messages:
                break
            received += len(messages)
            for message in messages:
                try:
                    learn(parse_report(message.get("Body")))
                except ValueError as error:
                    logger.warning("slow-site report dropped: %s", error)
            self._delete(messages)
        return received

    def _delete(self, messages: Iterable[Mapping[str, Any]]) -> None:
        entries = [
            {"Id": str(n), "ReceiptHandle": message["ReceiptHandle"]}
            for n, message in enumerate(messages)
        ]
        try:
            self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)  # type: ignore[arg-type]
        except (BotoCoreError, ClientError) as error:  # read again later: harmless
            logger.warning("slow-site reports not deleted: %s", error)
