"""Hostile input through the handler: one clear 4xx naming the field, nothing written,
never a 5xx; the other sites are untouched."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from tests.fixtures.aws import put_parameters, snapshot_parameters
from tests.integration.api.conftest import SITES_PATH, ApiClient

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

pytestmark = pytest.mark.postgres

URL = '"url": "https://x.example/"'


class TestHostileSiteBodies:
    @pytest.mark.parametrize(
        "body",
        [
            "{" + URL + ', "interval": NaN}',
            "{" + URL + ', "interval": Infinity}',
            "{" + URL + ', "timeout": -Infinity}',
        ],
    )
    def test_non_finite_numbers_are_400(
        self, api: ApiClient, ssm_client: SSMClient, body: str
    ) -> None:
        reply = api("add-site", body=body)
        assert reply.status == 400, reply.text
        assert snapshot_parameters(ssm_client, SITES_PATH) == {}

    @pytest.mark.parametrize(
        ("site", "field"),
        [
            ({"url": "https://x.example/\u0000"}, "url"),
            ({"url": "https://x.example/", "headers": {"X": "a\r\nInjected: 1"}}, "headers"),
            ({"url": "https://x.example/", "headers": {"X\ud800": "a"}}, "headers"),
            ({"url": "https://x.example/", "id": "x" * 10_000}, "id"),
            ({"url": "https://" + "a" * 5000 + ".example/"}, "url"),
            ({"url": "https://x.example/", "interval": 1e308}, "interval"),
            ({"url": "https://x.example/", "interval": "60"}, "interval"),
            ({"url": "https://x.example/", "enabled": "yes"}, "enabled"),
            ({"url": "https://x.example/", "tags": "prod"}, "tags"),
            ({"url": "https://x.example/", "expected_status": [[200]]}, "expected_status"),
            ({"url": 5}, "url"),
        ],
    )
    def test_wrong_values_are_422_naming_the_field(
        self, api: ApiClient, ssm_client: SSMClient, site: dict[str, object], field: str
    ) -> None:
        put_parameters(ssm_client, {f"{SITES_PATH}/kept": {"url": "https://kept.example/"}})
        before = snapshot_parameters(ssm_client, SITES_PATH)
        reply = api("add-site", body=json.dumps(site))
        assert reply.status == 422, reply.text
        assert reply.json["errors"][0]["field"] == field
        assert snapshot_parameters(ssm_client, SITES_PATH) == before
        assert api("get-site", path="/v1/sites/kept").status == 200


class TestHostileQueriesAndPaths:
    @pytest.mark.parametrize(
        ("name", "changes"),
        [
            ("site-checks", {"query": {"limit": "Infinity"}}),
            ("site-checks", {"query": {"since": "\u0000"}}),
            ("site-checks", {"query": {"cursor": "%ff" * 300}}),
            ("incidents", {"query": {"site_id": "a" * 1000}}),
            ("report", {"query": {"since": "1e400d"}}),
            ("get-site", {"path": "/v1/sites/" + "a" * 300}),
        ],
    )
    def test_are_4xx_never_5xx(self, api: ApiClient, name: str, changes: dict[str, object]) -> None:
        reply = api(name, **changes)  # type: ignore[arg-type]
        assert 400 <= reply.status < 500, reply.text
        assert reply.content_type == "application/problem+json"
