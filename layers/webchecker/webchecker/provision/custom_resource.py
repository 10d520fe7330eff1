"""The CloudFormation custom resource protocol: one request in, one reply to a presigned URL.

CloudFormation waits for the reply (PUT to ``ResponseURL``) and fails the stack update when
it says FAILED, or when none comes before the resource's ``ServiceTimeout``. So every
outcome, including an unexpected exception, is answered; only an unreachable reply URL (no
NAT and no S3 gateway endpoint) leaves CloudFormation waiting.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from webchecker.exceptions import InvalidEvent

logger = logging.getLogger(__name__)

REQUEST_TYPES = ("Create", "Update", "Delete")
MAX_REASON = 1000  # CloudFormation shows the reason in the stack's events; keep it readable
REPLY_TIMEOUT_S = 30.0


@dataclass(frozen=True, kw_only=True)
class Request:
    """One custom resource request (the fields the reply must echo, and the properties)."""

    request_type: Literal["Create", "Update", "Delete"]
    response_url: str
    stack_id: str
    request_id: str
    logical_resource_id: str
    physical_resource_id: str | None
    properties: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Request:
        request_type = event.get("RequestType")
        if request_type not in REQUEST_TYPES:
            raise InvalidEvent(f"RequestType: expected one of {', '.join(REQUEST_TYPES)}")
        values: dict[str, str] = {}
        for key in ("ResponseURL", "StackId", "RequestId", "LogicalResourceId"):
            value = event.get(key)
            if not isinstance(value, str) or not value:
                raise InvalidEvent(f"{key}: required string")
            values[key] = value
        properties = event.get("ResourceProperties") or {}
        if not isinstance(properties, Mapping):
            raise InvalidEvent("ResourceProperties: expected an object")
        physical = event.get("PhysicalResourceId")
        return cls(
            request_type=request_type,
            response_url=values["ResponseURL"],
            stack_id=values["StackId"],
            request_id=values["RequestId"],
            logical_resource_id=values["LogicalResourceId"],
            physical_resource_id=physical if isinstance(physical, str) else None,
            properties=properties,
        )


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What the handler decided: the resource's id and the attributes ``!GetAtt`` reads."""

    physical_resource_id: str
    data: Mapping[str, str] = field(default_factory=dict)


def reply_body(
    request: Request, *, status: Literal["SUCCESS", "FAILED"], reason: str, outcome: Outcome
) -> dict[str, Any]:
    return {
        "Status": status,
        "Reason": reason[:MAX_REASON],
        "PhysicalResourceId": outcome.physical_resource_id,
        "StackId": request.stack_id,
        "RequestId": request.request_id,
        "LogicalResourceId": request.logical_resource_id,
        "NoEcho": False,
        "Data": dict(outcome.data),
    }


def send_reply(url: str, body: Mapping[str, Any]) -> None:
    """PUTs the reply to the presigned URL (S3 wants no Content-Type it did not sign)."""
    if urlsplit(url).scheme not in {"https", "http"}:
        raise InvalidEvent("ResponseURL: expected an https URL")
    data = json.dumps(body).encode()
    headers = {"Content-Type": "", "Content-Length": str(len(data))}
    request = urllib.request.Request(url, data=data, method="PUT", headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=REPLY_TIMEOUT_S) as response:  # noqa: S310
        response.read()


def serve(
    event: Mapping[str, Any],
    handler: Callable[[Request], Outcome],
    *,
    log_name: str,
    send: Callable[[str, Mapping[str, Any]], None] = send_reply,
) -> dict[str, Any]:
    """Runs ``handler`` for the request and always replies; returns the reply body.

    A failed Create gets ``<log_name>-failed`` as its id (CloudFormation then sends a Delete
    for it during rollback, which must not undo anything); a failed Update or Delete keeps
    the id it had.
    """
    request = Request.from_event(event)
    fallback_id = request.physical_resource_id or f"{log_name}-failed"
    try:
        outcome = handler(request)
        body = reply_body(request, status="SUCCESS", reason="done", outcome=outcome)
    except Exception as error:  # every failure must reach CloudFormation, named
        logger.exception("%s %s failed", request.request_type, request.logical_resource_id)
        reason = f"{type(error).__name__}: {error} (log: {log_name})"
        failed = Outcome(physical_resource_id=fallback_id)
        body = reply_body(request, status="FAILED", reason=reason, outcome=failed)
    send(request.response_url, body)
    return body
