"""The three functions on the local Lambda Invoke API, their environment, and the event
source mapping that feeds the writer.

The environment is the template's variables with local values; the scheduler's
asynchronous invokes reach the Invoke API through ``AWS_ENDPOINT_URL_LAMBDA`` and run the
checker in worker processes, retried like AWS (after one and two ticks here). The MSK event
source mapping is the poller, which calls the writer through the Invoke API.
``Progress`` counts what the checkers published and the writer was handed, so that the
stack can wait for the writer to catch up.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from webchecker.exceptions import ConfigurationError
from webchecker.local.alerts import topic_arn
from webchecker.local.embedded.aws import EmbeddedAws
from webchecker.local.embedded.lambda_api import FunctionSpec, LambdaApi
from webchecker.local.embedded.network import free_port
from webchecker.local.embedded.service import Service
from webchecker.local.poller import Poller, PollerSettings
from webchecker.local.services import Kafka, Postgres
from webchecker.local.settings import CHECKER, NOTIFIER, SCHEDULER, WRITER, LocalSettings
from webchecker.local.slow_sites_queue import queue_url


def repository_root() -> Path:
    """The checkout holding ``functions/`` (the package is installed in editable mode)."""
    root = Path(__file__).resolve().parents[4]
    if not (root / "functions").is_dir():
        raise ConfigurationError(
            f"functions/ not found next to {root}: run the local stack from a checkout "
            "(pip install -e .)"
        )
    return root


def function_specs(settings: LocalSettings, root: Path) -> list[FunctionSpec]:
    """The functions of template.yaml, with its memory and timeouts."""
    return [
        FunctionSpec(
            name=SCHEDULER, path=root / "functions/scheduler/app.py", memory_mb=512, timeout_s=50
        ),
        FunctionSpec(
            name=CHECKER,
            path=root / "functions/checker/app.py",
            concurrency=settings.checker_workers,
            memory_mb=256,
            timeout_s=180,
        ),
        FunctionSpec(
            name=WRITER, path=root / "functions/writer/app.py", memory_mb=1024, timeout_s=120
        ),
        FunctionSpec(
            name=NOTIFIER, path=root / "functions/notifier/app.py", memory_mb=256, timeout_s=60
        ),
    ]


def function_env(
    settings: LocalSettings,
    *,
    aws: EmbeddedAws,
    lambda_endpoint: str,
    bootstrap_servers: str,
    database_url: str,
) -> dict[str, str]:
    """The environment of the functions: the template's variables, local values."""
    return {
        **aws.client_env(),
        # boto3 sends Lambda calls here (service-specific endpoint), the rest to moto.
        "AWS_ENDPOINT_URL_LAMBDA": lambda_endpoint,
        "POWERTOOLS_METRICS_NAMESPACE": "Webchecker",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "SITES_PATH": settings.sites_path,
        # Edits made with `webchecker sites` apply at the next tick (AWS: within 5 min).
        "SITES_CACHE_SECONDS": "0",
        "CHECKER_FUNCTION_NAME": CHECKER,
        "CHECKS_PER_INVOCATION": str(settings.checks_per_invocation),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "KAFKA_TOPIC": settings.topic,
        "KAFKA_AUTH": "none",
        # The demo targets are on loopback: configuration, not a code branch.
        "CHECKER_ALLOW_PRIVATE_TARGETS": "true",
        "DATABASE_URL": database_url,
        "DB_SCHEMA": settings.db_schema,
        # the topic local/alerts.py creates in moto (a webhook sink is subscribed to it)
        "ALERT_TOPIC_ARN": topic_arn(aws.region),
        # the queue local/slow_sites_queue.py creates in moto
        "SLOW_SITES_QUEUE_URL": queue_url(aws),
        **settings.function_env,
    }


class Progress:
    """Records the checkers reported as published vs. records handed to the writer."""

    def __init__(self) -> None:
        self._counts = threading.Condition()
        self.published = 0
        self.handed_over = 0

    def checker_succeeded(self, function: str, body: bytes) -> None:
        if function != CHECKER:
            return
        published = json.loads(body).get("published", 0)
        with self._counts:
            self.published += int(published)

    def writer_handled(self, records: int) -> None:
        with self._counts:
            self.handed_over += records
            self._counts.notify_all()

    def wait_for_writer(self, timeout: float) -> bool:
        """Waits until the writer has handled as many records as the checkers published."""
        with self._counts:
            return self._counts.wait_for(lambda: self.handed_over >= self.published, timeout)


class Functions(Service):
    """The Invoke API running the functions (``api`` once started)."""

    def __init__(
        self,
        settings: LocalSettings,
        *,
        aws: EmbeddedAws,
        kafka: Kafka,
        postgres: Postgres,
        progress: Progress,
    ) -> None:
        self.settings = settings
        self.aws = aws
        self.kafka = kafka
        self.postgres = postgres
        self.progress = progress
        self.api: LambdaApi | None = None

    def env(self, *, lambda_endpoint: str) -> dict[str, str]:
        return function_env(
            self.settings,
            aws=self.aws,
            lambda_endpoint=lambda_endpoint,
            bootstrap_servers=self.kafka.bootstrap_servers,
            database_url=self.postgres.url,
        )

    def start(self) -> Functions:
        if self.api is not None:
            return self
        state_dir = self.settings.state_path
        # The functions read the Invoke API's endpoint at import: choose its port first.
        port = free_port()
        api = LambdaApi(
            function_specs(self.settings, repository_root()),
            env=self.env(lambda_endpoint=f"http://127.0.0.1:{port}"),
            retry=self.settings.retry,
            port=port,
            log_dir=state_dir / "logs",
            failures_path=state_dir / "lambda-failures.jsonl",
            on_success=self.progress.checker_succeeded,
        )
        api.start()
        self.api = api
        return self

    def stop(self) -> None:
        api, self.api = self.api, None
        if api is not None:
            api.stop()

    def invoke(self, name: str, event: Any) -> Any:
        if self.api is None:
            raise ConfigurationError("the local functions are not running")
        return self.api.invoke(name, event)


class EventSourceMapping(Service):
    """The local MSK trigger: batches from the topic to the writer function, committed only
    after the writer returned (a failed batch is retried); stopping it is like disabling
    the mapping."""

    def __init__(
        self,
        settings: LocalSettings,
        *,
        kafka: Kafka,
        invoke: Callable[[str, Any], Any],
        progress: Progress,
    ) -> None:
        self.settings = settings
        self.kafka = kafka
        self.invoke = invoke
        self.progress = progress
        self.poller: Poller | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> EventSourceMapping:
        if self.poller is not None:
            return self
        self.poller = Poller(
            PollerSettings.from_env(
                {"KAFKA_TOPIC": self.settings.topic, **self.settings.function_env},
                bootstrap_servers=self.kafka.bootstrap_servers,
            ),
            self._invoke_writer,
        )
        self._thread = self.poller.start()
        return self

    def stop(self) -> None:
        if self.poller is not None:
            self.poller.stop()
            if self._thread is not None:
                self._thread.join(30)
            self.poller = None

    def _invoke_writer(self, event: dict[str, Any]) -> object:
        result = self.invoke(WRITER, event)  # raises: the poller retries the batch
        self.progress.writer_handled(
            sum(len(records) for records in event.get("records", {}).values())
        )
        return result
