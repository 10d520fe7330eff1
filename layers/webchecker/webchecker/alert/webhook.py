"""Chat webhooks: alerts from the SNS topic posted to Slack, Discord or Microsoft Teams.

A Lambda subscribed to the alert topic (its own filter policy picks what a channel gets)
turns each SNS record into the channel's post (``formatting.webhook_body``). The webhook
URL is a secret (whoever holds it can post to the channel), so it is read at run time
from Secrets Manager (``WEBHOOK_URL_SECRET_ARN``, the secret string is the URL) or from a
SecureString parameter (``WEBHOOK_URL_PARAMETER``), never from the template. A post that
fails raises, so that Lambda retries the SNS delivery (receivers dedupe on ``alert_id``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
import httpx

from webchecker.alert.formatting import parse_alert, webhook_body
from webchecker.config import env_choice, env_float, env_optional
from webchecker.exceptions import ConfigurationError, PublishError

logger = logging.getLogger(__name__)

FLAVOURS = ("slack", "discord", "teams")
DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True, kw_only=True)
class WebhookSettings:
    flavour: str
    secret_arn: str | None = None
    parameter: str | None = None
    url: str | None = None  # only for tests and the local stack's sink
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        sources = [self.secret_arn, self.parameter, self.url]
        if sum(source is not None for source in sources) != 1:
            raise ConfigurationError(
                "set exactly one of WEBHOOK_URL_SECRET_ARN and WEBHOOK_URL_PARAMETER"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebhookSettings:
        return cls(
            flavour=env_choice("WEBHOOK_FLAVOUR", "slack", FLAVOURS, env),
            secret_arn=env_optional("WEBHOOK_URL_SECRET_ARN", env),
            parameter=env_optional("WEBHOOK_URL_PARAMETER", env),
            url=env_optional("WEBHOOK_URL", env),
            timeout=env_float("WEBHOOK_TIMEOUT", DEFAULT_TIMEOUT, env, minimum=0.1, maximum=30),
        )


def read_url(settings: WebhookSettings) -> str:
    """The webhook URL from its secret store (checked: an http(s) URL with a host)."""
    if settings.url is not None:
        url = settings.url
    elif settings.secret_arn is not None:
        secrets = boto3.client("secretsmanager")
        url = secrets.get_secret_value(SecretId=settings.secret_arn)["SecretString"].strip()
    else:
        assert settings.parameter is not None
        ssm = boto3.client("ssm")
        parameter = ssm.get_parameter(Name=settings.parameter, WithDecryption=True)
        url = parameter["Parameter"]["Value"].strip()
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        # never log the value: it is a secret
        raise ConfigurationError("the webhook URL secret does not hold an http(s) URL")
    return url


class WebhookPoster:
    """Posts alerts to one channel; the URL is read once per container."""

    def __init__(
        self,
        settings: WebhookSettings,
        *,
        client: httpx.Client | None = None,
        url_reader: Callable[[WebhookSettings], str] = read_url,
    ) -> None:
        self.settings = settings
        self.client = client or httpx.Client(timeout=settings.timeout, follow_redirects=False)
        self._url_reader = url_reader
        self._url: str | None = None

    def handle(self, event: Mapping[str, Any]) -> dict[str, int]:
        """An SNS event: posts each record's alert; returns ``{"posted": N}``."""
        posted = 0
        for record in event.get("Records") or []:
            sns = record.get("Sns") if isinstance(record, Mapping) else None
            message = sns.get("Message") if isinstance(sns, Mapping) else None
            if not isinstance(message, str):
                logger.warning("skipping a record without an SNS message")
                continue
            self.post(parse_alert(message))
            posted += 1
        return {"posted": posted}

    def post(self, alert: Mapping[str, Any]) -> None:
        if self._url is None:
            self._url = self._url_reader(self.settings)
        body = webhook_body(alert, self.settings.flavour)
        try:
            response = self.client.post(self._url, json=body)
        except httpx.HTTPError as error:
            raise PublishError(f"webhook post failed: {type(error).__name__}") from None
        if response.status_code >= 300:
            raise PublishError(f"webhook answered {response.status_code}")
