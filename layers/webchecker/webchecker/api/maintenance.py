"""``/v1/maintenance``: windows in which checks are stored but no incident opens.

A window covers the sites in ``site_ids``, the sites with any of ``tags``, or, with
neither, every site. The writer reads the same table (``maintenance_windows``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from webchecker.api.models import MAX_TEXT, MaintenanceWindow, SiteId, Tag, Text
from webchecker.api.problems import problems
from webchecker.api.queries import ResultsReader
from webchecker.api.services import Services
from webchecker.exceptions import NotFound


def _rfc3339(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("is not an RFC 3339 timestamp, e.g. 2026-01-31T22:00:00Z") from None
    if moment.tzinfo is None:
        raise ValueError("needs a UTC offset (Z or +hh:mm)")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


Timestamp = Annotated[
    datetime,
    BeforeValidator(_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class WindowInput(BaseModel):
    """A new maintenance window."""

    model_config = ConfigDict(extra="forbid", strict=True)

    site_ids: list[SiteId] | None = Field(default=None, min_length=1, max_length=100)
    tags: list[Tag] | None = Field(default=None, min_length=1, max_length=10)
    starts_at: Timestamp
    ends_at: Timestamp
    reason: Text = Field(default="", max_length=MAX_TEXT)

    @field_validator("ends_at")
    @classmethod
    def _after_start(cls, ends_at: datetime, info: ValidationInfo) -> datetime:
        starts_at = info.data.get("starts_at")
        if isinstance(starts_at, datetime) and ends_at <= starts_at:
            raise ValueError("must be after starts_at")
        return ends_at


class WindowList(BaseModel):
    windows: list[MaintenanceWindow]


def router(services: Services) -> Router:
    routes = Router()  # type: ignore[no-untyped-call]  # Powertools: untyped
    reader = ResultsReader(services.database)

    @routes.get(
        "/maintenance",
        summary="Maintenance windows",
        description="Windows that have not ended, by start; `include_ended=true` adds the "
        "past ones (at most 1,000).",
        responses=problems(422),
        tags=["maintenance"],
    )
    def list_windows(include_ended: Annotated[bool, Query()] = False) -> WindowList:
        return WindowList.model_validate({"windows": reader.windows(include_ended=include_ended)})

    @routes.post(
        "/maintenance",
        summary="Add a maintenance window",
        status_code=201,
        responses=problems(422, ok=201),
        tags=["maintenance"],
    )
    def add_window(window: WindowInput) -> Response[MaintenanceWindow]:
        created = reader.add_window(
            site_ids=window.site_ids,
            tags=window.tags,
            starts_at=window.starts_at,
            ends_at=window.ends_at,
            reason=window.reason,
        )
        return Response(
            status_code=201,
            content_type="application/json",
            body=MaintenanceWindow.model_validate(created),
            headers={"Location": f"/v1/maintenance/{created['id']}"},
        )

    @routes.delete(
        "/maintenance/<window_id>",
        summary="Remove a maintenance window",
        status_code=204,
        responses=problems(404, ok=204),
        tags=["maintenance"],
    )
    def delete_window(window_id: Annotated[str, Path(max_length=100)]) -> Response[None]:
        try:
            key = str(uuid.UUID(window_id))
        except ValueError:
            raise NotFound(f"no maintenance window {window_id!r}") from None
        if not reader.delete_window(key):
            raise NotFound(f"no maintenance window {window_id!r}")
        return Response(status_code=204, body=None)

    return routes
