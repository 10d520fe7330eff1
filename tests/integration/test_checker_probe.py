"""Each pass/fail rule and error kind of a check, against real HTTP(S) servers on loopback."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import ipaddress
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.fixtures.http_targets import OK_BODY, HttpTargets
from webchecker.check import connection
from webchecker.check.guard import parse_networks
from webchecker.check.probe import ProbeSettings, check_site, check_sites
from webchecker.local.embedded.network import free_port
from webchecker.results import MAX_ERROR_DETAIL, CheckResult
from webchecker.sites import Site

SCHEDULED_AT = datetime(2026, 1, 5, 12, 34, tzinfo=UTC)
# The targets are on loopback, which the guard refuses unless told otherwise.
LOOPBACK_OK = ProbeSettings(allow_private_targets=True, region="eu-west-1")


def site(url: str, **fields: Any) -> Site:
    return Site.from_dict({"id": fields.pop("id", "site-1"), "url": url, "timeout": 5, **fields})


def check(url: str, settings: ProbeSettings = LOOPBACK_OK, **fields: Any) -> CheckResult:
    return asyncio.run(
        check_site(site(url, **fields), scheduled_at=SCHEDULED_AT, settings=settings)
    )


def test_a_healthy_site_passes_with_every_field_filled(http_targets: HttpTargets) -> None:
    before = datetime.now(UTC)
    result = check(http_targets.url("/ok"), id="healthy")
    after = datetime.now(UTC)
    assert result.ok
    assert result.error is None
    assert result.error_detail is None
    assert result.status_code == 200
    assert result.site_id == "healthy"
    assert result.url == http_targets.url("/ok")
    assert result.region == "eu-west-1"
    assert result.scheduled_at == SCHEDULED_AT
    assert before <= result.checked_at <= after
    assert result.checked_at.tzinfo is not None
    assert uuid.UUID(result.check_id).version == 4
    assert result.regex_matched is None  # no regex on this site
    assert result.response_time_ms is not None
    assert 0 < result.response_time_ms < 5000
    # Timing phases of the connection: a literal address needs no lookup, TLS is not used.
    assert result.dns_ms is not None
    assert result.connect_ms is not None
    assert result.ttfb_ms is not None
    assert result.tls_ms is None
    assert result.tls_cert_expires_at is None
    assert result.ttfb_ms <= result.response_time_ms


def test_every_check_gets_its_own_id(http_targets: HttpTargets) -> None:
    first, second = check(http_targets.url("/ok")), check(http_targets.url("/ok"))
    assert first.check_id != second.check_id


@pytest.mark.parametrize("status", [400, 404, 500, 503])
def test_an_unexpected_status_fails_with_status(http_targets: HttpTargets, status: int) -> None:
    result = check(http_targets.url(f"/status/{status}"))
    assert not result.ok
    assert result.error == "status"
    assert result.status_code == status
    assert result.error_detail is not None
    assert str(status) in result.error_detail
    assert "expected 200-399" in result.error_detail
    assert result.response_time_ms is not None  # a response came


@pytest.mark.parametrize(
    ("status", "expected", "ok"),
    [
        (500, [500], True),
        (204, ["200-299"], True),
        (404, [200, "400-404"], True),
        (200, [201], False),
        (302, ["200-299"], False),
    ],
)
def test_expected_status_is_configurable(
    http_targets: HttpTargets, status: int, expected: list[int | str], ok: bool
) -> None:
    result = check(http_targets.url(f"/status/{status}"), expected_status=expected)
    assert result.ok is ok
    assert result.error == (None if ok else "status")


def test_regex_found_in_the_body_passes(http_targets: HttpTargets) -> None:
    result = check(http_targets.url("/ok"), regex=r"hello\s+from")
    assert result.ok
    assert result.regex_matched is True


def test_regex_not_found_fails_with_regex(http_targets: HttpTargets) -> None:
    result = check(http_targets.url("/body?text=maintenance+page"), regex="Welcome")
    assert not result.ok
    assert result.error == "regex"
    assert result.regex_matched is False
    assert result.status_code == 200
    assert result.error_detail is not None
    assert "'Welcome'" in result.error_detail


def test_status_takes_precedence_over_regex_and_both_outcomes_are_recorded(
    http_targets: HttpTargets,
) -> None:
    result = check(http_targets.url("/status/500"), regex="Welcome")
    assert result.error == "status"
    assert result.regex_matched is False  # evaluated and recorded all the same
    matched = check(http_targets.url("/status/500"), regex="status 500")
    assert matched.error == "status"
    assert matched.regex_matched is True


def test_regex_is_searched_in_the_text_decoded_with_the_declared_charset(
    http_targets: HttpTargets,
) -> None:
    # "café" sent as ISO-8859-1: found only if the body is decoded as the server says.
    content_type = quote("text/html; charset=iso-8859-1", safe="")
    url = http_targets.url(f"/body?text=caf%C3%A9&encoding=latin-1&type={content_type}")
    result = check(url, regex="café")
    assert result.regex_matched is True, result
    undeclared = http_targets.url("/body?text=caf%C3%A9&encoding=latin-1&type=text/html")
    assert check(undeclared, regex="café").regex_matched is False  # read as UTF-8


def test_a_body_longer_than_the_cap_is_not_an_error_without_a_regex(
    http_targets: HttpTargets,
) -> None:
    settings = dataclasses.replace(LOOPBACK_OK, max_body_bytes=1000)
    result = check(http_targets.url("/bytes/500000"), settings)
    assert result.ok
    assert result.response_time_ms is not None


def test_reading_stops_at_the_cap(http_targets: HttpTargets) -> None:
    # A terabyte body: the check can only finish in time if it stops reading at the cap.
    settings = dataclasses.replace(LOOPBACK_OK, max_body_bytes=64 * 1024)
    started = time.monotonic()
    result = check(http_targets.url(f"/bytes/{10**12}"), settings, timeout=5, regex="^x+$")
    assert time.monotonic() - started < 4
    assert result.ok, result
    assert result.regex_matched is True  # searched in what was read


def test_regex_not_found_in_a_body_longer_than_the_cap_is_too_large(
    http_targets: HttpTargets,
) -> None:
    settings = dataclasses.replace(LOOPBACK_OK, max_body_bytes=1000)
    result = check(http_targets.url("/bytes/5000"), settings, regex="y")
    assert not result.ok
    assert result.error == "too_large"
    assert result.regex_matched is False
    assert result.error_detail is not None
    assert "1000 bytes" in result.error_detail
    # The same body within the cap is judged by the regex alone.
    within = check(http_targets.url("/bytes/5000"), regex="y")
    assert within.error == "regex"


def test_a_slow_server_times_out(http_targets: HttpTargets) -> None:
    started = time.monotonic()
    result = check(http_targets.url("/slow/10"), timeout=0.5)
    elapsed = time.monotonic() - started
    assert result.error == "timeout"
    assert not result.ok
    assert result.status_code is None
    assert result.response_time_ms is None
    assert result.error_detail is not None
    assert "0.5 s" in result.error_detail
    assert "waiting for the response" in result.error_detail
    assert elapsed < 3


def test_a_body_that_never_ends_times_out_with_the_status_known(
    http_targets: HttpTargets,
) -> None:
    result = check(http_targets.url("/hang-body"), timeout=0.5)
    assert result.error == "timeout"
    assert result.status_code == 200
    assert result.response_time_ms is None  # the whole response never came
    assert result.error_detail is not None
    assert "reading the response body" in result.error_detail


def test_a_refused_connection_fails_with_connect() -> None:
    result = check(f"http://127.0.0.1:{free_port()}/")
    assert result.error == "connect"
    assert result.error_detail is not None
    assert "connection refused" in result.error_detail
    assert result.status_code is None
    assert result.response_time_ms is None


@pytest.mark.parametrize(
    "url",
    [
        "http://a..example/",  # empty label: refused by the resolver's IDNA step, locally
        "http://" + "a" * 64 + ".example/",  # label longer than 63 characters
    ],
)
def test_a_name_that_cannot_be_resolved_fails_with_dns(url: str) -> None:
    result = check(url)
    assert result.error == "dns"
    assert result.error_detail is not None
    assert result.error_detail.startswith("cannot resolve")
    assert len(result.error_detail) <= MAX_ERROR_DETAIL


def test_an_untrusted_certificate_fails_with_tls(http_targets: HttpTargets) -> None:
    result = check(http_targets.url("/ok", tls=True))
    assert result.error == "tls"
    assert result.error_detail is not None
    assert "not accepted" in result.error_detail
    assert "issuer" in result.error_detail


def test_a_certificate_for_another_name_fails_with_tls(http_targets: HttpTargets) -> None:
    settings = dataclasses.replace(LOOPBACK_OK, ca_bundle=http_targets.ca_file)
    # 2130706433 is 127.0.0.1 to the resolver, but it is not a name the certificate covers.
    result = check(f"https://2130706433:{http_targets.tls_port}/ok", settings)
    assert result.error == "tls"
    assert result.error_detail is not None
    assert "mismatch" in result.error_detail or "match" in result.error_detail


def test_verify_tls_false_accepts_any_certificate(http_targets: HttpTargets) -> None:
    result = check(http_targets.url("/ok", tls=True), verify_tls=False)
    assert result.ok, result
    assert result.tls_ms is not None
    assert result.tls_cert_expires_at is None  # an unverified certificate is not decoded


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_trusted_certificate_passes_and_its_expiry_is_recorded(
    http_targets: HttpTargets, host: str
) -> None:
    settings = dataclasses.replace(LOOPBACK_OK, ca_bundle=http_targets.ca_file)
    result = check(http_targets.url("/ok", host=host, tls=True), settings, regex="hello")
    assert result.ok, result
    assert result.tls_ms is not None
    assert result.tls_cert_expires_at == http_targets.cert_not_after


@pytest.mark.parametrize("tls", [False, True])
@pytest.mark.parametrize("path", ["/malformed", "/close"])
def test_a_broken_response_fails_with_invalid_response(
    http_targets: HttpTargets, path: str, tls: bool
) -> None:
    settings = dataclasses.replace(LOOPBACK_OK, ca_bundle=http_targets.ca_file)
    result = check(http_targets.url(path, tls=tls), settings)
    assert result.error == "invalid_response"
    assert result.status_code is None
    assert result.error_detail
    assert result.error_detail.startswith("invalid HTTP response: ")


def test_tls_to_a_plain_http_port_fails_with_tls(http_targets: HttpTargets) -> None:
    result = check(f"https://127.0.0.1:{http_targets.port}/ok")
    assert result.error == "tls", result
    assert result.error_detail is not None
    assert "127.0.0.1" in result.error_detail


def test_redirects_are_followed_to_the_final_response(http_targets: HttpTargets) -> None:
    result = check(http_targets.url("/redirect/3"), regex="hello")
    assert result.ok
    assert result.status_code == 200
    assert result.regex_matched is True


def test_redirects_are_not_followed_when_disabled(http_targets: HttpTargets) -> None:
    result = check(http_targets.url("/redirect/3"), follow_redirects=False)
    assert result.ok  # 302 is within the default 200-399
    assert result.status_code == 302
    strict = check(http_targets.url("/redirect/3"), follow_redirects=False, expected_status=[200])
    assert strict.error == "status"


def test_a_redirect_loop_fails(http_targets: HttpTargets) -> None:
    result = check(http_targets.url("/redirect-loop"))
    assert result.error == "other"
    assert result.status_code == 302
    assert result.error_detail is not None
    assert "more than 10 redirects" in result.error_detail


def test_a_redirect_to_another_loopback_host_is_followed_on_a_new_connection(
    http_targets: HttpTargets,
) -> None:
    target = http_targets.url(f"/ok?marker={uuid.uuid4()}", host="127.0.0.2")
    result = check(http_targets.url("/redirect-to?location=" + quote(target, safe="")))
    assert result.ok, result
    received = [r for r in http_targets.requests if r.target.endswith(target.split("/", 3)[3])]
    assert [r.host for r in received] == ["127.0.0.2"]


def test_the_request_carries_the_sites_method_headers_and_body(http_targets: HttpTargets) -> None:
    marker = str(uuid.uuid4())
    result = check(
        http_targets.url(f"/echo?m={marker}"),
        method="POST",
        headers={"X-Marker": marker, "Content-Type": "application/json"},
        body='{"ping": true}',
    )
    assert result.ok
    [request] = [r for r in http_targets.requests if marker in r.target]
    assert request.method == "POST"
    assert request.body == b'{"ping": true}'
    assert request.headers["x-marker"] == marker
    assert request.headers["content-type"] == "application/json"
    assert request.headers["host"] == f"127.0.0.1:{http_targets.port}"
    assert request.headers["user-agent"].startswith("Webchecker/")
    assert request.headers["connection"] == "close"


def test_credentials_in_the_url_become_basic_auth(http_targets: HttpTargets) -> None:
    marker = str(uuid.uuid4())
    result = check(f"http://user:s3cret@127.0.0.1:{http_targets.port}/echo?m={marker}")
    assert result.ok
    [request] = [r for r in http_targets.requests if marker in r.target]
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"user:s3cret").decode()


@pytest.mark.parametrize(
    ("status", "method", "expected_method", "keeps_body"),
    [
        (303, "POST", "GET", False),
        (302, "POST", "GET", False),
        (307, "POST", "POST", True),
        (308, "PUT", "PUT", True),
        (301, "GET", "GET", False),
    ],
)
def test_redirects_change_the_method_as_browsers_do(
    http_targets: HttpTargets, status: int, method: str, expected_method: str, keeps_body: bool
) -> None:
    marker = str(uuid.uuid4())
    location = quote(f"/echo?m={marker}", safe="")
    result = check(
        http_targets.url(f"/redirect-to?status={status}&location={location}"),
        method=method,
        body="payload" if method != "GET" else None,
    )
    assert result.ok, result
    [request] = [r for r in http_targets.requests if r.target == f"/echo?m={marker}"]
    assert request.method == expected_method
    assert request.body == (b"payload" if keeps_body else b"")


def test_credentials_are_not_sent_to_another_origin_after_a_redirect(
    http_targets: HttpTargets,
) -> None:
    marker = str(uuid.uuid4())
    same = quote(f"/echo?m={marker}-same", safe="")
    other = quote(http_targets.url(f"/echo?m={marker}-other", host="127.0.0.2"), safe="")
    headers = {"Authorization": "Bearer top-secret", "X-Keep": "yes"}
    assert check(http_targets.url(f"/redirect-to?location={same}"), headers=headers).ok
    assert check(http_targets.url(f"/redirect-to?location={other}"), headers=headers).ok
    echoed = http_targets.requests_to("/echo")
    [same_origin] = [r for r in echoed if f"{marker}-same" in r.target]
    [other_origin] = [r for r in echoed if f"{marker}-other" in r.target]
    assert same_origin.headers["authorization"] == "Bearer top-secret"
    assert "authorization" not in other_origin.headers
    assert other_origin.headers["x-keep"] == "yes"


def test_head_requests_pass_without_a_body(http_targets: HttpTargets) -> None:
    result = check(http_targets.url("/ok"), method="HEAD")
    assert result.ok
    assert result.status_code == 200


def test_error_details_stay_within_500_characters(http_targets: HttpTargets) -> None:
    long_location = quote("/" + "x" * 2000, safe="")
    settings = dataclasses.replace(LOOPBACK_OK, max_redirects=0)
    result = check(http_targets.url(f"/redirect-to?location={long_location}"), settings)
    assert result.error == "other"
    assert result.error_detail is not None
    assert len(result.error_detail) <= MAX_ERROR_DETAIL


# --- The SSRF guard, end to end: loopback targets only -------------------------------------


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.0.0.2", "localhost", "[::1]", "2130706433", "0177.0.0.1", "0x7f.1", "127.1"],
)
def test_loopback_targets_are_blocked_by_default_before_any_connection(
    http_targets: HttpTargets, host: str
) -> None:
    marker = str(uuid.uuid4())
    result = check(f"http://{host}:{http_targets.port}/ok?m={marker}", ProbeSettings())
    assert result.error == "blocked"
    assert result.error_detail is not None
    assert "loopback" in result.error_detail
    assert result.connect_ms is None  # refused before connecting
    assert not [r for r in http_targets.requests if marker in r.target]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "2130706433"])
def test_loopback_targets_are_allowed_with_the_flag(http_targets: HttpTargets, host: str) -> None:
    result = check(f"http://{host}:{http_targets.port}/ok")
    assert result.ok, result
    assert result.dns_ms is not None


def test_every_redirect_hop_is_guarded(http_targets: HttpTargets) -> None:
    # Only 127.0.0.1 is allowed: the first hop passes, the redirect to 127.0.0.2 is refused.
    settings = ProbeSettings(allowed_networks=parse_networks("127.0.0.1/32"))
    marker = str(uuid.uuid4())
    target = quote(http_targets.url(f"/ok?m={marker}", host="127.0.0.2"), safe="")
    result = check(http_targets.url(f"/redirect-to?location={target}"), settings)
    assert result.error == "blocked", result
    assert result.status_code is None  # the redirect was not the final response
    assert result.error_detail is not None
    assert "127.0.0.2" in result.error_detail
    assert not [r for r in http_targets.requests_to("/ok") if marker in r.target]
    # A direct check of the allowed address passes.
    assert check(http_targets.url("/ok"), settings).ok


# --- Many sites at once --------------------------------------------------------------------


def test_many_slow_sites_finish_in_about_one_timeout(http_targets: HttpTargets) -> None:
    timeout = 1.0
    sites = [
        site(http_targets.url(f"/slow/5?n={n}"), id=f"slow-{n}", timeout=timeout) for n in range(40)
    ]
    started = time.monotonic()
    results = asyncio.run(check_sites(sites, scheduled_at=SCHEDULED_AT, settings=LOOPBACK_OK))
    elapsed = time.monotonic() - started
    assert [r.error for r in results] == ["timeout"] * 40
    assert [r.site_id for r in results] == [s.id for s in sites]  # results in site order
    assert elapsed < 3 * timeout  # about one timeout, not the sum (40 s)


def test_concurrency_is_bounded(http_targets: HttpTargets) -> None:
    settings = dataclasses.replace(LOOPBACK_OK, concurrency=2)
    sites = [site(http_targets.url(f"/slow/0.3?n={n}"), id=f"s{n}") for n in range(4)]
    started = time.monotonic()
    results = asyncio.run(check_sites(sites, scheduled_at=SCHEDULED_AT, settings=settings))
    assert all(r.ok for r in results)
    assert time.monotonic() - started >= 0.6  # two rounds of two


def test_one_site_failing_does_not_affect_the_others(http_targets: HttpTargets) -> None:
    sites = [
        site(http_targets.url("/ok"), id="good"),
        site(http_targets.url("/malformed"), id="broken"),
        site(f"http://127.0.0.1:{free_port()}/", id="down"),
        site(http_targets.url("/ok"), id="also-good"),
    ]
    results = asyncio.run(check_sites(sites, scheduled_at=SCHEDULED_AT, settings=LOOPBACK_OK))
    assert {r.site_id: r.error for r in results} == {
        "good": None,
        "broken": "invalid_response",
        "down": "connect",
        "also-good": None,
    }


def test_results_serialise_to_valid_messages(http_targets: HttpTargets) -> None:
    settings = dataclasses.replace(LOOPBACK_OK, ca_bundle=http_targets.ca_file)
    urls = [
        http_targets.url("/ok"),
        http_targets.url("/status/500"),
        http_targets.url("/ok", tls=True),
        http_targets.url("/malformed"),
    ]
    sites = [site(url, id=f"m{n}", regex="hello") for n, url in enumerate(urls)]
    results = asyncio.run(check_sites(sites, scheduled_at=SCHEDULED_AT, settings=settings))
    for result in results:
        # Timestamps travel with millisecond precision; everything else exactly.
        assert CheckResult.from_json(result.to_json()).to_message() == result.to_message()
    tls = results[2].to_message()
    assert tls["tls_cert_expires_at"] is not None
    expiry = datetime.fromisoformat(tls["tls_cert_expires_at"])
    assert abs(expiry - http_targets.cert_not_after) < timedelta(seconds=1)
    assert OK_BODY  # the targets' body is what the regex above finds


@pytest.mark.parametrize("stamped", [True, False], ids=["kernel-stamps", "no-stamps"])
def test_time_a_response_waited_for_a_stalled_checker_is_not_the_sites(
    http_targets: HttpTargets, monkeypatch: pytest.MonkeyPatch, stamped: bool
) -> None:
    """A checker that cannot run (its CPU quota used up, a busy event loop, a collection)
    reads the response late; the kernel's arrival stamp keeps that wait out of the site's
    times. Without stamps (``no-stamps``, as on a system without them) the stall counts."""
    if not stamped:
        monkeypatch.setattr(connection, "_KERNEL_CLOCKS", False)

    async def stalled_check() -> tuple[CheckResult, float]:
        # The whole event loop stops from 0.1 s to 1.6 s; the target answers at 0.3 s.
        asyncio.get_running_loop().call_later(0.1, time.sleep, 1.5)
        started = time.perf_counter()
        result = await check_site(
            site(http_targets.url("/slow/0.3"), timeout=10),
            scheduled_at=SCHEDULED_AT,
            settings=LOOPBACK_OK,
        )
        return result, time.perf_counter() - started

    result, wall = asyncio.run(stalled_check())
    assert result.ok
    assert wall >= 1.5  # the check really ended after the stall
    assert result.response_time_ms is not None
    assert result.ttfb_ms is not None
    if stamped:
        assert 250 <= result.response_time_ms < 1000
        assert 250 <= result.ttfb_ms < 1000
    else:
        assert result.response_time_ms >= 1500
        assert result.ttfb_ms >= 1400


def test_a_connect_counts_the_round_trip_the_kernel_measured(
    http_targets: HttpTargets, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.create_connection(("127.0.0.1", http_targets.port)) as sock:
        measured = connection._connect_time(sock, 0.5)
        # Loopback's round trip is far below the half second the connect is said to have taken.
        assert 0.0 < measured < 0.5
        monkeypatch.setattr(connection, "_KERNEL_CLOCKS", False)
        assert connection._connect_time(sock, 0.5) == 0.5  # no kernel figures: the wait


def test_a_check_opens_a_receive_window_for_most_bodies_whole(http_targets: HttpTargets) -> None:
    """The window is set before the SYN (it fixes the window scale): a body that fits does
    not wait for the checker to read, so a throttled checker does not stretch the transfer."""

    async def connect() -> int:
        loop = asyncio.get_running_loop()
        address = ipaddress.ip_address("127.0.0.1")
        sock = await connection._connect(loop, address, http_targets.port)
        with sock:
            return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))

    ceiling = int(Path("/proc/sys/net/core/rmem_max").read_text())
    # Linux doubles what it is given (bookkeeping), within net.core.rmem_max.
    assert asyncio.run(connect()) >= 2 * min(connection._RECEIVE_BUFFER, ceiling)
