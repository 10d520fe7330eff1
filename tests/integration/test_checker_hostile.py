"""Hostile targets against real servers on loopback (issue 9 items 1, 8, 11): a regex that
backtracks catastrophically, charsets that are no text encodings, unusable redirect
Locations, and credentials in the URL. Every check ends with a result of its own, and the
other checks of the same invocation are not held up."""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest

from tests.fixtures.http_targets import HttpTargets
from webchecker.check.probe import ProbeSettings, check_site, check_sites
from webchecker.results import CheckResult
from webchecker.sites import Site

SCHEDULED_AT = datetime(2026, 1, 5, 12, 34, tzinfo=UTC)
LOOPBACK_OK = ProbeSettings(allow_private_targets=True)
CATASTROPHIC = "(a+)+$"  # exponential with a backtracking engine on "aaa...ab"


def site(site_id: str, url: str, **fields: Any) -> Site:
    return Site.from_dict({"id": site_id, "url": url, "timeout": 5, **fields})


def check(url: str, **fields: Any) -> CheckResult:
    return asyncio.run(
        check_site(site("s", url, **fields), scheduled_at=SCHEDULED_AT, settings=LOOPBACK_OK)
    )


# -- 1. a regex cannot hold up the event loop -------------------------------------------


@pytest.mark.timeout(120)  # the old `re` engine never finished the 100 KB case
def test_a_catastrophic_regex_does_not_hold_up_the_other_checks(
    http_targets: HttpTargets,
) -> None:
    hostile = {
        # 21 s of CPU with Python's re; the site's timeout is 1 s
        "short": (http_targets.url("/repeat?text=a&count=28&tail=b"), False),
        # never ends with Python's re
        "long": (http_targets.url("/repeat?text=a&count=100000&tail=b"), False),
        "all-a": (http_targets.url("/repeat?text=a&count=100000"), True),
    }
    sites = [site(name, url, timeout=1, regex=CATASTROPHIC) for name, (url, _) in hostile.items()]
    # neighbours with the same 1 s timeout: a blocked event loop would time them out
    sites += [site(f"ok{i}", http_targets.url("/ok"), timeout=1, regex="hello") for i in range(8)]

    results = asyncio.run(check_sites(sites, scheduled_at=SCHEDULED_AT, settings=LOOPBACK_OK))

    by_id = {result.site_id: result for result in results}
    assert set(by_id) == {s.id for s in sites}
    for name, (_, matches) in hostile.items():
        result = by_id[name]
        assert result.error != "timeout", result
        assert result.regex_matched is matches, result
        assert result.error == (None if matches else "regex"), result
        assert result.status_code == 200
    for i in range(8):
        neighbour = by_id[f"ok{i}"]
        assert (neighbour.ok, neighbour.error, neighbour.regex_matched) == (True, None, True)


def test_a_full_one_mib_body_is_searched_to_the_end(http_targets: HttpTargets) -> None:
    # the whole capped body is decoded and searched: the match is in its last bytes
    url = http_targets.url(f"/repeat?text=a&count={1024 * 1024 - 3}&tail=end")
    assert check(url, regex="a+end$").regex_matched is True
    assert check(url, regex=CATASTROPHIC).regex_matched is False


# -- 8. charsets that are no text encodings, Locations that are no URLs ------------------


@pytest.mark.parametrize(
    "charset",
    ["base64", "rot13", "idna", "punycode", "unicode_escape", "undefined", "hex", "x-no-such"],
)
def test_a_charset_that_is_no_text_encoding_falls_back_to_utf8(
    http_targets: HttpTargets, charset: str
) -> None:
    content_type = quote(f"text/plain; charset={charset}", safe="")
    result = check(http_targets.url(f"/body?text=caf%C3%A9+ok&type={content_type}"), regex="café")
    assert (result.ok, result.error, result.regex_matched) == (True, None, True), result


