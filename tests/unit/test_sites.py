"""The site model: every rule of DESIGN.md's site format, and no crash on any input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webchecker.exceptions import SiteError
from webchecker.sites import Site, load_sites, redact_url


def test_minimal_site_gets_every_default() -> None:
    site = Site.from_dict({"url": "https://example.com/health"}, default_id="example")

    assert site.to_dict() == {
        "id": "example",
        "url": "https://example.com/health",
        "interval": 60,
        "timeout": 10.0,
        "method": "GET",
        "headers": {},
        "body": None,
        "expected_status": ["200-399"],
        "regex": None,
        "follow_redirects": True,
        "verify_tls": True,
        "enabled": True,
        "tags": [],
        "failure_threshold": 2,
        "success_threshold": 2,
        "alerts": True,
    }


def test_full_site_round_trips() -> None:
    raw = {
        "id": "api.v2_x-1",
        "url": "http://127.0.0.1:8080/x?y=1",
        "interval": 300,
        "timeout": 2.5,
        "method": "post",
        "headers": {"Authorization": "Bearer t", "X-A": ""},
        "body": "{}",
        "expected_status": [200, "300-302"],
        "regex": r"ok\s+\d+",
        "follow_redirects": False,
        "verify_tls": False,
        "enabled": False,
        "tags": ["prod", "team.a_1-x"],
        "failure_threshold": 1,
        "success_threshold": 10,
        "alerts": False,
    }
    site = Site.from_dict(raw)

    assert site.method == "POST"
    assert site.tags == ("prod", "team.a_1-x")
    assert (site.failure_threshold, site.success_threshold, site.alerts) == (1, 10, False)
    assert site.expected_status == ((200, 200), (300, 302))
    assert Site.from_dict(site.to_dict()) == site
    assert json.loads(json.dumps(site.to_dict())) == site.to_dict()


@pytest.mark.parametrize(
    ("code", "expected"),
    [(199, False), (200, True), (250, True), (301, True), (302, True), (303, False), (404, True)],
)
def test_expects(code: int, expected: bool) -> None:
    site = Site.from_dict({"id": "a", "url": "http://a", "expected_status": ["200-302", 404]})
    assert site.expects(code) is expected


def test_pattern_is_compiled_once() -> None:
    site = Site.from_dict({"id": "a", "url": "http://a", "regex": "ok"})
    assert site.pattern is site.pattern
    assert site.pattern is not None
    assert site.pattern.search("all ok")


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"url": "ftp://example.com"}, "url", "http or https"),
        ({"url": "example.com"}, "url", "http or https"),
        ({"url": "http://"}, "url", "no host"),
        ({"url": "http://exa mple.com"}, "url", "whitespace"),
        ({"url": "http://example.com:99999"}, "url", "not a valid URL"),
        ({"url": 5}, "url", "non-empty string"),
        ({"id": "Upper"}, "id", "not a valid id"),
        ({"id": "-x"}, "id", "not a valid id"),
        ({"id": "x" * 64}, "id", "not a valid id"),
        ({"interval": 90}, "interval", "multiple of 60"),
        ({"interval": 0}, "interval", "multiple of 60"),
        ({"interval": 86_460}, "interval", "multiple of 60"),
        ({"interval": "60"}, "interval", "whole number"),
        ({"interval": True}, "interval", "whole number"),
        ({"timeout": 0}, "timeout", "> 0"),
        ({"timeout": 61, "interval": 120}, "timeout", "at most 60"),
        ({"timeout": 60}, "timeout", "less than interval"),
        ({"timeout": "5"}, "timeout", "number of seconds"),
        ({"method": "BREW"}, "method", "one of"),
        ({"headers": ["a"]}, "headers", "object of strings"),
        ({"headers": {"X": 1}}, "headers", "must be a string"),
        ({"headers": {"Bad Name": "v"}}, "headers", "not a valid header name"),
        ({"headers": {"X": "a\r\nInjected: 1"}}, "headers", "line break"),
        ({"body": 1}, "body", "must be a string"),
        ({"expected_status": []}, "expected_status", "must not be empty"),
        ({"expected_status": "2xx"}, "expected_status", "range like"),
        ({"expected_status": ["299-200"]}, "expected_status", "low to high"),
        ({"expected_status": [700]}, "expected_status", "100-599"),
        ({"regex": "("}, "regex", "not accepted by RE2"),
        ({"regex": 3}, "regex", "must be a string"),
        ({"follow_redirects": "yes"}, "follow_redirects", "true or false"),
        ({"verify_tls": 1}, "verify_tls", "true or false"),
        ({"enabled": None}, "enabled", "true or false"),
        ({"tags": "prod"}, "tags", "list of strings"),
        ({"tags": ["Prod"]}, "tags", "not a valid tag"),
        ({"tags": ["x" * 33]}, "tags", "not a valid tag"),
        ({"tags": [1]}, "tags", "not a valid tag"),
        ({"tags": ["a", "a"]}, "tags", "listed twice"),
        ({"tags": [f"t{i}" for i in range(11)]}, "tags", "at most 10"),
        ({"failure_threshold": 0}, "failure_threshold", "between 1 and 10"),
        ({"failure_threshold": 11}, "failure_threshold", "between 1 and 10"),
        ({"failure_threshold": 2.5}, "failure_threshold", "whole number"),
        ({"failure_threshold": True}, "failure_threshold", "whole number"),
        ({"success_threshold": "2"}, "success_threshold", "whole number"),
        ({"success_threshold": -1}, "success_threshold", "between 1 and 10"),
        ({"alerts": "no"}, "alerts", "true or false"),
    ],
)
def test_invalid_field_is_named(changes: dict[str, Any], field: str, fragment: str) -> None:
    raw = {"id": "site", "url": "https://example.com", **changes}

    with pytest.raises(SiteError) as caught:
        Site.from_dict(raw)

    assert caught.value.field == field
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"{field}: ")


def test_unknown_keys_are_errors() -> None:
    with pytest.raises(SiteError, match="unknown key 'intervall'"):
        Site.from_dict({"id": "a", "url": "http://a", "intervall": 60})


def test_url_and_id_are_required() -> None:
    with pytest.raises(SiteError, match="url: is required"):
        Site.from_dict({"id": "a"})
    with pytest.raises(SiteError, match="id: is required"):
        Site.from_dict({"url": "http://a"})


def test_load_sites_mixes_objects_and_arrays_and_reports_invalid_entries() -> None:
    catalog = load_sites(
        {
            "/webchecker/sites/team-b": json.dumps(
                [
                    {"id": "b1", "url": "https://b1.example"},
                    {"url": "https://no-id.example"},
                    {"id": "b3", "url": "https://b3.example", "interval": 61},
                    {"id": "a", "url": "https://dup.example"},
                ]
            ),
            "/webchecker/sites/a": json.dumps({"url": "https://a.example"}),
            "/webchecker/sites/broken": "{not json",
            "/webchecker/sites/scalar": "42",
            "/webchecker/sites/nested/deep.one": json.dumps({"url": "http://d.example"}),
        }
    )

    assert [site.id for site in catalog.sites] == ["a", "deep.one", "b1"]
    reasons = {str(entry) for entry in catalog.invalid}
    assert reasons == {
        "/webchecker/sites/broken: not valid JSON: Expecting property name enclosed in "
        "double quotes: line 1 column 2 (char 1)",
        "/webchecker/sites/scalar: expected a site object or an array of them, got a number",
        "/webchecker/sites/team-b[1]: id: is required inside an array",
        "/webchecker/sites/team-b[2]: interval: must be a multiple of 60 between 60 and "
        "86400, got 61",
        "/webchecker/sites/team-b[3]: id: duplicate 'a', already used by /webchecker/sites/a",
    }


def test_duplicate_ids_keep_the_first_by_parameter_name() -> None:
    site = json.dumps({"id": "same", "url": "https://x.example"})
    catalog = load_sites({"/s/z": site, "/s/m": site, "/s/b": site})

    assert len(catalog) == 1
    assert [(entry.parameter, entry.index) for entry in catalog.invalid] == [
        ("/s/m", None),
        ("/s/z", None),
    ]


def test_default_id_from_an_invalid_parameter_name_says_so() -> None:
    catalog = load_sites({"/s/My Site": json.dumps({"url": "https://x.example"})})

    assert not catalog.sites
    assert "taken from the parameter name" in catalog.invalid[0].reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
site_keys = st.sampled_from(
    [
        "id",
        "url",
        "interval",
        "timeout",
        "method",
        "headers",
        "body",
        "expected_status",
        "regex",
        "follow_redirects",
        "verify_tls",
        "enabled",
        "tags",
        "failure_threshold",
        "success_threshold",
        "alerts",
    ]
)
almost_sites = st.dictionaries(site_keys, json_values, max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, almost_sites))
def test_any_object_is_a_site_or_a_site_error(value: object) -> None:
    try:
        site = Site.from_dict(value, default_id="fallback")
    except SiteError as error:
        assert str(error)
    else:
        assert Site.from_dict(site.to_dict()) == site


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=15), st.text(max_size=60) | json_values.map(json.dumps)))
def test_load_sites_never_raises(parameters: dict[str, str]) -> None:
    catalog = load_sites(parameters)
    assert len(catalog.sites) + len(catalog.invalid) >= len(parameters) - sum(
        1 for value in parameters.values() if value.strip().startswith("[")
    )
    assert len({site.id for site in catalog.sites}) == len(catalog.sites)


# -- hostile input (issue 9 items 1, 2, 3, 7) ------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"interval": float("inf")}, "interval"),
        ({"interval": float("-inf")}, "interval"),
        ({"interval": float("nan")}, "interval"),
        ({"interval": 1e308}, "interval"),
        ({"interval": 10**400}, "interval"),
        ({"timeout": float("inf")}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": 10**400}, "timeout"),
        ({"timeout": -(10**400)}, "timeout"),
        ({"expected_status": [10**400]}, "expected_status"),
        ({"failure_threshold": float("inf")}, "failure_threshold"),
        ({"success_threshold": float("nan")}, "success_threshold"),
        ({"url": "http://example.com/\ud800"}, "url"),
        ({"url": "http://ex\udcffample.com/"}, "url"),
        ({"headers": {"X-A": "\ud800"}}, "headers"),
        ({"body": "\udfff"}, "body"),
        ({"regex": "ok\ud800"}, "regex"),
        ({"id": "a\ud800"}, "id"),
        ({"method": "GET\ud800"}, "method"),
        ({"tags": ["a\ud800"]}, "tags"),
        ({"headers": {"X-A": "a\x0bb"}}, "headers"),
        ({"headers": {"X-A": "a\x1fb"}}, "headers"),
        ({"headers": {"X-A": "a\x7fb"}}, "headers"),
        ({"headers": {"X-A": "\x1b[31m"}}, "headers"),
        ({"headers": {f"X-{i}": "v" for i in range(65)}}, "headers"),
        ({"regex": "(a)\\1"}, "regex"),  # backreference: RE2 refuses it
        ({"regex": "(?=a)"}, "regex"),  # lookahead
        ({"regex": "a{1000}{1000}"}, "regex"),  # too large for RE2's budget
        ({"regex": "a" * 2049}, "regex"),
        ({"url": "http://e.com/" + "x" * 10_000_000}, "url"),
        ({"interval": "x" * 10_000_000}, "interval"),
    ],
)
def test_hostile_values_are_one_clear_error_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(SiteError) as caught:
        Site.from_dict({"id": "site", "url": "https://example.com", **changes})
    assert caught.value.field == field
    message = str(caught.value)
    assert len(message) < 600
    message.encode()  # printable anywhere: no lone surrogate in the message itself


def test_a_tab_in_a_header_value_is_fine() -> None:
    site = Site.from_dict({"id": "a", "url": "http://a", "headers": {"X": "a\tb"}})
    assert site.headers["X"] == "a\tb"


def test_the_catastrophic_pattern_is_valid_and_matches_in_linear_time() -> None:
    # RE2 accepts it (no backreference) and never backtracks; the CPU bound of a check
    # is shown end to end in tests/integration/test_checker_hostile.py
    site = Site.from_dict({"id": "a", "url": "http://a", "regex": "(a+)+$"})
    assert site.pattern.search("a" * 28 + "b") is None
    assert site.pattern.search("a" * 100_000) is not None


def test_the_unknown_keys_message_stays_short() -> None:
    keys = {f"k{i}" * 1000: 1 for i in range(1000)}
    with pytest.raises(SiteError) as caught:
        Site.from_dict({"id": "a", "url": "http://a", **keys})
    assert len(str(caught.value)) < 600
    assert "and 995 more" in str(caught.value)


def test_load_sites_reports_non_finite_json_numbers_as_invalid_entries() -> None:
    catalog = load_sites(
        {
            "/s/inf": '{"url": "http://a", "interval": 1e309}',
            "/s/nan": '{"url": "http://a", "timeout": NaN}',
            "/s/neg": '{"url": "http://a", "timeout": -Infinity}',
            "/s/sur": '{"url": "http://a/\\ud800"}',
            "/s/ok": '{"url": "http://a"}',
        }
    )
    assert [site.id for site in catalog.sites] == ["ok"]
    assert {entry.parameter: entry.reason.split(":")[0] for entry in catalog.invalid} == {
        "/s/inf": "interval",
        "/s/nan": "timeout",
        "/s/neg": "timeout",
        "/s/sur": "url",
    }


@pytest.mark.parametrize(
    "url", ["http://alice:s3cret@h:99999/", "ftp://alice:s3cret@h/", "http://alice:s3cret@[::1/"]
)
def test_an_invalid_url_error_never_shows_its_password(url: str) -> None:
    # the scheduler logs these reasons
    with pytest.raises(SiteError) as caught:
        Site.from_dict({"id": "a", "url": url})
    assert "s3cret" not in str(caught.value)
    assert "***@" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "published"),
    [
        ("http://alice:s3cret@example.com/x", "http://***@example.com/x"),
        ("https://token@example.com:8443", "https://***@example.com:8443"),
        ("http://a:b@c@example.com/?q=@", "http://***@example.com/?q=@"),
        ("http://example.com/a@b?c=d@e#f@g", "http://example.com/a@b?c=d@e#f@g"),
        ("http://example.com", "http://example.com"),
    ],
)
def test_redact_url(url: str, published: str) -> None:
    assert redact_url(url) == published
