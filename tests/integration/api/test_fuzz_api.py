"""Property-based fuzzing from the OpenAPI document (Schemathesis) against the local server.

Every operation gets a few generated requests, valid and invalid: none may get a 5xx, every
response must match the document (status, content type, body schema), invalid input must
be refused, and Parameter Store must hold only valid sites afterwards. Bounded (a handful
of examples per operation) so it runs in well under a minute.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.aws import snapshot_parameters
from tests.integration.api.conftest import SITES_PATH
from webchecker.api.app import Api
from webchecker.local.api_server import ApiServer
from webchecker.sites import load_sites

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[3]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture
def api_server(api_env: dict[str, str]) -> Iterator[str]:
    api = Api.from_env()
    with ApiServer(api.handle) as running:
        yield running.url
    api.services.close()


def local_document() -> dict[str, Any]:
    """The committed document (a test keeps it equal to what the server serves), without
    the SigV4 requirement: API Gateway checks signatures in AWS, loopback asks for none.
    (schemathesis.pytest.from_fixture would load it from the server, but needs pytest < 9.)
    """
    document: dict[str, Any] = json.loads((ROOT / "docs" / "openapi.json").read_text())
    document.pop("security", None)
    return document


schema = schemathesis.openapi.from_dict(local_document())


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_responses_match_the_document(
    case: Any, api_server: str, ssm_client: SSMClient
) -> None:
    case.call_and_validate(base_url=api_server, checks=CHECKS)
    stored = snapshot_parameters(ssm_client, SITES_PATH)
    catalog = load_sites({name: value for name, (_, value, _) in stored.items()})
    assert catalog.invalid == (), catalog.invalid
