"""The API through the local HTTP server with a real HTTP client (httpx), on loopback."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.fixtures.aws import snapshot_parameters
from tests.integration.api.conftest import SITES_PATH
from webchecker.api.app import Api
from webchecker.local.api_server import ApiServer, request_event, response_parts

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

pytestmark = pytest.mark.postgres


@pytest.fixture
def server(api_env: dict[str, str]) -> Iterator[str]:
    api = Api.from_env()
    with ApiServer(api.handle) as running:
        yield running.url
    api.services.close()


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as client:
        yield client


def test_sites_round_trip_over_http(http: httpx.Client, ssm_client: object) -> None:
    created = http.post(
        "/v1/sites", json={"id": "web", "url": "https://web.example/", "tags": ["prod"]}
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/v1/sites/web"
    assert created.json()["tags"] == ["prod"]
    etag = created.headers["etag"]
    patched = http.patch("/v1/sites/web", json={"interval": 300}, headers={"If-Match": etag})
    assert patched.status_code == 200
    assert patched.json()["interval"] == 300
    assert http.get("/v1/sites", params={"limit": 1}).json()["sites"][0]["id"] == "web"
    assert http.get("/v1/sites/web/status").json()["state"] == "unknown"
    assert http.get("/v1/sites/web/checks").json() == {"checks": [], "next_cursor": None}
    assert http.delete("/v1/sites/web").status_code == 204
    assert snapshot_parameters(ssm_client, SITES_PATH) == {}  # type: ignore[arg-type]


def test_results_and_management_over_http(http: httpx.Client, sns_client: SNSClient) -> None:
    assert http.get("/v1/report", params={"since": "1h"}).json() == {"sites": []}
    assert http.get("/v1/incidents", params={"state": "open"}).json()["incidents"] == []
    window = http.post(
        "/v1/maintenance",
        json={"starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T01:00:00Z"},
    )
    assert window.status_code == 201
    assert http.delete(window.headers["location"]).status_code == 204
    subscribed = http.post(
        "/v1/subscriptions", json={"protocol": "email", "endpoint": "a@b.example"}
    )
    assert subscribed.status_code == 201
    assert [s["endpoint"] for s in http.get("/v1/subscriptions").json()["subscriptions"]] == [
        "a@b.example"
    ]
    assert http.delete(subscribed.headers["location"]).status_code == 204


def test_errors_over_http(http: httpx.Client) -> None:
    bad = http.post("/v1/sites", content=b"{nope", headers={"content-type": "application/json"})
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    not_utf8 = http.post(
        "/v1/sites", content=b"\xff\xfe", headers={"content-type": "application/json"}
    )
    assert not_utf8.status_code == 400
    assert http.get("/nowhere").status_code == 404
    wrong = http.delete("/v1/sites")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET, POST"
    head = http.head("/v1/sites")
    assert head.status_code == 405
    assert head.content == b""
    invalid = http.get("/v1/sites", params={"limit": "0"})
    assert invalid.status_code == 422
    assert invalid.json()["errors"] == [
        {"field": "limit", "message": "Input should be greater than or equal to 1"}
    ]
    assert http.get("/v1/openapi.json").json()["info"]["title"] == "Webchecker API"


def test_request_event_is_api_gateways_shape() -> None:
    event = request_event(
        "post",
        "/v1/sites?tag=a&tag=b&empty=",
        [("Host", "127.0.0.1:8781"), ("X-Two", "1"), ("x-two", "2"), ("Cookie", "a=1; b=2")],
        b"\xff",
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/v1/sites"
    assert event["rawQueryString"] == "tag=a&tag=b&empty="
    assert event["queryStringParameters"] == {"tag": "a,b", "empty": ""}
    assert event["headers"] == {"host": "127.0.0.1:8781", "x-two": "1,2"}
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff"
    assert "body" not in request_event("GET", "/", [], b"")


def test_response_parts_decode_base64_and_cookies() -> None:
    status, headers, body = response_parts(
        {"statusCode": 201, "headers": {"A": "1"}, "cookies": ["c=1"], "isBase64Encoded": True,
         "body": base64.b64encode(b"\x00\x01").decode()}
    )  # fmt: skip
    assert (status, body) == (201, b"\x00\x01")
    assert headers == [("A", "1"), ("Set-Cookie", "c=1")]
