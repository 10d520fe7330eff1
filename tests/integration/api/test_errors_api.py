"""Errors through the handler: problem+json, 400/404/405, no trace or secret; the document."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.fixtures.lambda_context import FakeLambdaContext, cold_start
from tests.integration.api.conftest import ApiClient, api_event
from webchecker.local.embedded.network import free_port

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[3]


def test_openapi_document_is_served_and_committed(api: ApiClient) -> None:
    reply = api("openapi")
    assert reply.status == 200
    assert reply.content_type == "application/json"
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert reply.json == committed, "docs/openapi.json is stale: run `make openapi`"
    paths = committed["paths"]
    assert set(paths) == {
        "/v1/sites", "/v1/sites/{site_id}", "/v1/sites/{site_id}/status",
        "/v1/sites/{site_id}/checks", "/v1/report", "/v1/incidents", "/v1/maintenance",
        "/v1/maintenance/{window_id}", "/v1/subscriptions", "/v1/subscriptions/{subscription_id}",
    }  # fmt: skip
    assert set(paths["/v1/sites/{site_id}"]) == {"get", "put", "patch", "delete"}
    error = paths["/v1/sites/{site_id}"]["put"]["responses"]["422"]["content"]
    assert list(error) == ["application/problem+json"]


def test_body_that_is_not_json_is_400(api: ApiClient) -> None:
    reply = api("not-json")
    assert reply.status == 400
    assert reply.content_type == "application/problem+json"
    assert reply.json == {
        "type": "about:blank", "title": "Bad Request", "status": 400,
        "detail": "the request body is not valid JSON",
    }  # fmt: skip


def test_unknown_path_is_404_and_unknown_method_405_with_allow(api: ApiClient) -> None:
    missing = api("unknown-path")
    assert missing.status == 404
    assert missing.content_type == "application/problem+json"
    assert missing.json["status"] == 404
    wrong = api("unknown-method")
    assert wrong.status == 405
    assert wrong.headers["Allow"] == "GET, POST"
    assert wrong.json["title"] == "Method Not Allowed"
    nested = api("list-sites", method="POST", path="/v1/sites/x/status")
    assert nested.status == 405
    assert nested.headers["Allow"] == "GET"


@pytest.mark.parametrize(
    "body",
    ['"a string"', "[1, 2]", "null", "12", '{"a": ' * 2000 + "1" + "}" * 2000],
)
def test_other_json_bodies_are_400_or_422_never_500(api: ApiClient, body: str) -> None:
    reply = api("add-site", body=body)
    assert reply.status in (400, 422), reply.text
    assert reply.content_type == "application/problem+json"


def test_body_in_base64_is_decoded_and_invalid_utf8_is_400(api: ApiClient) -> None:
    encoded = base64.b64encode(b'{"url": "https://b64.example/"}').decode()
    created = api.module.lambda_handler(
        {**api_event("add-site"), "body": encoded, "isBase64Encoded": True}, FakeLambdaContext()
    )
    assert created["statusCode"] == 201, created
    assert json.loads(created["body"])["id"] == "b64.example"
    garbage = base64.b64encode(b"\xff\xfe{").decode()
    refused = api.module.lambda_handler(
        {**api_event("add-site"), "body": garbage, "isBase64Encoded": True}, FakeLambdaContext()
    )
    assert refused["statusCode"] == 400
    assert "Traceback" not in refused["body"]


def test_database_down_is_503_without_a_trace_or_the_password(
    api_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "hunter2-db-password"
    port = free_port("127.0.0.1")
    monkeypatch.setenv("DATABASE_URL", f"postgresql://webchecker:{secret}@127.0.0.1:{port}/wc")
    monkeypatch.setenv("DB_TIMEOUT", "2")
    client = ApiClient(cold_start("api"))
    reply = client("incidents")
    assert reply.status == 503
    assert reply.content_type == "application/problem+json"
    assert secret not in reply.text
    assert "Traceback" not in reply.text
    assert str(port) not in reply.text


@pytest.mark.parametrize(
    "content_type", ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded"]
)
def test_a_body_not_sent_as_json_is_415(api: ApiClient, content_type: str) -> None:
    reply = api("add-site", headers={"Content-Type": content_type})
    assert reply.status == 415
    assert reply.content_type == "application/problem+json"
    assert "application/json" in reply.json["detail"]
    # an unknown route stays 404/405 whatever the body
    assert api("add-site", path="/v1/nowhere", headers={"Content-Type": content_type}).status == 404
