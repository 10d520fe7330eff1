"""``/v1/incidents``: periods in which sites were down, newest first (from PostgreSQL)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from webchecker.api.models import SITE_ID, IncidentPage
from webchecker.api.pagination import (
    DEFAULT_LIMIT,
    MAX_CURSOR,
    MAX_LIMIT,
    decode_cursor,
    encode_cursor,
)
from webchecker.api.problems import problems
from webchecker.api.queries import ResultsReader
from webchecker.api.services import Services
from webchecker.exceptions import InvalidRequest
from webchecker.results import parse_timestamp


def router(services: Services) -> Router:
    routes = Router()  # type: ignore[no-untyped-call]  # Powertools: untyped
    reader = ResultsReader(services.database)

    @routes.get(
        "/incidents",
        summary="Incidents, newest first",
        responses=problems(422),
        tags=["incidents"],
    )
    def list_incidents(
        site_id: Annotated[str | None, Query(pattern=SITE_ID)] = None,
        state: Annotated[Literal["open", "resolved"] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, Query(max_length=MAX_CURSOR)] = None,
    ) -> IncidentPage:
        after = None
        if cursor is not None:
            at, incident_id = decode_cursor(cursor, str, str)
            try:
                after = (parse_timestamp(at), str(uuid.UUID(incident_id)))
            except ValueError:
                raise InvalidRequest("is not a cursor this API gave out", field="cursor") from None
        page = reader.incidents(site_id=site_id, state=state, limit=limit, after=after)
        next_cursor = None
        if page.after is not None:
            next_cursor = encode_cursor(page.after[0].isoformat(), page.after[1])
        return IncidentPage.model_validate({"incidents": page.rows, "next_cursor": next_cursor})

    return routes
