"""Fan-out: concurrency, and what happens when invokes fail."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from tests.fixtures.aws import unreachable_lambda_client
from webchecker.exceptions import FanoutError
from webchecker.schedule.fanout import LambdaInvoker, fan_out
from webchecker.schedule.plan import Shard


def shards(count: int) -> list[Shard]:
    return [Shard(site_ids=(f"s{i}",), payload=json.dumps({"n": i}).encode()) for i in range(count)]


def test_invokes_really_run_concurrently() -> None:
    # Four invokes must be in flight at once to get past the barrier; sequential sending
    # would break it (after a generous timeout) and fail every shard.
    barrier = threading.Barrier(4, timeout=10)
    sent: list[bytes] = []
    lock = threading.Lock()

    def invoker(payload: bytes) -> None:
        barrier.wait()
        with lock:
            sent.append(payload)

    result = fan_out(shards(12), invoker, concurrency=4)
    assert (result.sent, result.failed) == (12, ())
    assert sorted(sent) == sorted(s.payload for s in shards(12))


def test_a_failed_shard_is_counted_and_logged_and_the_others_are_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent: list[int] = []
    lock = threading.Lock()

    def invoker(payload: bytes) -> None:
        n = json.loads(payload)["n"]
        if n in (3, 7):
            raise FanoutError(f"throttled {n}")
        with lock:
            sent.append(n)

    with caplog.at_level(logging.ERROR, logger="webchecker.schedule.fanout"):
        result = fan_out(shards(10), invoker, concurrency=3)
    assert result.sent == 8
    assert sorted(sent) == [0, 1, 2, 4, 5, 6, 8, 9]
    assert [(f.site_ids, f.reason) for f in result.failed] == [
        (("s3",), "throttled 3"),
        (("s7",), "throttled 7"),
    ]
    logged = [r for r in caplog.records if r.name == "webchecker.schedule.fanout"]
    assert [r.site_ids for r in logged] == [["s3"], ["s7"]]  # type: ignore[attr-defined]


def test_nothing_to_send_sends_nothing() -> None:
    def invoker(payload: bytes) -> None:
        raise AssertionError("must not be called")

    assert fan_out([], invoker).sent == 0


def test_lambda_invoker_turns_a_connection_failure_into_fanout_error() -> None:
    # A loopback port with nothing listening: botocore's own error, converted where raised.
    invoker = LambdaInvoker("webchecker-checker", client=unreachable_lambda_client())
    with pytest.raises(FanoutError, match="invoke of webchecker-checker failed"):
        invoker(b"{}")
    result = fan_out(shards(3), invoker, concurrency=2)
    assert (result.sent, len(result.failed)) == (0, 3)
