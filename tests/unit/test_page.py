"""The status page's pure parts: settings, URLs without userinfo, incident minutes, the
rendered HTML (escaping, structure, nothing external, size) and badges."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.page_helpers import read_page
from webchecker.exceptions import ConfigurationError, StatusPageError
from webchecker.local.status_site import static_response
from webchecker.page.badge import badge_name, render_badge
from webchecker.page.document import render_json, status_document
from webchecker.page.html import render_html, render_html_bytes
from webchecker.page.model import (
    DAYS,
    WINDOWS,
    DayStatus,
    HourLatency,
    Incident,
    MaintenanceWindow,
    SiteStatus,
    StatusModel,
    incident_minutes,
    public_url,
)
from webchecker.page.publish import CHUNK, DirectoryPublisher, Published
from webchecker.page.settings import PageSettings
from webchecker.page.statuspage import HTML_TYPE as HTML
from webchecker.page.statuspage import JSON_TYPE, render_files
from webchecker.page.statuspage import SVG_TYPE as SVG

NOW = datetime(2026, 12, 2, 16, 30, tzinfo=UTC)
TODAY = NOW.date()
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p", "span",
    "time", "main", "section", "article", "div", "svg", "g", "path", "dl", "dt", "dd",
    "figure", "figcaption", "table", "caption", "thead", "tbody", "tr", "th", "td", "footer",
    "a",
}  # fmt: skip


def site(site_id: str = "shop", **overrides: Any) -> SiteStatus:
    days = tuple(
        DayStatus(
            date=TODAY - timedelta(days=DAYS - 1 - i),
            checks=1440,
            failures=i % 7,
            incident_minutes=float(i * 3 % 50) if i % 9 == 0 else 0.0,
            uptime=100.0 * (1440 - i % 7) / 1440,
        )
        for i in range(DAYS)
    )
    hourly = tuple(
        HourLatency(
            hour=NOW.replace(minute=0) - timedelta(hours=23 - i),
            p50_ms=80.0 + i,
            p95_ms=200.0 + 5 * i,
        )
        for i in range(24)
    )
    fields: dict[str, Any] = {
        "site_id": site_id,
        "url": f"https://{site_id}.example.com/",
        "tags": ("prod",),
        "state": "up",
        "since": NOW - timedelta(days=3),
        "uptime": {name: 99.95 for name, _ in WINDOWS},
        "days": days,
        "latency_p50_ms": 91.0,
        "latency_p95_ms": 250.0,
        "hourly": hourly,
        "incidents": (),
        "certificate_expires_at": NOW + timedelta(days=60),
        "last_checked_at": NOW,
    }
    fields.update(overrides)
    return SiteStatus(**fields)


def model(sites: list[SiteStatus], **overrides: Any) -> StatusModel:
    fields: dict[str, Any] = {
        "title": "Service status",
        "generated_at": NOW,
        "sites": tuple(sites),
        "incidents": (),
        "maintenance": (),
    }
    fields.update(overrides)
    return StatusModel(**fields)


def incident(site_id: str, opened: datetime, resolved: datetime | None, **fields: Any) -> Incident:
    values: dict[str, Any] = {
        "incident_id": "00000000-0000-0000-0000-000000000001",
        "site_id": site_id,
        "opened_at": opened,
        "resolved_at": resolved,
        "error": "status",
        "error_detail": "expected 200-399, got 503",
        "status_code": 503,
    }
    values.update(fields)
    return Incident(**values)


# -- settings -------------------------------------------------------------------------------


def test_settings_default_to_every_site() -> None:
    settings = PageSettings.from_env({})
    assert settings.selects_all
    assert settings.selects("anything", ())
    assert settings.title == "Service status"


def test_settings_select_by_id_or_tag() -> None:
    settings = PageSettings.from_env({"STATUS_PAGE_SITES": "a, b", "STATUS_PAGE_TAGS": "prod"})
    assert settings.site_ids == {"a", "b"}
    assert settings.selects("a", ())
    assert settings.selects("z", ("eu", "prod"))
    assert not settings.selects("z", ("eu",))


class TestHostileSettings:
    @pytest.mark.parametrize(
        ("variable", "value"),
        [
            ("STATUS_PAGE_SITES", "ok,Not Valid"),
            ("STATUS_PAGE_SITES", "a" * 64),
            ("STATUS_PAGE_SITES", "caf\u00e9"),
            ("STATUS_PAGE_SITES", "x\udcff"),
            ("STATUS_PAGE_TAGS", "prod,<script>"),
            ("STATUS_PAGE_TAGS", "t" * 33),
            ("STATUS_PAGE_TITLE", "x" * 101),
            ("STATUS_PAGE_TITLE", "bell\x07"),
            ("STATUS_PAGE_TITLE", "   "),
        ],
    )
    def test_bad_values_name_the_variable(self, variable: str, value: str) -> None:
        with pytest.raises(ConfigurationError, match=variable):
            PageSettings.from_env({variable: value})

    @given(st.text(max_size=200))
    def test_any_text_is_accepted_or_refused_with_a_configuration_error(self, text: str) -> None:
        for variable in ("STATUS_PAGE_SITES", "STATUS_PAGE_TAGS", "STATUS_PAGE_TITLE"):
            try:
                PageSettings.from_env({variable: text})
            except ConfigurationError as error:
                assert variable in str(error)


# -- URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@example.com/a?b#c", "https://example.com/a?b#c"),
        ("https://***@example.com/", "https://example.com/"),
        ("https://a@b@example.com:8443", "https://example.com:8443"),
        ("https://example.com/path@not-userinfo", "https://example.com/path@not-userinfo"),
        ("https://example.com/?q=a@b", "https://example.com/?q=a@b"),
        ("user:pw@host/x", "host/x"),
        ("", ""),
    ],
)
def test_public_url_drops_userinfo_only(url: str, shown: str) -> None:
    assert public_url(url) == shown


@given(
    st.sampled_from(["http", "https", "ftp"]),
    st.text(alphabet=st.characters(blacklist_characters="/?#"), min_size=1, max_size=20),
    st.text(max_size=30),
)
def test_public_url_never_keeps_a_password(scheme: str, password: str, rest: str) -> None:
    url = f"{scheme}://user:{password}@example.com/{rest}"
    shown = public_url(url)
    assert shown.startswith(f"{scheme}://example.com/")
    assert shown.endswith(rest)


@given(st.text(max_size=200))
def test_public_url_takes_any_text_and_keeps_nothing_before_an_at_in_the_authority(
    url: str,
) -> None:
    shown = public_url(url)
    authority = shown.partition("://")[2] if "://" in shown else shown
    for stop in "/?#":
        authority = authority.split(stop, 1)[0]
    assert "@" not in authority or "://" not in url


# -- incident minutes ----------------------------------------------------------------------


def test_incident_minutes_split_across_days_and_stop_now() -> None:
    days = [TODAY - timedelta(days=2), TODAY - timedelta(days=1), TODAY]
    start = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    spans = [
        incident("a", start, datetime(2026, 12, 1, 0, 30, tzinfo=UTC)),
        incident("a", datetime(2026, 12, 2, 16, 0, tzinfo=UTC), None),  # open: until NOW
        incident("a", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)),
    ]
    minutes = incident_minutes(spans, days, now=NOW)
    assert minutes == {days[0]: 60.0, days[1]: 30.0, days[2]: 30.0}


@given(
    st.lists(st.tuples(st.integers(0, 90 * 1440), st.integers(0, 5 * 1440) | st.none()), max_size=8)
)
def test_incident_minutes_add_up_to_the_clipped_durations(spans: list[tuple[int, Any]]) -> None:
    days = [TODAY - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
    first = datetime(days[0].year, days[0].month, days[0].day, tzinfo=UTC)
    built = [
        incident(
            "a",
            first - timedelta(days=1) + timedelta(minutes=offset),
            None
            if length is None
            else first - timedelta(days=1) + timedelta(minutes=offset + length),
        )
        for offset, length in spans
    ]
    minutes = incident_minutes(built, days, now=NOW)
    expected = sum(
        max(0.0, (min(i.resolved_at or NOW, NOW) - max(i.opened_at, first)).total_seconds() / 60)
        for i in built
    )
    assert sum(minutes.values()) == pytest.approx(expected)
    assert all(value >= 0 for value in minutes.values())


# -- HTML -----------------------------------------------------------------------------------


def test_page_has_headings_state_words_and_a_table_of_incidents() -> None:
    down = site(
        "api",
        state="down",
        since=NOW - timedelta(minutes=30),
        incidents=(incident("api", NOW - timedelta(minutes=30), None),),
    )
    page = render_html(model([site("shop"), down], incidents=down.incidents))
    reader = read_page(page)
    tags = [tag for tag, _ in reader.tags]
    assert tags.count("h1") == 1
    assert {article.heading for article in reader.articles} == {"shop", "api"}
    states = {article.heading: article.state for article in reader.articles}
    assert "Up" in states["shop"]
    assert "Down" in states["api"]
    assert 'scope="col"' in page
    assert "ongoing" in page
    assert "Major outage: 1 of 2 sites is down." in page
    # every chart has a text alternative
    for article in reader.articles:
        assert any(label.startswith("Last 90 days") for label in article.labels)
        assert any(
            label.startswith("Response time over the last 24 hours") for label in article.labels
        )


def test_page_loads_nothing_from_anywhere() -> None:
    page = render_html(model([site("shop"), site("api", tags=())]))
    reader = read_page(page)
    assert {tag for tag, _ in reader.tags} <= ALLOWED_TAGS
    for tag, attributes in reader.tags:
        assert "src" not in attributes
        assert not any(name.startswith("on") for name in attributes)
        if tag == "a":
            assert attributes["href"] == "status.json"  # a link, relative, never loaded
    assert "url(" not in page
    assert "@import" not in page
    assert "default-src 'none'" in page


def test_fifty_sites_with_ninety_days_weigh_under_200_kb() -> None:
    sites = [
        site(
            f"site-{i:02d}-example-com",
            tags=(f"team-{i % 5}",),
            incidents=tuple(
                incident(f"site-{i:02d}", NOW - timedelta(days=d, hours=3), NOW - timedelta(days=d))
                for d in (3, 17, 40)
            ),
        )
        for i in range(50)
    ]
    page = render_html(model(sites, incidents=tuple(x for s in sites for x in s.incidents)[:20]))
    assert len(page.encode()) < 200 * 1024


@settings(max_examples=60, deadline=None)
@given(
    st.text(max_size=60),
    st.lists(st.text(max_size=20), max_size=3),
    st.text(max_size=600),
    st.text(max_size=40),
)
def test_any_text_from_the_database_is_escaped(
    site_id: str, tags: list[str], detail: str, reason: str
) -> None:
    hostile = site(
        site_id,
        tags=tuple(tags),
        url=f"https://{site_id}/",
        incidents=(incident(site_id, NOW - timedelta(hours=1), None, error_detail=detail),),
    )
    window = MaintenanceWindow(
        window_id="w", site_ids=(site_id,), tags=tuple(tags), starts_at=NOW,
        ends_at=NOW + timedelta(hours=1), reason=reason,
    )  # fmt: skip
    page = render_html(model([hostile], incidents=hostile.incidents, maintenance=(window,)))
    reader = read_page(page)
    assert {tag for tag, _ in reader.tags} <= ALLOWED_TAGS
    (article,) = reader.articles
    cleaned = "".join(
        "\ufffd" if (ord(c) < 0x20 and c not in "\t\n\r") or 0x7F <= ord(c) < 0xA0 else c
        for c in site_id
    )
    assert article.heading.replace("\r", "\n") == cleaned.replace("\r\n", "\n").replace("\r", "\n")
    json.dumps(status_document(model([hostile])))  # the JSON side serialises too


def test_an_empty_model_says_so() -> None:
    page = render_html(model([]))
    assert "No sites are monitored yet." in page
    assert "No site has reported a check yet." in page


def test_certificates_close_to_expiry_are_flagged() -> None:
    soon = render_html(model([site(certificate_expires_at=NOW + timedelta(days=3))]))
    later = render_html(model([site(certificate_expires_at=NOW + timedelta(days=90))]))
    assert '<span class="warn">TLS certificate expires' in soon
    assert "in 3 days" in soon
    assert 'class="warn"' not in later
    assert "TLS certificate expires" in later


# -- badges ---------------------------------------------------------------------------------


def test_badge_shows_state_and_30_day_uptime() -> None:
    badge = render_badge(site(uptime={"24h": 100.0, "7d": 100.0, "30d": 99.98, "90d": 99.0}))
    assert b"shop: up 99.98%" in badge
    assert badge.startswith(b"<svg")


def test_badge_never_rounds_a_failure_up_to_100() -> None:
    badge = render_badge(site(uptime={name: 99.999 for name, _ in WINDOWS}))
    assert b"up 99.99%" in badge


@pytest.mark.parametrize("site_id", ["../x", "a/b", "X", "", ".hidden", "a" * 64])
def test_no_badge_for_ids_that_are_not_safe_file_names(site_id: str) -> None:
    assert badge_name(site_id) is None


def test_render_files_has_page_json_and_one_badge_per_safe_site() -> None:
    files = render_files(model([site("shop"), site("bad/id")]))
    assert set(files) == {"index.html", "status.json", "badges/shop.svg"}
    assert files["index.html"][1] == "text/html; charset=utf-8"
    assert files["status.json"][1] == "application/json"
    assert files["badges/shop.svg"][1] == "image/svg+xml"
    document = json.loads(files["status.json"][0])
    assert [s["site_id"] for s in document["sites"]] == ["shop", "bad/id"]
    assert document["sites"][0]["days"][0]["date"] == (TODAY - timedelta(days=89)).isoformat()
    assert isinstance(date.fromisoformat(document["sites"][0]["days"][-1]["date"]), date)


def test_a_flapping_site_says_so_in_words() -> None:
    flapping = render_html(model([site(flapping=True)]))
    steady = render_html(model([site()]))
    assert "flapping: up and down repeatedly" in flapping
    assert "flapping" not in steady.split("<main>", 1)[1]


# -- the local /status/ route ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("route")
    (root / "status").mkdir()
    (root / "status" / "index.html").write_text("page")
    (root / "secret.txt").write_text("outside")
    return root


class TestHostileStatusPaths:
    @given(st.text(max_size=80))
    def test_no_path_reads_outside_the_directory(self, tree: Path, tail: str) -> None:
        event = {"rawPath": "/status/" + tail, "requestContext": {"http": {"method": "GET"}}}
        answer = static_response(tree / "status", event)
        assert answer is not None
        if answer["statusCode"] == 200:
            body = base64.b64decode(answer["body"])
            assert body == b"page"

    @pytest.mark.parametrize(
        "path", ["/status/../secret.txt", "/status/%2e%2e/secret.txt", "/status/..%2fsecret.txt"]
    )
    def test_traversal_is_404(self, tree: Path, path: str) -> None:
        event = {"rawPath": path, "requestContext": {"http": {"method": "GET"}}}
        answer = static_response(tree / "status", event)
        assert answer is not None
        assert answer["statusCode"] == 404

    def test_other_paths_are_not_the_routes(self, tree: Path) -> None:
        for path in ("/", "/v1/sites", "/statusx", "/STATUS/"):
            event = {"rawPath": path, "requestContext": {"http": {"method": "GET"}}}
            assert static_response(tree / "status", event) is None


def test_the_directory_publisher_writes_only_changed_files_and_stays_inside(
    tmp_path: Path,
) -> None:
    out = tmp_path / "status"
    publisher = DirectoryPublisher(out)
    files = {"index.html": (b"<p>up</p>", HTML), "badges/shop.svg": (b"<svg/>", SVG)}
    assert publisher.publish(files) == Published(written=2, unchanged=0)
    badge_inode = (out / "badges" / "shop.svg").stat().st_ino

    changed = {**files, "index.html": (b"<p>down</p>", HTML)}
    assert publisher.publish(changed) == Published(written=1, unchanged=1)
    assert (out / "index.html").read_bytes() == b"<p>down</p>"
    assert (out / "index.html").stat().st_mode & 0o777 == 0o644
    assert (out / "badges" / "shop.svg").stat().st_ino == badge_inode  # not rewritten
    assert sorted(p.name for p in out.rglob("*")) == ["badges", "index.html", "shop.svg"]

    with pytest.raises(StatusPageError):
        publisher.publish({"../escaped.html": (b"x", HTML)})
    (out / "linked").symlink_to(tmp_path)
    with pytest.raises(StatusPageError):
        publisher.publish({"linked/escaped.html": (b"x", HTML)})
    assert not (tmp_path / "escaped.html").exists()


def whole_document(page: StatusModel) -> bytes:
    """status.json as it was written before it was streamed: the whole document at once."""
    return orjson.dumps(status_document(page), option=orjson.OPT_INDENT_2)


_numbers = st.none() | st.floats(min_value=-1.0, max_value=1e6) | st.sampled_from([0.0, -0.0])


@settings(max_examples=80, deadline=None)
@given(
    st.text(max_size=30),
    st.lists(st.text(max_size=10), max_size=3),
    st.text(max_size=60),
    st.lists(st.tuples(_numbers, st.floats(min_value=0.0, max_value=1440.0)), max_size=4),
    st.integers(min_value=0, max_value=3),
)
def test_status_json_is_written_site_by_site_as_the_whole_document_was(
    site_id: str,
    tags: list[str],
    detail: str,
    numbers: list[tuple[float | None, float]],
    copies: int,
) -> None:
    base = site("shop")
    days = (
        tuple(
            day._replace(uptime=uptime, incident_minutes=minutes)
            for day, (uptime, minutes) in zip(base.days, numbers, strict=False)
        )
        + base.days[len(numbers) :]
    )
    hostile = site(
        site_id,
        tags=tuple(tags),
        url=f'https://{site_id}/\n"days": []',
        days=days,
        latency_p50_ms=numbers[0][0] if numbers else None,
        incidents=(incident(site_id, NOW - timedelta(hours=1), None, error_detail=detail),),
    )
    sites = [hostile] * copies + [site("api", days=(), hourly=(), latency_p50_ms=None)]
    for page in (model(sites), model([]), model(sites[:1])):
        assert render_json(page) == whole_document(page)


def test_status_json_days_use_orjson_numbers_whole_and_negative_zero() -> None:
    base = site("shop")
    odd = (0, -0.0, 12, 99.9995, 1e-7, None)
    days = tuple(
        day._replace(uptime=value, incident_minutes=value if value is not None else 0.0)
        for day, value in zip(base.days, odd, strict=False)
    )
    page = model([site("shop", days=days), site("api", days=days)])
    assert render_json(page) == whole_document(page)


def test_the_page_as_bytes_is_the_page_as_text_encoded() -> None:
    sites = [site("shop"), site("ünïcode", tags=()), site("down", state="down")]
    for page in (model(sites), model([])):
        assert render_html_bytes(page) == render_html(page).encode()


def test_spooled_files_hold_the_same_bytes_as_the_rendered_ones(tmp_path: Path) -> None:
    page = model([site("shop"), site("api", state="down"), site("bad/id")])
    held = render_files(page)
    spooled = render_files(page, spool=tmp_path)
    assert spooled.keys() == held.keys()
    assert spooled["status.json"] == (tmp_path / "status.json", held["status.json"][1])
    for name, (content, content_type) in spooled.items():
        data = content.read_bytes() if isinstance(content, Path) else content
        assert (data, content_type) == held[name]


def test_the_directory_publisher_compares_a_spooled_file_a_chunk_at_a_time(
    tmp_path: Path,
) -> None:
    out = tmp_path / "status"
    publisher = DirectoryPublisher(out)
    spooled = tmp_path / "status.json"
    large = bytes(range(256)) * (3 * CHUNK // 256) + b"tail"  # over three chunks
    spooled.write_bytes(large)
    assert publisher.publish({"status.json": (spooled, JSON_TYPE)}) == Published(written=1)
    assert (out / "status.json").read_bytes() == large
    assert publisher.publish({"status.json": (spooled, JSON_TYPE)}) == Published(
        written=0, unchanged=1
    )
    for changed in (
        large[:-1] + b"T",
        b"x" + large[1:],
        large[: 2 * CHUNK] + b"y" + large[2 * CHUNK + 1 :],
    ):
        spooled.write_bytes(
            changed
        )  # the same size, one byte other: in the last, first, third chunk
        assert publisher.publish({"status.json": (spooled, JSON_TYPE)}) == Published(written=1)
        assert (out / "status.json").read_bytes() == changed
        # and held in memory, as bytes
        assert publisher.publish({"status.json": (changed, JSON_TYPE)}) == Published(
            written=0, unchanged=1
        )
