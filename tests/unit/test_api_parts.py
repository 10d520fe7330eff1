"""The API's pure parts: cursors, problems, the route table, the site schema, SNS filters."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webchecker.api.models import site_fields, site_input_schema
from webchecker.api.pagination import decode_cursor, encode_cursor
from webchecker.api.problems import RouteTable, problem
from webchecker.api.subscriptions import (
    SubscriptionFilter,
    describe,
    filter_from_policy,
    filter_policy,
)
from webchecker.exceptions import InvalidRequest
from webchecker.sites import Site


@given(st.datetimes(timezones=st.just(UTC)), st.uuids())
def test_a_cursor_decodes_to_what_was_encoded(at: datetime, identifier: uuid.UUID) -> None:
    cursor = encode_cursor(at.isoformat(), str(identifier))
    assert decode_cursor(cursor, str, str) == [at.isoformat(), str(identifier)]


@given(st.text(max_size=600))
def test_any_text_is_a_cursor_or_a_422_naming_cursor(text: str) -> None:
    try:
        decoded = decode_cursor(text, str, str)
    except InvalidRequest as error:
        assert error.field == "cursor"
    else:
        assert all(isinstance(item, str) for item in decoded)


@pytest.mark.parametrize("position", [[1, "a"], ["a"], {"a": 1}, ["a", None], "x"])
def test_a_cursor_of_the_wrong_shape_is_refused(position: object) -> None:
    cursor = encode_cursor(*position) if isinstance(position, list) else encode_cursor(position)
    with pytest.raises(InvalidRequest, match="cursor"):
        decode_cursor(cursor, str, str)


def test_problem_is_rfc_9457_and_bounded() -> None:
    response = problem(422, "x" * 5000, errors=[{"field": "a", "message": "b"}])
    body = json.loads(response.body or "")
    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    assert body["title"] == "Unprocessable Content"
    assert len(body["detail"]) == 1000
    assert body["errors"] == [{"field": "a", "message": "b"}]
    assert "errors" not in json.loads(problem(404, "gone").body or "")


def test_route_table_tells_405_from_404() -> None:
    table = RouteTable([("GET", "/v1/sites"), ("POST", "/v1/sites"), ("GET", "/v1/sites/{id}")])
    assert table.allowed("/v1/sites") == {"GET", "POST"}
    assert table.allowed("/v1/sites/abc") == {"GET"}
    assert table.allowed("/v1/sites/abc/def") == set()
    assert table.allowed("/v1/sitesx") == set()


def test_the_site_schema_describes_every_site_field() -> None:
    schema = site_input_schema()
    assert set(schema["properties"]) == set(site_fields()) == set(Site.__dataclass_fields__)
    assert schema["required"] == ["url"]
    assert schema["additionalProperties"] is False
    patch = site_input_schema(patch=True)
    assert "required" not in patch
    assert {"type": "null"} in patch["properties"]["interval"]["anyOf"]
    for name, field_schema in schema["properties"].items():
        assert field_schema, f"{name} has no schema: add it to models._SITE_FIELD_SCHEMAS"


def test_filter_policy_round_trip() -> None:
    wanted = SubscriptionFilter(site_ids=["a"], tags=None, types=["incident.opened"])
    policy = filter_policy(wanted)
    assert policy == {"site_id": ["a"], "type": ["incident.opened"]}
    assert filter_from_policy(json.dumps(policy)) == wanted
    assert filter_policy(SubscriptionFilter()) == {}
    assert filter_from_policy("{not json") == SubscriptionFilter()
    assert filter_from_policy('{"site_id": ["Not Valid"]}') == SubscriptionFilter()


def test_pending_subscriptions_have_no_id_until_confirmed() -> None:
    listed = describe("PendingConfirmation", {"Protocol": "email", "Endpoint": "a@b.example"})
    assert listed.id is None
    assert listed.status == "pending_confirmation"
    created = describe(
        "arn:aws:sns:eu-west-1:123456789012:alerts:0b4c",
        {"Protocol": "https", "Endpoint": "https://x/", "PendingConfirmation": "true"},
    )
    assert created.id == "0b4c"
    assert created.status == "pending_confirmation"
    assert describe("arn:aws:sns:r:1:t:ff", {"PendingConfirmation": "false"}).status == "confirmed"
