"""The local stack's status page part: rendered into a directory, served under /status/ on
loopback (files only), and a failed render keeps the previous page."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.messages import message, records
from webchecker.local.embedded.postgres import EmbeddedPostgres
from webchecker.local.status_site import StatusSite
from webchecker.store.batch import CheckStore
from webchecker.store.database import Database
from webchecker.store.migrations import RetentionSettings, migrate

pytestmark = pytest.mark.postgres


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"] or "", error.read()


def test_renders_and_serves_the_page_json_and_badges(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    migrate(database)
    CheckStore(database, retention=RetentionSettings()).write(records([message(site_id="shop")]))

    with StatusSite(tmp_path / "status", lambda: database_url) as site:
        status, kind, body = get(site.url)
        assert (status, kind) == (200, "text/html")
        assert b"<h3" in body
        status, kind, body = get(site.url + "status.json")
        assert (status, kind) == (200, "application/json")
        assert [s["site_id"] for s in json.loads(body)["sites"]] == ["shop"]
        assert get(site.url + "badges/shop.svg")[1] == "image/svg+xml"
        root = site.url.removesuffix("status/")
        assert get(root)[2] == get(site.url)[2]  # / redirects to /status/
        assert get(root + "etc/passwd")[0] == 404
        parts = urlsplit(site.url)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        connection.request("GET", "/status/../../../../etc/passwd")
        assert connection.getresponse().status == 404
        connection.close()
        assert get(site.url + "badges/")[0] == 404  # no directory listing


def test_a_failed_render_keeps_the_previous_page(
    embedded_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    with StatusSite(tmp_path / "status", embedded_postgres.url) as site:
        before = (tmp_path / "status" / "index.html").read_bytes()
        embedded_postgres.stop()  # the database goes away between two ticks

        assert site.render() is False
        assert (tmp_path / "status" / "index.html").read_bytes() == before
        assert get(site.url)[0] == 200  # still served
