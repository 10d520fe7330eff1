"""Property tests over every parser of outside input (issue 9): arbitrary JSON with
non-finite numbers, lone surrogates, control characters, huge strings and numbers. Only
the documented error types escape, and each error message is short, valid text."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from webchecker.check.checker import CheckerEvent
from webchecker.exceptions import InvalidEvent, InvalidMessage, SiteError
from webchecker.results import CheckResult
from webchecker.schedule.plan import tick_from_event
from webchecker.sites import Site, load_sites
from webchecker.store.batch import BatchValidator, fast_copy_row
from webchecker.store.msk import KafkaRecord, MskEvent

# every code point, surrogates included (hypothesis leaves them out by default)
any_char = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, categories=None)
texts = st.text(any_char, max_size=20) | st.sampled_from(
    ["\ud800", "a\udfffb", "\x00", "\x0b", "\x1b[31m", "x" * 3000, "1e309", "NaN"]
)
numbers = (
    st.integers()
    | st.integers(min_value=10**300, max_value=10**1000)
    | st.floats()  # NaN, infinities, subnormals
    | st.sampled_from([float("inf"), float("-inf"), float("nan"), 1e308, -0.0, 2**63])
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=10,
)
SITE_KEYS = list(Site.__dataclass_fields__)
site_like = st.fixed_dictionaries(
    {"id": st.just("site"), "url": st.just("https://example.com/")},
    optional={key: json_values for key in SITE_KEYS if key not in ("id", "url")},
)


def assert_short_text(message: str, limit: int = 1000) -> None:
    assert message
    assert len(message) <= limit, message[:200]
    message.encode()  # no lone surrogate: printable, loggable, storable


@settings(max_examples=200, deadline=None)
@given(st.one_of(json_values, site_like))
def test_the_site_model_raises_only_site_error(value: Any) -> None:
    try:
        site = Site.from_dict(value, default_id="fallback")
    except SiteError as error:
        assert_short_text(str(error))
        return
    # a valid site survives the trips it makes: JSON for the payload, UTF-8 for Lambda
    encoded = json.dumps(site.to_dict(), ensure_ascii=False, allow_nan=False).encode()
    assert Site.from_dict(json.loads(encoded)) == site


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(texts, json_values.map(json.dumps) | texts, max_size=5))
def test_load_sites_never_raises(parameters: dict[str, str]) -> None:
    catalog = load_sites(parameters)
    for entry in catalog.invalid:
        assert_short_text(entry.reason)


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"scheduled_at": texts | st.just("2026-01-05T12:34:00Z") | numbers},
            optional={"sites": st.lists(st.one_of(json_values, site_like), max_size=4)},
        ),
    )
)
def test_the_checker_payload_parser_raises_only_invalid_event(event: Any) -> None:
    try:
        parsed = CheckerEvent.from_dict(event)
    except InvalidEvent as error:
        assert_short_text(str(error))
        return
    assert len(parsed.sites) + len(parsed.invalid) == len(event["sites"])
    for _, reason in parsed.invalid:
        assert_short_text(reason)


@settings(max_examples=200, deadline=None)
@given(st.one_of(json_values, st.fixed_dictionaries({"time": texts | numbers})))
def test_the_scheduler_tick_parser_raises_only_invalid_event(event: Any) -> None:
    try:
        tick_from_event(event)
    except InvalidEvent as error:
        assert_short_text(str(error), 300)


def _encode(value: Any, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@settings(max_examples=200, deadline=None)
@given(json_values, st.booleans())
def test_the_message_parser_raises_only_invalid_message(value: Any, ascii_only: bool) -> None:
    raw = _encode(value, ascii_only)
    try:
        CheckResult.from_json(raw)
    except InvalidMessage as error:
        assert_short_text(str(error))
        assert fast_copy_row(raw) is None


@settings(max_examples=150, deadline=None)
@given(st.lists(st.dictionaries(texts, json_values, max_size=6), max_size=4))
def test_the_msk_event_parser_raises_only_invalid_event(raws: list[dict[str, Any]]) -> None:
    event = {"eventSource": "aws:kafka", "records": {"t-0": raws}}
    try:
        batch = MskEvent.from_dict(event)
    except InvalidEvent as error:
        assert_short_text(str(error))
        return
    validator = BatchValidator()
    lines = list(validator.copy_data(batch.records))
    assert validator.received == len(batch)
    for chunk in lines:
        chunk.decode()
    for reject in validator.rejects.values():
        assert_short_text(reject.reason, 500)


@settings(max_examples=150, deadline=None)
@given(
    st.fixed_dictionaries(
        {"topic": st.just("t"), "partition": st.just(0), "offset": st.integers(0, 10)},
        optional={
            "value": json_values,
            "key": json_values,
            "timestamp": json_values,
            "timestampType": json_values,
            "headers": json_values,
        },
    )
)
def test_a_record_with_a_position_is_never_an_invalid_event(raw: dict[str, Any]) -> None:
    record = KafkaRecord.from_dict(raw)  # anything else about it makes it a reject
    if record.value_error is not None:
        assert_short_text(record.value_error, 2000)
