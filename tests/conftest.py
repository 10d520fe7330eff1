"""Shared pytest setup. Fixtures live in tests/fixtures/, one plugin module per service."""

pytest_plugins = [
    "tests.fixtures.lambda_context",
    "tests.fixtures.kafka",
    "tests.fixtures.postgres",
    "tests.fixtures.http_targets",
    "tests.fixtures.aws",
]
