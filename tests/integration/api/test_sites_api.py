"""/v1/sites through the handler: the CLI's model and Parameter Store, versions, secrets."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.fixtures.aws import put_parameters, snapshot_parameters
from tests.integration.api.conftest import SITES_PATH, ApiClient
from webchecker.sites import Site

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

pytestmark = pytest.mark.postgres


def test_add_derives_the_id_fills_defaults_and_writes_one_parameter(
    api: ApiClient, ssm_client: SSMClient
) -> None:
    reply = api("add-site")
    assert reply.status == 201, reply.text
    assert reply.headers["Location"] == "/v1/sites/127.0.0.1"
    assert reply.headers["ETag"] == '"1"'
    site = reply.json
    assert site["id"] == "127.0.0.1"
    assert site["interval"] == 120
    assert site["timeout"] == 10.0
    assert site["method"] == "GET"
    assert site["expected_status"] == ["200-399"]
    assert site["enabled"] is True
    stored = snapshot_parameters(ssm_client, SITES_PATH)
    assert list(stored) == [f"{SITES_PATH}/127.0.0.1"]
    kind, value, _ = stored[f"{SITES_PATH}/127.0.0.1"]
    assert kind == "String"
    # what was given is stored (defaults are not pinned), and the scheduler's model reads it
    assert json.loads(value) == {"url": "http://127.0.0.1:8080/health", "interval": 120,
                                 "regex": "ok", "id": "127.0.0.1"}  # fmt: skip
    assert Site.from_dict(json.loads(value)).to_dict() == site


def test_get_list_and_pages(api: ApiClient, ssm_client: SSMClient) -> None:
    put_parameters(
        ssm_client,
        {
            f"{SITES_PATH}/b": {"url": "https://b.example/"},
            f"{SITES_PATH}/team/pack": [
                {"id": "a", "url": "https://a.example/"},
                {"id": "c", "url": "https://c.example/"},
            ],
            f"{SITES_PATH}/broken": "{not json",
        },
    )
    first = api("list-sites")
    assert first.status == 200
    assert [s["id"] for s in first.json["sites"]] == ["a", "b"]
    second = api("list-sites", query={"limit": "2", "cursor": first.json["next_cursor"]})
    assert [s["id"] for s in second.json["sites"]] == ["c"]
    assert second.json["next_cursor"] is None
    one = api("get-site", path="/v1/sites/c")
    assert one.status == 200
    assert one.json["url"] == "https://c.example/"
    assert one.json["timeout"] == 10.0
    assert api("get-site", path="/v1/sites/nope").status == 404


def test_put_patch_delete_inside_an_array_keep_the_other_sites(
    api: ApiClient, ssm_client: SSMClient
) -> None:
    name = f"{SITES_PATH}/team/pack"
    put_parameters(
        ssm_client,
        {
            name: [
                {"id": "a", "url": "https://a.example/"},
                {"id": "c", "url": "https://c.example/"},
            ]
        },
    )
    put = api("replace-site", path="/v1/sites/a")
    assert put.status == 200, put.text
    assert put.json["url"] == "http://127.0.0.1:8080/ready"
    assert put.json["timeout"] == 5.0
    patched = api("patch-site", path="/v1/sites/a", body={"timeout": None, "enabled": False})
    assert patched.status == 200, patched.text
    assert patched.json["timeout"] == 10.0
    assert patched.json["enabled"] is False
    stored = json.loads(snapshot_parameters(ssm_client, SITES_PATH)[name][1])
    assert stored == [
        {"id": "a", "url": "http://127.0.0.1:8080/ready", "enabled": False},
        {"id": "c", "url": "https://c.example/"},
    ]
    assert api("delete-site", path="/v1/sites/a").status == 204
    assert json.loads(snapshot_parameters(ssm_client, SITES_PATH)[name][1]) == [
        {"id": "c", "url": "https://c.example/"}
    ]
    assert api("delete-site", path="/v1/sites/a").status == 404
    assert api("delete-site", path="/v1/sites/c").status == 204
    assert snapshot_parameters(ssm_client, SITES_PATH) == {}


def test_conflicts_and_versions(api: ApiClient, ssm_client: SSMClient) -> None:
    assert api("add-site").status == 201
    again = api("add-site")
    assert again.status == 409
    assert "already exists" in again.json["detail"]
    stale = api("patch-site", path="/v1/sites/127.0.0.1", headers={"If-Match": '"7"'})
    assert stale.status == 412
    assert stale.content_type == "application/problem+json"
    current = api("get-site", path="/v1/sites/127.0.0.1")
    ok = api(
        "patch-site", path="/v1/sites/127.0.0.1", headers={"If-Match": current.headers["ETag"]}
    )
    assert ok.status == 200
    assert ok.headers["ETag"] == '"2"'
    assert api("delete-site", path="/v1/sites/127.0.0.1", headers={"If-Match": '"1"'}).status == 412
    assert snapshot_parameters(ssm_client, SITES_PATH)[f"{SITES_PATH}/127.0.0.1"][2] == 2


def test_secure_string_headers_are_masked_and_kept(api: ApiClient, ssm_client: SSMClient) -> None:
    secret = "Bearer s3cr3t-t0ken"
    body = {
        "id": "private",
        "url": "https://private.example/",
        "headers": {"Authorization": secret, "X-Env": "prod"},
    }
    created = api("add-site", query={"secure": "true"}, body=body)
    assert created.status == 201, created.text
    assert created.json["headers"] == {"Authorization": "***", "X-Env": "***"}
    shown = api("get-site", path="/v1/sites/private")
    assert shown.json["headers"] == {"Authorization": "***", "X-Env": "***"}
    back = {**shown.json, "headers": {"Authorization": "***", "X-Env": "staging"}, "timeout": 3}
    put = api("replace-site", path="/v1/sites/private", body=back)
    assert put.status == 200, put.text
    kind, value, _ = snapshot_parameters(ssm_client, SITES_PATH)[f"{SITES_PATH}/private"]
    assert kind == "SecureString"
    assert json.loads(value)["headers"] == {"Authorization": secret, "X-Env": "staging"}
    unknown = api("patch-site", path="/v1/sites/private", body={"headers": {"X-New": "***"}})
    assert unknown.status == 422
    assert unknown.json["errors"][0]["field"] == "headers"
    listed = api("list-sites")
    assert all(secret not in reply.text for reply in api.replies)
    assert listed.json["sites"][0]["headers"]["Authorization"] == "***"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"url": "https://x.example/", "interval": 61}, "interval", "multiple of 60"),
        ({"url": "https://x.example/", "timeout": 90}, "timeout", "at most 60"),
        ({"url": "ftp://x.example/"}, "url", "http or https"),
        ({"id": "x", "url": "https://x.example/", "intervall": 60}, "site", "unknown key"),
        ({"id": "Bad Id", "url": "https://x.example/"}, "id", "not a valid id"),
        ({"id": "x", "url": "https://x.example/", "regex": "(a)\\1"}, "regex", "RE2"),
        ({"id": "x", "url": "https://x.example/", "body": "\ud800"}, "body", "surrogate"),
        ({"id": "x", "url": "https://x.example/", "body": "x" * 9000}, "site", "8192"),
        ({"interval": 60}, "url", "required"),
        ([{"url": "https://x.example/"}], "body", "JSON object"),
    ],
)
def test_invalid_sites_are_422_naming_the_field_and_write_nothing(
    api: ApiClient, ssm_client: SSMClient, body: object, field: str, words: str
) -> None:
    reply = api("add-site", body=body)
    assert reply.status == 422, reply.text
    assert reply.content_type == "application/problem+json"
    problem = reply.json
    assert problem["status"] == 422
    assert problem["title"] == "Unprocessable Content"
    assert problem["errors"][0]["field"] == field
    assert words in problem["errors"][0]["message"]
    assert snapshot_parameters(ssm_client, SITES_PATH) == {}


def test_put_cannot_rename_and_patch_cannot_change_the_id(api: ApiClient) -> None:
    assert api("add-site").status == 201
    renamed = api(
        "replace-site", path="/v1/sites/127.0.0.1", body={"id": "other", "url": "https://x/"}
    )
    assert renamed.status == 422
    assert renamed.json["errors"][0]["field"] == "id"
    patched = api("patch-site", path="/v1/sites/127.0.0.1", body={"id": "other"})
    assert patched.status == 422
    assert patched.json["errors"][0]["field"] == "id"
    assert api("replace-site", path="/v1/sites/missing").status == 404


def test_with_a_warm_listing_a_site_added_elsewhere_is_still_a_409_and_readable(
    api_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, ssm_client: SSMClient
) -> None:
    from tests.fixtures.lambda_context import cold_start

    monkeypatch.setenv("SITES_CACHE_SECONDS", "300")
    cached = ApiClient(cold_start("api"))
    assert cached("list-sites").json["sites"] == []  # the listing is now cached (empty)
    put_parameters(ssm_client, {f"{SITES_PATH}/127.0.0.1": {"url": "https://cli.example/"}})
    taken = cached("add-site")  # the id derived from the event's URL: 127.0.0.1
    assert taken.status == 409, taken.text
    assert "already exists" in taken.json["detail"]
    # a single site is read afresh, so the CLI's addition is visible at once
    assert cached("get-site").json["url"] == "https://cli.example/"
    assert snapshot_parameters(ssm_client, SITES_PATH)[f"{SITES_PATH}/127.0.0.1"][2] == 1
