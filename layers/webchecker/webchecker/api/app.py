"""The REST API: the resolver, its routers under ``/v1``, the OpenAPI document, problems.

``Api.handle(event, context)`` is what ``functions/api/app.py`` calls for every API
Gateway HTTP API request (payload 2.0), and what the local API server calls for requests
on loopback. The OpenAPI document comes from the routes' models; ``openapi_document()``
then states the errors as problem+json (Powertools documents its own 422 shape) and is
served at ``GET /v1/openapi.json`` and committed as ``docs/openapi.json``.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from webchecker.api import incidents, maintenance, problems, results, sites, subscriptions
from webchecker.api.models import Problem
from webchecker.api.services import ApiSettings, Services

PREFIX = "/v1"
OPENAPI_PATH = f"{PREFIX}/openapi.json"
TITLE = "Webchecker API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Manage the watched sites, maintenance windows and alert subscriptions; read checks, "
    "status, incidents and reports. In AWS every request is signed (SigV4, IAM). Errors "
    "are application/problem+json (RFC 9457)."
)
ROUTERS = (sites, results, incidents, maintenance, subscriptions)


class Api:
    """One resolver over one container's services."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.app = APIGatewayHttpResolver(enable_validation=True)
        for module in ROUTERS:
            self.app.include_router(module.router(services), prefix=PREFIX)
        self._document = json.dumps(openapi_document(self.app), ensure_ascii=False)

        @self.app.get(OPENAPI_PATH, include_in_schema=False)
        def openapi() -> Response[str]:
            return Response(200, content_type="application/json", body=self._document)

        routes = [
            (method, path)
            for path, operations in json.loads(self._document)["paths"].items()
            for method in operations
        ]
        self.routes = problems.RouteTable([*routes, ("GET", OPENAPI_PATH)])
        problems.install(self.app, self.routes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Api:
        return cls(Services(ApiSettings.from_env(env)))

    @property
    def document(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self._document)
        return parsed

    def handle(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        refused = self._refuse_body(event)
        if refused is not None:
            return refused
        return self.app.resolve(dict(event), context)

    def _refuse_body(self, event: Mapping[str, Any]) -> dict[str, Any] | None:
        """Every body is one JSON object sent as JSON: 415, 400 or 422 before validation.

        (Powertools would otherwise parse form bodies too, and take the first element of
        an array body.) Only for routes that take a body: an unknown one stays 404/405.
        """
        http = (event.get("requestContext") or {}).get("http") or {}
        method = str(http.get("method", "")).upper()
        body = event.get("body")
        if method not in ("POST", "PUT", "PATCH") or not body:
            return None
        if method not in self.routes.allowed(str(event.get("rawPath", ""))):
            return None
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            return payload(
                problems.problem(415, "send the body as JSON with Content-Type: application/json")
            )
        try:
            raw = base64.b64decode(body) if event.get("isBase64Encoded") else str(body).encode()
            parsed = json.loads(raw.decode("utf-8"), parse_constant=_not_json)
        except (ValueError, RecursionError):
            return payload(problems.problem(400, "the request body is not valid JSON"))
        if not isinstance(parsed, dict):
            return payload(problems.invalid("body", "must be a JSON object"))
        return None


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}}


def _not_json(constant: str) -> Any:
    # Python's json reads NaN, Infinity and -Infinity; JSON (RFC 8259) has no such numbers
    raise ValueError(f"{constant} is not a JSON number")


def payload(response: Response[str]) -> dict[str, Any]:
    """A problem response in the payload 2.0 response format."""
    return {
        "statusCode": response.status_code,
        "headers": {"Content-Type": problems.PROBLEM_JSON, **(response.headers or {})},
        "body": response.body,
        "isBase64Encoded": False,
    }


def openapi_document(app: APIGatewayHttpResolver) -> dict[str, Any]:
    """The OpenAPI document of ``app`` with every error response as problem+json."""
    document: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(title=TITLE, version=VERSION, description=DESCRIPTION)
    )
    document = copy.deepcopy(document)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["Problem"] = problem_schema
    problem_content = {problems.PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status in ("422", "500"):
                responses[status] = {
                    "description": "Invalid request" if status == "422" else "Internal error",
                    "content": problem_content,
                }
            if "requestBody" in operation:
                responses["400"] = {"description": "Body is not JSON", "content": problem_content}
                responses["415"] = {
                    "description": "Body is not sent as application/json",
                    "content": problem_content,
                }
            for status in ("503",):
                responses.setdefault(
                    status, {"description": "Unavailable", "content": problem_content}
                )
            if "204" in responses:
                responses["204"].pop("content", None)
            if "201" in responses:
                responses["201"]["headers"] = {"Location": _header("where it is: /v1/...")}
    # a site's version: on each response carrying one site (not the list, not a delete)
    etag = _header("the site's version, for If-Match")
    for path, operations in document.get("paths", {}).items():
        if not path.startswith(f"{PREFIX}/sites") or path.endswith(("/status", "/checks")):
            continue
        for method, operation in operations.items():
            one_site = method != "get" or path.endswith("}")
            for status in ("200", "201"):
                if one_site and status in operation["responses"]:
                    operation["responses"][status].setdefault("headers", {})["ETag"] = etag
    document["security"] = [{"sigv4": []}]
    document.setdefault("components", {})["securitySchemes"] = {
        "sigv4": {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "description": "AWS Signature Version 4 (IAM), e.g. awscurl --service execute-api",
        }
    }
    return document
