"""Shared pytest setup. Fixtures live in tests/fixtures/, one plugin module per service."""

from collections.abc import Iterator

import pytest
from aws_lambda_powertools import Metrics

pytest_plugins = [
    "tests.fixtures.lambda_context",
    "tests.fixtures.kafka",
    "tests.fixtures.postgres",
    "tests.fixtures.http_targets",
    "tests.fixtures.aws",
]


@pytest.fixture(autouse=True)
def _fresh_powertools_metrics() -> Iterator[None]:
    """Powertools keeps one metric set for every ``Metrics`` instance, and with
    POWERTOOLS_METRICS_DISABLED it is never flushed: after 100 values of one metric across
    tests it would serialize without a namespace and raise. Each test starts empty."""
    yield
    Metrics().clear_metrics()
