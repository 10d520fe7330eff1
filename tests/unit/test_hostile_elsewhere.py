"""The same classes of bug as issue 9's samples, found elsewhere: values out of the
calendar's range and non-finite numbers in settings. Each is one clear error."""

from __future__ import annotations

import pytest

from webchecker.config import env_float
from webchecker.exceptions import ConfigurationError
from webchecker.report import parse_since


@pytest.mark.parametrize(
    "text",
    ["99999999999d", "9999999999999w", "0001-01-01T00:00:00+01:00", "9999-12-31T23:00-05:00"],
)
def test_report_since_out_of_range_is_a_value_error(text: str) -> None:
    # OverflowError before, a traceback out of `webchecker report --since`
    with pytest.raises(ValueError, match=r"out of range|further back"):
        parse_since(text)


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "1e999", "NaN"])
def test_float_settings_must_be_finite(raw: str) -> None:
    with pytest.raises(ConfigurationError, match=r"RETENTION_INTERVAL_SECONDS=.*finite"):
        env_float("RETENTION_INTERVAL_SECONDS", 1.0, {"RETENTION_INTERVAL_SECONDS": raw}, minimum=0)
