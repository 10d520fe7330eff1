"""``/v1/subscriptions``: who receives alerts: the alert topic's SNS subscriptions.

A subscription's filter (``site_ids``, ``tags``, ``types``) becomes its SNS filter policy
on the message attributes the notifier sets (``site_id``, ``tags``, ``type``); a filter
left empty matches everything. Email and HTTPS endpoints must confirm first: until then a
subscription is ``pending_confirmation`` (and SNS lists it without an ARN, so it has no
id yet unless this API created it).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from webchecker.api.models import SiteId, Tag, Text
from webchecker.api.problems import problems
from webchecker.api.services import Services
from webchecker.exceptions import InvalidRequest, NotFound, SubscriptionError

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

AlertType = Literal[
    "incident.opened", "incident.resolved", "incident.reminder", "certificate.expiring"
]
Protocol = Literal["email", "https", "sqs", "lambda"]
# SNS: at most 150 combinations of values across a filter policy's keys.
MAX_FILTER_COMBINATIONS = 150
_ENDPOINTS = {
    "email": re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+"),
    "sqs": re.compile(r"arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,80}"),
    "lambda": re.compile(
        r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9$_-]{1,128})?"
    ),
}
_EXAMPLES = {
    "email": "ops@example.com",
    "https": "https://hooks.example.com/webchecker",
    "sqs": "arn:aws:sqs:REGION:ACCOUNT:QUEUE",
    "lambda": "arn:aws:lambda:REGION:ACCOUNT:function:NAME",
}
_ID = re.compile(r"[0-9a-fA-F-]{36}")


class SubscriptionFilter(BaseModel):
    """Which alerts are sent: every list given must match (within a list, any value)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    site_ids: list[SiteId] | None = Field(default=None, min_length=1, max_length=100)
    tags: list[Tag] | None = Field(default=None, min_length=1, max_length=10)
    types: list[AlertType] | None = Field(default=None, min_length=1, max_length=4)


class SubscriptionInput(BaseModel):
    """A new subscription to the alert topic."""

    model_config = ConfigDict(extra="forbid", strict=True)

    protocol: Protocol
    endpoint: Text = Field(min_length=1, max_length=2048)
    filter: SubscriptionFilter = Field(default_factory=SubscriptionFilter)

    @field_validator("endpoint")
    @classmethod
    def _fits_protocol(cls, endpoint: str, info: ValidationInfo) -> str:
        protocol = info.data.get("protocol")
        if protocol == "https":
            try:
                parts = urlsplit(endpoint)
                ok = parts.scheme == "https" and bool(parts.hostname) and " " not in endpoint
            except ValueError:
                ok = False
        elif isinstance(protocol, str) and protocol in _ENDPOINTS:
            ok = _ENDPOINTS[protocol].fullmatch(endpoint) is not None
        else:
            return endpoint  # the protocol's own error says enough
        if not ok:
            raise ValueError(f"is not a {protocol} endpoint, e.g. {_EXAMPLES[str(protocol)]}")
        return endpoint


class Subscription(BaseModel):
    id: str | None = Field(description="null for a pending subscription made elsewhere")
    protocol: str
    endpoint: str
    filter: SubscriptionFilter
    status: Literal["confirmed", "pending_confirmation"]


class SubscriptionList(BaseModel):
    subscriptions: list[Subscription]


def filter_policy(wanted: SubscriptionFilter) -> dict[str, list[str]]:
    """The SNS filter policy of ``wanted`` (message attributes site_id, tags, type)."""
    policy: dict[str, list[str]] = {}
    if wanted.site_ids:
        policy["site_id"] = list(wanted.site_ids)
    if wanted.tags:
        policy["tags"] = list(wanted.tags)
    if wanted.types:
        policy["type"] = list(wanted.types)
    return policy


def filter_from_policy(text: str | None) -> SubscriptionFilter:
    """The filter a policy stands for (keys this API does not write are ignored)."""
    try:
        policy = json.loads(text) if text else {}
    except ValueError:
        policy = {}
    values: dict[str, Any] = {}
    if isinstance(policy, Mapping):
        for key, name in (("site_id", "site_ids"), ("tags", "tags"), ("type", "types")):
            found = policy.get(key)
            if isinstance(found, list) and found and all(isinstance(v, str) for v in found):
                values[name] = found
    try:
        return SubscriptionFilter.model_validate(values)
    except ValueError:
        return SubscriptionFilter()


def describe(arn: str, attributes: Mapping[str, str]) -> Subscription:
    """A subscription from its SNS attributes (``arn`` may be ``PendingConfirmation``)."""
    pending = arn == "PendingConfirmation" or attributes.get("PendingConfirmation") == "true"
    return Subscription(
        id=None if arn == "PendingConfirmation" else arn.rsplit(":", 1)[-1],
        protocol=attributes.get("Protocol", ""),
        endpoint=attributes.get("Endpoint", ""),
        filter=filter_from_policy(attributes.get("FilterPolicy")),
        status="pending_confirmation" if pending else "confirmed",
    )


