"""Errors as problem details (RFC 9457, ``application/problem+json``), decided in one place.

Routes only say what succeeds and raise the package's exceptions; the handlers installed
here turn them into responses: bad input 400/422 (every invalid field named, as the CLI
names them), a missing thing 404, an unknown method 405, a lost race 409, a stale
``If-Match`` 412, infrastructure 503, anything else 500 with no detail. No response ever
carries a stack trace, a Python type or a stored secret.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from webchecker.exceptions import (
    InvalidRequest,
    NotFound,
    PreconditionFailed,
    SiteConflict,
    SiteError,
    SiteStoreError,
    StoreUnavailable,
    SubscriptionError,
)

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
MAX_DETAIL = 1000
# RFC 9110's names (Python's HTTPStatus phrases differ between versions for 413 and 422)
TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


def title(status: int) -> str:
    return TITLES.get(status) or HTTPStatus(status).phrase


def problem(
    status: int,
    detail: str,
    *,
    errors: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[str]:
    """A problem+json response; ``errors`` (422) lists ``{"field", "message"}``."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title(status),
        "status": status,
        "detail": detail[:MAX_DETAIL],
    }
    if errors is not None:
        body["errors"] = [dict(error) for error in errors]
    return Response(
        status_code=status,
        content_type=PROBLEM_JSON,
        body=json.dumps(body, ensure_ascii=False),
        headers=dict(headers or {}),
    )


def problems(*statuses: int, ok: int = 200) -> dict[int, OpenAPIResponse]:
    """A route's OpenAPI responses: success ``ok`` (its schema from the route's return
    type; none for 204) and each error status as a problem+json document."""
    success: OpenAPIResponse = {"description": title(ok)}
    if ok == 204:
        success["content"] = {}
    responses: dict[int, OpenAPIResponse] = {ok: success}
    for status in statuses:
        responses[status] = {
            "description": title(status),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return responses


def invalid(field: str, message: str) -> Response[str]:
    return problem(422, f"{field}: {message}", errors=[{"field": field, "message": message}])


class RouteTable:
    """Which methods each path of the API accepts: tells 405 from 404."""

    def __init__(self, routes: Iterable[tuple[str, str]]) -> None:
        table: dict[str, set[str]] = {}
        for method, path in routes:
            table.setdefault(path, set()).add(method.upper())
        self._patterns = [
            (re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$"), methods)
            for path, methods in table.items()
        ]

    def allowed(self, path: str) -> set[str]:
        found: set[str] = set()
        for pattern, methods in self._patterns:
            if pattern.match(path):
                found |= methods
        return found


ErrorHandler = Callable[[Any], Response[str]]


def _on(app: APIGatewayHttpResolver, kinds: Any) -> Callable[[ErrorHandler], ErrorHandler]:
    """``app.exception_handler(kinds)`` with its type (Powertools leaves it untyped)."""
    register: Callable[[ErrorHandler], ErrorHandler] = app.exception_handler(kinds)
    return register


def install(app: APIGatewayHttpResolver, routes: RouteTable) -> None:
    """Registers the exception handlers that make every error a problem+json response."""

    @_on(app, NotFoundError)
    def not_found(_: NotFoundError) -> Response[str]:
        path = app.current_event.path
        allowed = routes.allowed(path)
        if allowed:
            method = app.current_event.http_method.upper()
            return problem(
                405,
                f"{method} is not allowed on {path}; allowed: {', '.join(sorted(allowed))}",
                headers={"Allow": ", ".join(sorted(allowed))},
            )
        return problem(404, "no such resource; the API lives under /v1 (GET /v1/openapi.json)")

    @_on(app, RequestValidationError)
    def request_invalid(error: RequestValidationError) -> Response[str]:
        details = error.errors()
        if any(item.get("type") == "json_invalid" for item in details):
            return problem(400, "the request body is not valid JSON")
        errors = [_field_error(item) for item in details]
        return problem(
            422, "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors
        )

    @_on(app, RequestUnsupportedContentType)
    def unsupported_type(_: RequestUnsupportedContentType) -> Response[str]:
        return problem(415, "send the body as JSON with Content-Type: application/json")

    @_on(app, [RecursionError, UnicodeDecodeError])
    def unreadable_body(error: Exception) -> Response[str]:
        # raised while Powertools decodes the body: nested too deeply, or not UTF-8
        return problem(400, "the request body is not valid JSON (too deeply nested, or not UTF-8)")

    @_on(app, SiteError)
    def site_invalid(error: SiteError) -> Response[str]:
        field = error.field or "site"  # the whole object (unknown keys, size)
        return problem(422, str(error), errors=[{"field": field, "message": error.reason}])

    @_on(app, InvalidRequest)
    def request_field_invalid(error: InvalidRequest) -> Response[str]:
        return invalid(error.field, error.reason)

    @_on(app, NotFound)
    def missing(error: NotFound) -> Response[str]:
        return problem(404, str(error))

    @_on(app, SiteConflict)
    def conflict(error: SiteConflict) -> Response[str]:
        return problem(409, str(error))

    @_on(app, PreconditionFailed)
    def precondition(error: PreconditionFailed) -> Response[str]:
        return problem(412, str(error))

    @_on(app, [StoreUnavailable, SiteStoreError, SubscriptionError])
    def unavailable(error: Exception) -> Response[str]:
        logger.warning("service unavailable: %s", error)
        return problem(503, "a service behind the API is unavailable; try again later")

    @_on(app, Exception)
    def unexpected(error: Exception) -> Response[str]:
        logger.exception("unexpected error")
        return problem(500, "internal error; it has been logged")


def _field_error(item: Mapping[str, Any]) -> dict[str, str]:
    """A Pydantic error as ``{"field", "message"}``: the dotted location after body/query."""
    location = [str(part) for part in item.get("loc", ())]
    if location and location[0] in ("body", "query", "path", "header"):
        location = location[1:]
    field = ".".join(location) or "body"
    message = str(item.get("msg") or item.get("type") or "invalid").removeprefix("Value error, ")
    if item.get("type") == "missing":
        message = "is required"
    return {"field": field, "message": message}
