"""The REST API as a part of the local stack: added over HTTP, checked by the pipeline,
read back over HTTP, from the URL the env file gives other terminals."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import put_sites, state_file, wait_rows
from webchecker.local import env_file
from webchecker.local.stack import LocalStack


def test_a_site_added_through_the_api_is_checked_and_its_checks_read_back(
    stack: LocalStack,
) -> None:
    url = env_file.read(state_file(stack, "env"))["WEBCHECKER_API_URL"]
    assert url == stack.rest_api.url
    assert url.startswith("http://127.0.0.1:")
    assert any(url in line for line in stack.banner())
    assert stack.demo is not None
    put_sites(stack, [])
    with httpx.Client(base_url=url, timeout=30) as http:
        created = http.post(
            "/v1/sites", json={"id": "api-e2e", "url": stack.demo.url("/healthy"), "tags": ["e2e"]}
        )
        assert created.status_code == 201, created.text
        assert [p["name"] for p in stack.export_sites()] == [f"{stack.settings.sites_path}/api-e2e"]
        assert stack.tick()["due"] == 1
        stored = wait_rows(stack, ["api-e2e"], 1)
        checks = http.get("/v1/sites/api-e2e/checks").json()["checks"]
        assert [c["check_id"] for c in checks] == [str(stored[0]["check_id"])]
        assert checks[0]["ok"] is True
        status = http.get("/v1/sites/api-e2e/status").json()
        assert status["last_check"]["check_id"] == checks[0]["check_id"]
        report = http.get("/v1/report", params={"site": "api-e2e"}).json()["sites"]
        assert report[0]["checks"] == 1
        assert http.delete("/v1/sites/api-e2e").status_code == 204
