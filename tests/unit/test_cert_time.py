"""The certificate expiry parser agrees with the standard library's (which it replaces for
speed) on every date, and falls back to it on anything unusual."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webchecker.check.connection import _certificate_expiry, _parse_cert_time

moments = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9000, 12, 31)).map(
    lambda moment: moment.replace(microsecond=0, tzinfo=UTC)
)


@given(moments, st.booleans())
def test_agrees_with_cert_time_to_seconds(moment: datetime, padded: bool) -> None:
    day = f"{moment.day:2d}" if padded else str(moment.day)
    text = f"{moment:%b} {day} {moment:%H:%M:%S} {moment.year} GMT"
    expected = datetime.fromtimestamp(ssl.cert_time_to_seconds(text), UTC)
    assert _parse_cert_time(text) == expected == moment


@pytest.mark.parametrize(
    "text", ["", "Foo  5 09:34:43 2026 GMT", "Jan 32 09:34:43 2026 GMT", "Jan 5 9:34 2026 GMT"]
)
def test_unusual_text_gives_none_not_an_exception(text: str) -> None:
    assert _parse_cert_time(text) is None


@pytest.mark.parametrize("certificate", [None, {}, {"notAfter": 5}, "Jan  5 09:34:43 2026 GMT"])
def test_no_usable_certificate_gives_no_expiry(certificate: object) -> None:
    assert _certificate_expiry(certificate) is None


def test_a_decoded_certificate_gives_its_expiry() -> None:
    expiry = _certificate_expiry({"notAfter": "Jan  5 09:34:43 2026 GMT"})
    assert expiry == datetime(2026, 1, 5, 9, 34, 43, tzinfo=UTC)
