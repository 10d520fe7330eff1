"""Hands shards of due sites to the checker function: concurrent asynchronous invokes.

An ``Invoker`` sends one encoded payload; ``LambdaInvoker`` does it with
``Invoke(InvocationType="Event")``, which returns as soon as Lambda has queued the event,
so a thread pool of a few dozen invokes hands 100,000 sites (2,000 shards) over in seconds.

Failure policy: every shard is attempted; botocore retries throttling with backoff. A shard
that still fails is counted, logged with its site ids and returned in ``failed`` (the
scheduler turns it into a metric), not raised: raising would make Lambda retry the whole
tick and check every site that was already handed over a second time, while the next tick
is only a minute away. When *no* shard could be sent (wrong function name, missing
permission) nothing would be duplicated by a retry and the problem is configuration: the
scheduler then raises ``FanoutError`` (after its metrics) so the invocation fails visibly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from webchecker.exceptions import FanoutError
from webchecker.schedule.plan import Shard

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

logger = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 32


class Invoker(Protocol):
    """Sends one payload to the checker; raises ``FanoutError`` when it was not accepted."""

    def __call__(self, payload: bytes) -> None: ...


def new_lambda_client(concurrency: int = DEFAULT_CONCURRENCY) -> LambdaClient:
    # One pooled connection per worker thread, else urllib3 discards and reconnects.
    config = Config(
        max_pool_connections=max(concurrency, 10),
        retries={"mode": "standard", "max_attempts": 5},
    )
    client: LambdaClient = boto3.client("lambda", config=config)
    return client


class LambdaInvoker:
    """Asynchronous invokes of one function with a shared (thread-safe) boto3 client."""

    def __init__(self, function_name: str, *, client: LambdaClient | None = None) -> None:
        self.function_name = function_name
        self.client = client if client is not None else new_lambda_client()

    def __call__(self, payload: bytes) -> None:
        try:
            response = self.client.invoke(
                FunctionName=self.function_name, InvocationType="Event", Payload=payload
            )
        except (ClientError, BotoCoreError) as error:
            raise FanoutError(f"invoke of {self.function_name} failed: {error}") from error
        status = response.get("StatusCode")
        if status != 202:
            raise FanoutError(f"invoke of {self.function_name} answered {status}, expected 202")


@dataclass(frozen=True, kw_only=True)
class FailedShard:
    site_ids: tuple[str, ...]
    reason: str


@dataclass(frozen=True, kw_only=True)
class FanoutResult:
    sent: int
    failed: tuple[FailedShard, ...]


def fan_out(
    shards: Sequence[Shard], invoker: Invoker, *, concurrency: int = DEFAULT_CONCURRENCY
) -> FanoutResult:
    """Invokes once per shard, ``concurrency`` at a time; never raises (see the module doc)."""
    if not shards:
        return FanoutResult(sent=0, failed=())

    def send(shard: Shard) -> FailedShard | None:
        try:
            invoker(shard.payload)
        except Exception as error:  # any failure of one shard must not stop the others
            return FailedShard(site_ids=shard.site_ids, reason=str(error))
        return None

    workers = max(1, min(concurrency, len(shards)))
    if workers == 1:
        outcomes = [send(shard) for shard in shards]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fanout") as pool:
            outcomes = list(pool.map(send, shards))
    failed = tuple(outcome for outcome in outcomes if outcome is not None)
    for shard in failed:
        logger.error(
            "invoke failed: %d sites not handed to the checker: %s",
            len(shard.site_ids),
            shard.reason,
            extra={"site_ids": list(shard.site_ids), "reason": shard.reason},
        )
    return FanoutResult(sent=len(shards) - len(failed), failed=failed)