class Topic:
    """The alert topic's subscriptions through one SNS client."""

    def __init__(self, services: Services) -> None:
        self._services = services

    @property
    def arn(self) -> str:
        arn = self._services.settings.alert_topic_arn
        if not arn:
            raise SubscriptionError("ALERT_TOPIC_ARN is not set: no alert topic to subscribe to")
        return arn

    @property
    def sns(self) -> SNSClient:
        return self._services.sns

    def list(self) -> list[Subscription]:
        found: list[Subscription] = []
        try:
            pages = self.sns.get_paginator("list_subscriptions_by_topic").paginate(
                TopicArn=self.arn
            )
            for page in pages:
                for item in page.get("Subscriptions", []):
                    arn = item.get("SubscriptionArn", "")
                    attributes: dict[str, str] = {
                        "Protocol": item.get("Protocol", ""),
                        "Endpoint": item.get("Endpoint", ""),
                    }
                    if arn != "PendingConfirmation":
                        attributes.update(self._attributes(arn) or {})
                    found.append(describe(arn, attributes))
        except (ClientError, BotoCoreError) as error:
            raise SubscriptionError(f"cannot list subscriptions: {error}") from error
        return found

    def subscribe(self, wanted: SubscriptionInput) -> Subscription:
        policy = filter_policy(wanted.filter)
        combinations = math.prod(len(values) for values in policy.values()) if policy else 0
        if combinations > MAX_FILTER_COMBINATIONS:
            raise InvalidRequest(
                f"{combinations} combinations of site_ids, tags and types; SNS allows at most "
                f"{MAX_FILTER_COMBINATIONS}",
                field="filter",
            )
        attributes = {"FilterPolicyScope": "MessageAttributes"}
        if policy:
            attributes["FilterPolicy"] = json.dumps(policy)
        try:
            created = self.sns.subscribe(
                TopicArn=self.arn,
                Protocol=wanted.protocol,
                Endpoint=wanted.endpoint,
                Attributes=attributes,
                ReturnSubscriptionArn=True,
            )
        except ClientError as error:
            if _code(error) == "InvalidParameter":
                raise InvalidRequest(_message(error), field="endpoint") from None
            raise SubscriptionError(f"cannot subscribe: {error}") from error
        except BotoCoreError as error:
            raise SubscriptionError(f"cannot subscribe: {error}") from error
        arn = created.get("SubscriptionArn", "")
        # what SNS says now; a pending one may not be readable yet: what was asked for
        asked = {
            "Protocol": wanted.protocol,
            "Endpoint": wanted.endpoint,
            "FilterPolicy": attributes.get("FilterPolicy", ""),
            "PendingConfirmation": "true",
        }
        return describe(arn, self._attributes(arn) or asked)

    def unsubscribe(self, subscription_id: str) -> None:
        if not _ID.fullmatch(subscription_id):
            raise NotFound(f"no subscription {subscription_id!r}")
        arn = f"{self.arn}:{subscription_id}"
        if self._attributes(arn) is None:
            raise NotFound(f"no subscription {subscription_id!r}")
        try:
            self.sns.unsubscribe(SubscriptionArn=arn)
        except (ClientError, BotoCoreError) as error:
            raise SubscriptionError(f"cannot unsubscribe: {error}") from error

    def _attributes(self, arn: str) -> dict[str, str] | None:
        """A subscription's attributes; None when it does not exist (or is not ours)."""
        try:
            found = self.sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
        except ClientError as error:
            if _code(error) in ("NotFound", "InvalidParameter"):
                return None
            raise SubscriptionError(f"cannot read {arn}: {error}") from error
        except BotoCoreError as error:
            raise SubscriptionError(f"cannot read {arn}: {error}") from error
        if found.get("TopicArn") != self.arn:
            return None
        return dict(found)


def router(services: Services) -> Router:
    routes = Router()  # type: ignore[no-untyped-call]  # Powertools: untyped
    topic = Topic(services)

    @routes.get(
        "/subscriptions",
        summary="Subscriptions to the alerts",
        responses=problems(503),
        tags=["subscriptions"],
    )
    def list_subscriptions() -> SubscriptionList:
        return SubscriptionList(subscriptions=topic.list())

    @routes.post(
        "/subscriptions",
        summary="Subscribe an endpoint to the alerts",
        description="Email and HTTPS endpoints receive a confirmation request first.",
        status_code=201,
        responses=problems(422, 503, ok=201),
        tags=["subscriptions"],
    )
    def add_subscription(subscription: SubscriptionInput) -> Response[Subscription]:
        created = topic.subscribe(subscription)
        headers = {"Location": f"/v1/subscriptions/{created.id}"} if created.id else {}
        return Response(
            status_code=201, content_type="application/json", body=created, headers=headers
        )

    @routes.delete(
        "/subscriptions/<subscription_id>",
        summary="Unsubscribe",
        status_code=204,
        responses=problems(404, 503, ok=204),
        tags=["subscriptions"],
    )
    def delete_subscription(
        subscription_id: Annotated[str, Path(max_length=100)],
    ) -> Response[None]:
        topic.unsubscribe(subscription_id)
        return Response(status_code=204, body=None)

    return routes


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", "")) or "rejected by SNS"
