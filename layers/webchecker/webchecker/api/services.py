"""What the API's routers need: settings from the environment and the clients built once.

Built at cold start (``Services.from_env()``) and shared by every request of a container:
the site store (Parameter Store, with its short read cache), one database connection
(opened on first use, re-opened after a failure) and the alert topic's SNS client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from webchecker.config import env_optional
from webchecker.schedule.catalog import SiteStore, SiteStoreSettings
from webchecker.store.database import Database, DatabaseSettings

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4})


@dataclass(frozen=True, kw_only=True)
class ApiSettings:
    """The API's configuration: the sites' path, the database, the alert topic."""

    sites: SiteStoreSettings
    database: DatabaseSettings
    alert_topic_arn: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        return cls(
            sites=SiteStoreSettings.from_env(env),
            database=DatabaseSettings.from_env(env),
            alert_topic_arn=env_optional("ALERT_TOPIC_ARN", env),
        )


class Services:
    """The clients of one container, shared by every request."""

    def __init__(
        self,
        settings: ApiSettings,
        *,
        sites: SiteStore | None = None,
        database: Database | None = None,
        sns: SNSClient | None = None,
    ) -> None:
        self.settings = settings
        self.sites = sites or SiteStore(settings.sites)
        self.database = database or Database(settings.database)
        self._sns = sns

    @property
    def sns(self) -> SNSClient:
        if self._sns is None:
            client: SNSClient = boto3.client("sns", config=_BOTO_CONFIG)
            self._sns = client
        return self._sns

    def close(self) -> None:
        self.database.close()
