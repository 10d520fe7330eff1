"""The local stack's status page part: rendered into a directory and served under /status/
on an API server's address (files only), and a failed render keeps the previous page."""

from __future__ import annotations

import contextlib
import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.messages import message, records
from webchecker.local.api_server import ApiServer
from webchecker.local.embedded.postgres import EmbeddedPostgres
from webchecker.local.status_site import StatusSite
from webchecker.store.batch import CheckStore
from webchecker.store.database import Database
from webchecker.store.migrations import RetentionSettings, migrate

pytestmark = pytest.mark.postgres


def get(url: str, method: str = "GET") -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"] or "", error.read()


@contextlib.contextmanager
def serving(site: StatusSite) -> Iterator[str]:
    """An API server whose only route is the status page (the REST API would answer 404)."""

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return site.response(event) or {"statusCode": 404, "body": "the REST API"}

    with ApiServer(handle) as server:
        yield server.url


@pytest.fixture
def stored(database: Database) -> Database:
    migrate(database)
    CheckStore(database, retention=RetentionSettings()).write(records([message(site_id="shop")]))
    return database


def test_renders_and_serves_the_page_json_and_badges(
    stored: Database, database_url: str, tmp_path: Path
) -> None:
    with StatusSite(tmp_path / "status", lambda: database_url) as site, serving(site) as base:
        page = f"{base}/status/"
        status, kind, body = get(page)
        assert (status, kind) == (200, "text/html; charset=utf-8")
        assert b"<h3" in body
        status, kind, body = get(page + "status.json")
        assert (status, kind) == (200, "application/json")
        assert [s["site_id"] for s in json.loads(body)["sites"]] == ["shop"]
        assert get(page + "badges/shop.svg")[1] == "image/svg+xml"
        assert get(f"{base}/status")[2] == body_of(page)  # redirected to /status/
        assert get(page + "nothing.html")[0] == 404
        assert get(page + "badges/")[0] == 404  # no directory listing
        assert get(page, method="POST")[0] == 405
        assert get(f"{base}/v1/sites")[2] == b"the REST API"  # other paths pass through
        parts = urlsplit(base)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        connection.request("GET", "/status/../../../../etc/passwd")
        assert connection.getresponse().status == 404
        connection.close()


def body_of(url: str) -> bytes:
    return get(url)[2]


def test_the_url_is_the_api_address_once_it_has_one(tmp_path: Path) -> None:
    base = {"url": ""}
    site = StatusSite(tmp_path / "status", lambda: "", base_url=lambda: base["url"])
    assert site.url == "(not started)"
    base["url"] = "http://127.0.0.1:8781"
    assert site.url == "http://127.0.0.1:8781/status/"


def test_a_failed_render_keeps_the_previous_page(
    embedded_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    with StatusSite(tmp_path / "status", embedded_postgres.url) as site:
        before = (tmp_path / "status" / "index.html").read_bytes()
        embedded_postgres.stop()  # the database goes away between two ticks

        assert site.render() is False
        assert (tmp_path / "status" / "index.html").read_bytes() == before
        with serving(site) as base:
            assert get(f"{base}/status/")[2] == before  # still served


def test_ticks_render_in_the_background_at_the_second_then_every_nth(
    stored: Database, database_url: str, tmp_path: Path
) -> None:
    """The statuspage function's own schedule (every 5 minutes in AWS), not every tick."""
    with StatusSite(tmp_path / "status", lambda: database_url, every_ticks=3) as site:
        index = tmp_path / "status" / "index.html"
        started = [site.tick() and site.wait(30) for _ in range(8)]
        assert started == [False, True, False, False, True, False, False, True]
        assert b"shop" in index.read_bytes()


def test_a_render_leaves_unchanged_files_alone(
    stored: Database, database_url: str, tmp_path: Path
) -> None:
    with StatusSite(tmp_path / "status", lambda: database_url) as site:
        badge = next((tmp_path / "status").rglob("*.svg"))
        badge_inode = badge.stat().st_ino  # an (atomic) rewrite would replace the inode
        (tmp_path / "status" / "status.json").write_text("stale")

        assert site.render()
        assert json.loads((tmp_path / "status" / "status.json").read_text())["sites"]
        assert badge.stat().st_ino == badge_inode