@pytest.mark.parametrize("charset", ["utf-7", "utf-16", "shift_jis", "cp1252"])
def test_real_charsets_still_decode(http_targets: HttpTargets, charset: str) -> None:
    content_type = quote(f"text/plain; charset={charset}", safe="")
    url = http_targets.url(f"/body?text=caf%C3%A9&encoding={charset}&type={content_type}")
    if charset == "shift_jis":
        url = url.replace("caf%C3%A9", "%E3%81%AF")  # は
        assert check(url, regex="は").regex_matched is True
    else:
        assert check(url, regex="café").regex_matched is True


@pytest.mark.parametrize(
    ("location", "fragment"),
    [
        ("http://[::1/", "unusable URL"),
        ("http://127.0.0.1:99999/", "unusable URL"),
        ("http://127.0.0.1:port/", "unusable URL"),
        ("ftp://127.0.0.1/", "not http(s)"),
        ("javascript:alert(1)", "not http(s)"),
    ],
)
def test_an_unusable_redirect_location_is_a_clear_other_without_a_traceback(
    http_targets: HttpTargets,
    caplog: pytest.LogCaptureFixture,
    location: str,
    fragment: str,
) -> None:
    url = http_targets.url(f"/redirect-to?location={quote(location, safe='')}")
    with caplog.at_level(logging.WARNING, logger="webchecker"):
        result = check(url)
    assert (result.ok, result.error, result.status_code) == (False, "other", 302)
    assert result.error_detail is not None
    assert fragment in result.error_detail
    assert "unexpected" not in result.error_detail
    assert not [record for record in caplog.records if record.exc_info], caplog.text


# -- 11. credentials in the URL are used, never published ---------------------------------


def test_url_userinfo_is_sent_as_basic_auth_but_published_as_stars(
    http_targets: HttpTargets,
) -> None:
    marker = str(uuid.uuid4())
    url = f"http://alice:s3cret@127.0.0.1:{http_targets.port}/echo?m={marker}"
    result = check(url)

    assert result.ok
    [request] = [r for r in http_targets.requests if marker in r.target]
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert result.url == f"http://***@127.0.0.1:{http_targets.port}/echo?m={marker}"
    assert b"s3cret" not in result.to_json()
    assert b"alice" not in result.to_json()


def test_userinfo_never_appears_in_an_error_detail(http_targets: HttpTargets) -> None:
    result = check(f"http://alice:s3cret@127.0.0.1:{http_targets.port}/status/503")
    assert result.error == "status"
    assert b"s3cret" not in result.to_json()


# -- other per-check CPU: response headers and tiny chunks --------------------------------


def test_many_response_headers_are_parsed_within_the_check(http_targets: HttpTargets) -> None:
    # about 90 KB of headers: under httpcore's 100 KB limit for a response head, parsed
    # in linear time (h11 keeps its search position between reads)
    assert check(http_targets.url("/many-headers/3000")).ok
    # more than the limit: a clear invalid_response, not a hang or a crash
    too_many = check(http_targets.url("/many-headers/20000"))
    assert (too_many.ok, too_many.error) == (False, "invalid_response"), too_many


def test_a_body_of_one_byte_chunks_does_not_hold_up_the_other_checks(
    http_targets: HttpTargets,
) -> None:
    # 1 MiB of one-byte chunks is a million parser events; they are handled between
    # socket reads, so the deadline and the neighbours keep running
    hostile = site("chunks", http_targets.url(f"/chunked/{1 << 20}"), timeout=3, regex="a+b")
    # neighbours that answer while the chunks are being parsed
    neighbours = [site(f"ok{i}", http_targets.url("/slow/0.5"), timeout=2.5) for i in range(8)]

    results = asyncio.run(
        check_sites([hostile, *neighbours], scheduled_at=SCHEDULED_AT, settings=LOOPBACK_OK)
    )

    by_id = {result.site_id: result for result in results}
    assert by_id["chunks"].error in (None, "too_large", "timeout"), by_id["chunks"]
    assert all(by_id[f"ok{i}"].ok for i in range(8)), results
