"""``/v1/sites/{id}/status``, ``/v1/sites/{id}/checks`` and ``/v1/report``: from PostgreSQL.

The report is ``webchecker report --json``'s, from the same code (``webchecker.report``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from webchecker.api.models import SITE_ID, CheckPage, Report, SiteStatus
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
from webchecker.api.sites import find_site
from webchecker.exceptions import InvalidRequest
from webchecker.report import build_report, parse_since
from webchecker.results import format_timestamp, parse_timestamp

SiteIdPath = Annotated[str, Path(description="the site's id", max_length=200)]
Moment = Annotated[
    str | None,
    Query(max_length=64, description="a duration before now (30m, 24h, 7d) or RFC 3339"),
]


def router(services: Services) -> Router:
    routes = Router()  # type: ignore[no-untyped-call]  # Powertools: untyped
    reader = ResultsReader(services.database)

    @routes.get(
        "/sites/<site_id>/status",
        summary="A site's state now",
        description="up, down or unknown from its checks; disabled or maintenance first when "
        "they apply; with its latest check and open incident.",
        responses=problems(404, 422),
        tags=["results"],
    )
    def site_status(site_id: SiteIdPath) -> SiteStatus:
        site = find_site(services.sites, site_id)
        tags = list(getattr(site, "tags", ()))
        found = reader.status(site_id, tags)
        state_row = found["state"]
        state, since, flapping = state_row if state_row else ("unknown", None, False)
        window = found["window"]
        if not site.enabled:
            state, since = "disabled", None
        elif window is not None:
            state, since = "maintenance", window["starts_at"]
        elif isinstance(since, datetime):
            since = format_timestamp(since)
        return SiteStatus.model_validate(
            {
                "site_id": site_id,
                "state": state,
                "since": since,
                "flapping": bool(flapping),
                "last_check": found["last_check"],
                "incident": found["incident"],
                "maintenance": window,
            }
        )

    @routes.get(
        "/sites/<site_id>/checks",
        summary="A site's checks, newest first",
        responses=problems(404, 422),
        tags=["results"],
    )
    def site_checks(
        site_id: SiteIdPath,
        since: Moment = None,
        until: Moment = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, Query(max_length=MAX_CURSOR)] = None,
    ) -> CheckPage:
        find_site(services.sites, site_id)
        after = None
        if cursor is not None:
            at, check_id = decode_cursor(cursor, str, str)
            after = (_cursor_time(at), _cursor_uuid(check_id))
        page = reader.checks(
            site_id,
            since=_moment("since", since),
            until=_moment("until", until),
            limit=limit,
            after=after,
        )
        next_cursor = None
        if page.after is not None:
            next_cursor = encode_cursor(page.after[0].isoformat(), page.after[1])
        return CheckPage.model_validate({"checks": page.rows, "next_cursor": next_cursor})

    @routes.get(
        "/report",
        summary="Availability and latency per site",
        description="The objects of `webchecker report --json`, from the same code.",
        responses=problems(422),
        tags=["results"],
    )
    def report(
        since: Annotated[
            str, Query(max_length=64, description="a duration (30m, 24h, 7d) or RFC 3339")
        ] = "24h",
        site: Annotated[str | None, Query(pattern=SITE_ID)] = None,
    ) -> Report:
        start = _moment("since", since)
        assert start is not None
        reports = build_report(services.database, since=start, site_id=site)
        return Report.model_validate({"sites": [r.to_json() for r in reports]})

    return routes


def _moment(field: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = parse_since(text)
    except (ValueError, OverflowError) as error:
        raise InvalidRequest(str(error), field=field) from None
    if not 1 < moment.year < 9999:
        raise InvalidRequest(f"{text!r} is out of range", field=field)
    return moment


def _cursor_time(text: Any) -> datetime:
    try:
        return parse_timestamp(text)
    except (ValueError, TypeError):
        raise InvalidRequest("is not a cursor this API gave out", field="cursor") from None


def _cursor_uuid(text: Any) -> str:
    try:
        return str(uuid.UUID(text))
    except (ValueError, TypeError, AttributeError):
        raise InvalidRequest("is not a cursor this API gave out", field="cursor") from None
