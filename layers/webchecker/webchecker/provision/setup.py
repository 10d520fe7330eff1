"""The deploy's own step, run by CloudFormation before the functions that need it change.

On Create and Update of the ``Setup`` resource, in this order:

1. the bootstrap brokers: ``KAFKA_BOOTSTRAP_SERVERS`` when given, else asked from MSK for
   ``MSK_CLUSTER_ARN`` (the IAM listener's string); returned as ``BootstrapServers`` for
   the checker's environment;
2. the topic: created when missing, with ``KAFKA_TOPIC_PARTITIONS`` and
   ``KAFKA_TOPIC_RETENTION_MS`` (MSK does not auto-create topics), so the writer's event
   source mapping, created after this resource, finds it;
3. the schema: every pending migration, under the migrations' advisory lock, before the
   writer's new code is deployed (the writer depends on this resource), so no cold start
   races an upgrade.

Right after a from-zero stack creates them, the cluster's endpoints and the proxy's
target may not answer yet (RDS Proxy registers its instance for a few minutes after
CloudFormation reports it complete): steps 2 and 3 are retried while they fail as
unreachable, for up to ``SETUP_WAIT_SECONDS`` (default 240, inside the function's 300 s
timeout), then the deploy fails with the last reason.

Delete does nothing: the topic and the rows outlive the stack on purpose (a from-zero
stack deletes the cluster and snapshots the database itself).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from webchecker.check.transport import KafkaPublisher, KafkaSettings
from webchecker.config import env_float, env_optional
from webchecker.exceptions import ConfigurationError, PublishError, StoreUnavailable
from webchecker.provision.custom_resource import Outcome, Request
from webchecker.store.database import Database, DatabaseSettings
from webchecker.store.migrations import latest_version, migrate

logger = logging.getLogger(__name__)

PHYSICAL_ID = "webchecker-setup"
DEFAULT_WAIT_SECONDS = 240.0
_T = TypeVar("_T")


@dataclass(frozen=True, kw_only=True)
class SetupSettings:
    """Where the cluster is; the Kafka and database settings come from the same variables
    the checker and the writer read."""

    bootstrap_servers: str | None = None
    cluster_arn: str | None = None
    region: str | None = None
    wait_seconds: float = DEFAULT_WAIT_SECONDS

    def __post_init__(self) -> None:
        if not self.bootstrap_servers and not self.cluster_arn:
            raise ConfigurationError("set KAFKA_BOOTSTRAP_SERVERS or MSK_CLUSTER_ARN")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SetupSettings:
        return cls(
            bootstrap_servers=env_optional("KAFKA_BOOTSTRAP_SERVERS", env),
            cluster_arn=env_optional("MSK_CLUSTER_ARN", env),
            region=env_optional("AWS_REGION", env),
            wait_seconds=env_float(
                "SETUP_WAIT_SECONDS", DEFAULT_WAIT_SECONDS, env, minimum=0, maximum=280
            ),
        )


class Setup:
    """Callable per request (see the module docstring); clients are injectable for tests."""

    def __init__(
        self,
        settings: SetupSettings,
        *,
        env: Mapping[str, str] | None = None,
        kafka_client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._env = dict(os.environ if env is None else env)
        self._kafka_client = kafka_client
        self._sleep = sleep

    def __call__(self, request: Request) -> Outcome:
        if request.request_type == "Delete":
            return Outcome(physical_resource_id=request.physical_resource_id or PHYSICAL_ID)
        deadline = time.monotonic() + self.settings.wait_seconds
        brokers = self.bootstrap_servers()
        topic = self._until_reachable(lambda: self.ensure_topic(brokers), deadline)
        applied = self._until_reachable(self.migrate, deadline)
        logger.info(
            "setup done", extra={"topic": topic, "migrations_applied": applied, "brokers": brokers}
        )
        return Outcome(
            physical_resource_id=PHYSICAL_ID,
            data={
                "BootstrapServers": brokers,
                "Topic": topic,
                "SchemaVersion": str(latest_version()),
            },
        )

    def _until_reachable(self, step: Callable[[], _T], deadline: float) -> _T:
        """``step()``, again while it fails as unreachable and ``deadline`` is not past."""
        delay = 2.0
        attempt = 1
        while True:
            try:
                return step()
            except (StoreUnavailable, PublishError) as error:
                if time.monotonic() + delay > deadline:
                    raise type(error)(f"{error} (gave up after {attempt} attempts)") from error
                logger.warning("not reachable yet (attempt %d): %s", attempt, error)
                self._sleep(delay)
                delay = min(delay * 2, 30.0)
                attempt += 1

    def bootstrap_servers(self) -> str:
        if self.settings.bootstrap_servers:
            return self.settings.bootstrap_servers
        client = self._kafka_client
        if client is None:
            import boto3

            client = boto3.client("kafka", region_name=self.settings.region)
        response = client.get_bootstrap_brokers(ClusterArn=self.settings.cluster_arn)
        brokers = response.get("BootstrapBrokerStringSaslIam")
        if not brokers:
            raise ConfigurationError(
                f"MSK_CLUSTER_ARN={self.settings.cluster_arn}: the cluster has no IAM listener "
                "(enable IAM client authentication)"
            )
        return str(brokers)

    def ensure_topic(self, brokers: str) -> str:
        settings = KafkaSettings.from_env({**self._env, "KAFKA_BOOTSTRAP_SERVERS": brokers})
        publisher = KafkaPublisher(settings)
        try:
            publisher.ensure_topic()
        except PublishError as error:
            raise PublishError(f"topic {settings.topic}: {error}") from error
        return settings.topic

    def migrate(self) -> list[int]:
        with Database(DatabaseSettings.from_env(self._env)) as database:
            return migrate(database)
