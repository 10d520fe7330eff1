"""The writer on real PostgreSQL with hostile records (issue 9 items 4, 5, 9, 10, 11): no
record's content ever fails its batch; each bad record becomes one reject with a short
reason, and the good records of the same batch land."""

from __future__ import annotations

import base64
import itertools
import json
import logging
import random
import string
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.test_writer import invoke, load_app, rows
from tests.messages import message, msk_event, records
from webchecker.store.batch import MAX_REASON
from webchecker.store.database import Database

pytestmark = pytest.mark.postgres


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[ModuleType]:
    module = load_app(monkeypatch, database_url)
    yield module
    module.WRITER.close()


def rejects(database: Database) -> dict[int, dict[str, Any]]:
    found = rows(database, 'SELECT * FROM webchecker.check_rejects ORDER BY "offset"')
    return {row["offset"]: row for row in found}


def landed(database: Database) -> list[str]:
    found = rows(database, "SELECT check_id::text AS id FROM webchecker.checks ORDER BY 1")
    return [row["id"] for row in found]


def test_huge_latencies_are_rejects_and_the_rollups_stay_right(
    app: ModuleType, database: Database
) -> None:
    """Item 4: two 1e308 latencies of one site and hour overflowed fsum or the rollup
    upsert (22003), failing the batch on every redelivery."""
    good = message(response_time_ms=250.0)
    huge = [message(response_time_ms=value) for value in (1e308, 1e308, 10**400, 86_400_001)]
    huge_phase = message(dns_ms=1.7e308)
    event = msk_event(records([*huge, huge_phase, good]))

    assert invoke(app, event) == {"received": 6, "inserted": 1, "duplicates": 0, "rejected": 5}
    assert invoke(app, event) == {"received": 6, "inserted": 0, "duplicates": 1, "rejected": 5}
    reasons = {offset: row["reason"] for offset, row in rejects(database).items()}
    assert all(reasons[i].startswith("response_time_ms: must be a finite number") for i in range(4))
    assert reasons[4].startswith("dns_ms:")
    assert landed(database) == [good["check_id"]]
    (hour,) = rows(database, "SELECT checks, latency_sum_ms FROM webchecker.checks_hourly")
    assert hour == {"checks": 1, "latency_sum_ms": 250.0}


def test_a_long_site_id_is_a_reject_not_a_failed_copy(app: ModuleType, database: Database) -> None:
    """Item 5: "index row requires 10024 bytes" during the COPY failed the batch."""
    noise = "".join(random.Random(5).choices(string.ascii_letters + string.digits, k=10_000))
    good = message()
    bad = [message(site_id=noise), message(site_id="x" * 64), message(region="r" * 65)]
    bad.append(message(url="https://example.com/" + "x" * 3000))

    result = invoke(app, msk_event(records([*bad, good])))

    assert result == {"received": 5, "inserted": 1, "duplicates": 0, "rejected": 4}
    reasons = [row["reason"] for row in rejects(database).values()]
    assert reasons[0].startswith("site_id: must be at most 63 characters")
    assert reasons[1].startswith("site_id: must be at most 63 characters")
    assert reasons[2].startswith("region: must be at most 64")
    assert reasons[3].startswith("url: must be at most 2048")
    assert all(len(reason) <= MAX_REASON for reason in reasons)
    assert landed(database) == [good["check_id"]]


def test_malformed_msk_fields_are_rejects_of_their_record(
    app: ModuleType, database: Database
) -> None:
    """Item 9: these raised out of the writer."""
    good = message()
    event = msk_event(records([message(), message(), message(), good]))
    sent = event["records"]["webchecker.checks-0"]
    sent[0]["value"] = "\ud800 not base64"
    sent[1]["timestamp"] = "abc"
    sent[2]["headers"] = [{"h": [1, 999]}]

    result = invoke(app, event)

    assert result == {"received": 4, "inserted": 1, "duplicates": 0, "rejected": 3}
    found = rejects(database)
    assert found[0]["raw"] == b"\\ud800 not base64"
    assert found[0]["reason"].startswith("value is not valid base64")
    assert found[1]["reason"].startswith("timestamp is not a number")
    assert found[1]["raw"] == base64.b64decode(sent[1]["value"])  # the value as it came
    assert "header" in found[2]["reason"]
    assert landed(database) == [good["check_id"]]


def test_reject_reasons_and_log_lines_are_bounded(
    app: ModuleType, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Item 10: a 10 MB "schema" was stored as a 10 MB reason, and logged."""
    huge = "x" * 10_000_000
    values = [message(schema=huge), message(site_id=huge), message(check_id=huge)]
    values += [message(error_detail=huge, ok=False, error="other"), message(url=huge)]
    values += [message(schema="\x00\ud800" * 100), message(region={"k": [huge]})]
    values += [b"\xff" * 1_000_000, b'{"schema": 1, "check_id": "' + b"a" * 5_000_000]
    values += [message(schema=1) for _ in range(25)]  # valid, to compare
    bad_count = 9
    more = [message(ok="no") for _ in range(30)]  # many rejects: the log stays short

    with caplog.at_level(logging.WARNING, logger="webchecker"):
        result = invoke(app, msk_event(records([*values, *more])))

    assert result["rejected"] == bad_count + len(more)
    assert result["inserted"] == 25
    for row in rejects(database).values():
        assert len(row["reason"]) <= MAX_REASON
        row["reason"].encode()
        assert "\x00" not in row["reason"]
    assert len(caplog.text) < 50_000
    assert "more rejects in this batch" in caplog.text


def test_url_userinfo_is_stored_as_stars(app: ModuleType, database: Database) -> None:
    """Item 11 at the writer: a message from a checker before the rule is redacted."""
    sent = message(url="http://alice:s3cret@example.com:8080/health?x=@y")
    assert invoke(app, msk_event(records([sent])))["inserted"] == 1
    (row,) = rows(database, "SELECT url FROM webchecker.checks")
    assert row["url"] == "http://***@example.com:8080/health?x=@y"


# -- property: any JSON value through the real writer -----------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()  # NaN, infinities, subnormals, 1e308
    | st.text(max_size=30)  # lone surrogates included
    | st.sampled_from(["x" * 5000, "\ud800", "\x00", "2026-11-27T12:00:00Z", "dns"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
FIELDS = list(message())
_OFFSETS = itertools.count(1)


@st.composite
def hostile_values(draw: st.DrawFn) -> bytes | None:
    """A message with some fields replaced by arbitrary JSON, or any JSON, or any bytes."""
    kind = draw(st.sampled_from(["mutated", "mutated", "json", "bytes", "null"]))
    if kind == "null":
        return None
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        value: Any = draw(json_values)
    else:
        value = message(response_time_ms=draw(st.floats(0, 86_400_000)))
        for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
            value[name] = draw(json_values)
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(hostile_values(), min_size=1, max_size=12))
def test_no_record_content_ever_fails_a_batch(
    app: ModuleType, database: Database, batch: list[bytes | None]
) -> None:
    good = message()
    # offsets continue across examples: each example's rejects are new rows
    event = msk_event(records([*batch, good], first_offset=next(_OFFSETS) * 100))

    result = invoke(app, event)  # must not raise

    assert result["received"] == len(batch) + 1
    assert result["inserted"] + result["duplicates"] + result["rejected"] == len(batch) + 1
    assert good["check_id"] in landed(database)
