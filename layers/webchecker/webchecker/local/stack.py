"""The whole pipeline on loopback: ``webchecker local`` (``make run``) and the end-to-end tests.

Same code path as in AWS; only the edges differ. ``LocalStack`` composes parts, each a
``Service`` in its own module, started in order and stopped in reverse:

======================  =====================================================================
``services.StateLock``  one stack per state directory
``EmbeddedAws``         moto's server: Parameter Store (``webchecker sites`` edits it live)
``services.Kafka``      the embedded Tansu broker unless ``KAFKA_BOOTSTRAP_SERVERS``; the topic
``services.Postgres``   ``DATABASE_URL``, else the embedded server in ``STATE_DIR/postgres``
``services.DemoTargets`` the demo HTTP targets
``site_file.SiteFile``  the site list saved across runs (moto keeps it only while it runs)
``functions.Functions`` the functions on the local Lambda Invoke API, with their environment
``functions.EventSourceMapping`` the poller feeding the writer (the MSK trigger)
``alerts.LocalAlerts``  the alert topic in moto's SNS, a webhook sink subscribed to it
``slow_sites_queue``    the queue in moto's SQS where checkers report slow sites to the scheduler
``api_server.LocalApi`` the REST API on loopback (payload 2.0 events for the API handler)
``env_file.EnvFile``    ``STATE_DIR/env`` for other terminals
``StatusSite``          the status page, rendered every 5 ticks, served at the API's ``/status/``
======================  =====================================================================

A new part (a notifier, an API server, a status page) is a ``Service`` built from the parts
it reads (their attributes are set once they have started), inserted in ``parts`` after
them. Ticks and the foreground loop are ``ticks.py``, the live table ``board.py`` and
``live.py``, the start-up text ``banner.py``, the ``webchecker local`` command ``run.py``.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from webchecker.exceptions import InvocationFailed, WebcheckerError
from webchecker.local.alerts import LocalAlerts
from webchecker.local.api_server import LocalApi
from webchecker.local.banner import banner
from webchecker.local.board import StatusBoard
from webchecker.local.embedded.aws import EmbeddedAws
from webchecker.local.embedded.broker import EmbeddedBroker
from webchecker.local.embedded.lambda_api import LambdaApi
from webchecker.local.embedded.postgres import EmbeddedPostgres
from webchecker.local.embedded.service import Service
from webchecker.local.env_file import EnvFile
from webchecker.local.functions import EventSourceMapping, Functions, Progress, repository_root
from webchecker.local.live import LiveView
from webchecker.local.poller import Poller
from webchecker.local.services import DemoTargets, Kafka, Postgres, StateLock
from webchecker.local.settings import (
    CHECKER,
    DEFAULT_DEMO_PORT,
    DEFAULT_STATE_DIR,
    DEFAULT_TICK_SECONDS,
    DEFAULT_TOPIC,
    EMBEDDED_KAFKA_VARIABLE,
    NOTIFIER,
    SCHEDULER,
    WRITER,
    LocalSettings,
)
from webchecker.local.site_file import PUBLIC_SITES, SiteFile, demo_sites, follow_demo
from webchecker.local.slow_sites_queue import LocalSlowSitesQueue
from webchecker.local.status_site import StatusSite
from webchecker.local.ticks import SimulatedClock, Ticker, scheduled_event
from webchecker.page.settings import PageSettings
from webchecker.schedule.catalog import SiteStore
from webchecker.store.database import Database

if TYPE_CHECKING:
    import threading
    from pathlib import Path

    from mypy_boto3_ssm import SSMClient

__all__ = [  # the names this module always offered (moved to the parts' modules)
    "CHECKER",
    "DEFAULT_DEMO_PORT",
    "DEFAULT_STATE_DIR",
    "DEFAULT_TICK_SECONDS",
    "DEFAULT_TOPIC",
    "PUBLIC_SITES",
    "SCHEDULER",
    "WRITER",
    "LocalSettings",
    "LocalStack",
    "SimulatedClock",
    "demo_sites",
    "follow_demo",
    "repository_root",
    "scheduled_event",
]

logger = logging.getLogger(__name__)


class LocalStack(Service):
    """Every part of the pipeline on loopback; ``start()``/``stop()`` or a context manager."""

    def __init__(self, settings: LocalSettings) -> None:
        self.settings = settings
        self.state_dir = settings.state_path
        self.log_dir = self.state_dir / "logs"
        self.clock = SimulatedClock()
        self.progress = Progress()
        run_dir = self.state_dir / "run"
        self.aws = EmbeddedAws(log_path=self.log_dir / "moto.log", pid_file=run_dir / "moto.pid")
        self.kafka = Kafka(settings, self.aws)
        self.db = Postgres(settings)
        self.demo_targets = DemoTargets(settings)
        self.demo = self.demo_targets.server
        self.sites = SiteFile(settings, self.aws, self.demo)
        self.functions = Functions(
            settings, aws=self.aws, kafka=self.kafka, postgres=self.db, progress=self.progress
        )
        self.mapping = EventSourceMapping(
            settings, kafka=self.kafka, invoke=self.functions.invoke, progress=self.progress
        )
        self.alerts = LocalAlerts(self.aws, self.state_dir)
        self.slow_sites_queue = LocalSlowSitesQueue(self.aws)
        self.status_site = StatusSite(
            self.state_dir / "status",
            lambda: self.db.url,
            base_url=lambda: self.rest_api.url,
            schema=settings.db_schema,
            page=PageSettings.from_env(),
            every_ticks=settings.status_page_ticks,
        )
        # /status/ on the API's address, as DESIGN.md has it
        self.rest_api = LocalApi(
            settings, aws=self.aws, postgres=self.db, routes=[self.status_site.response]
        )
        #: Started in this order, stopped in reverse (also when a start fails half-way).
        self.parts: list[Service] = [
            StateLock(self.state_dir),
            self.db,  # first: a DATABASE_URL that does not answer fails the start at once
            self.aws,
            self.kafka,
            self.demo_targets,
            self.sites,
            self.alerts,
            self.slow_sites_queue,
            self.functions,
            self.mapping,
            self.rest_api,
            EnvFile(self.state_dir / "env", self.env_file_variables),
            self.status_site,
        ]
        self.ticker = Ticker(self, tick_seconds=settings.tick_seconds, duration=settings.duration)
        self.board = StatusBoard(
            sites=self.sites, postgres=self.db, functions=self.functions, alerts=self.alerts
        )
        self._running: contextlib.ExitStack | None = None

    def start(self) -> LocalStack:
        if self._running is not None:
            return self
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as running:
            for part in self.parts:
                running.callback(part.stop)  # a no-op unless the part started (some of) itself
                part.start()
            self._running = running.pop_all()
        return self

    def stop(self, *, drain_timeout: float = 15.0) -> None:
        """Lets in-flight checks finish (bounded), then stops every part (saving the sites)."""
        if self._running is None:
            return
        try:
            self.drain(drain_timeout)
            self.wait_for_writer(timeout=drain_timeout)
        except WebcheckerError as error:
            logger.warning("stopping without a clean drain: %s", error)
        finally:
            running, self._running = self._running, None
            running.close()

    # -- what the parts offer, under the names the tests, the CLI and the bench use ---------

    @property
    def broker(self) -> EmbeddedBroker | None:
        return self.kafka.broker

    @property
    def postgres(self) -> EmbeddedPostgres | None:
        return self.db.server

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka.bootstrap_servers

    @property
    def database_url(self) -> str:
        return self.db.url

    @property
    def database(self) -> Database:
        return self.db.database

    @property
    def lambda_api(self) -> LambdaApi | None:
        return self.functions.api

    @property
    def poller(self) -> Poller | None:
        return self.mapping.poller

    @property
    def published(self) -> int:
        return self.progress.published

    @property
    def handed_over(self) -> int:
        return self.progress.handed_over

    @property
    def sites_file(self) -> Path:
        return self.sites.path

    @property
    def store(self) -> SiteStore:
        return self.sites.store

    def ssm(self) -> SSMClient:
        return self.sites.ssm()

    def export_sites(self) -> list[dict[str, str]]:
        return self.sites.export()

    def save_sites(self) -> None:
        self.sites.save()

    def start_poller(self) -> None:
        self.mapping.start()

    def stop_poller(self) -> None:
        self.mapping.stop()

    def aws_env(self) -> dict[str, str]:
        """What a boto3 client (or ``webchecker sites``) needs to reach this stack's AWS."""
        env = self.aws.client_env()
        if self.lambda_api is not None:
            env["AWS_ENDPOINT_URL_LAMBDA"] = self.lambda_api.endpoint_url
        return env

    def function_env(self, *, lambda_endpoint: str) -> dict[str, str]:
        return self.functions.env(lambda_endpoint=lambda_endpoint)

    def env_file_variables(self) -> dict[str, str]:
        """What ``webchecker sites``/``report``/``invoke`` (``make invoke``) need in another
        terminal: the functions' settings, pointing at this stack."""
        variables = {
            **self.aws_env(),
            "SITES_PATH": self.settings.sites_path,
            "CHECKER_FUNCTION_NAME": CHECKER,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "KAFKA_TOPIC": self.settings.topic,
            "KAFKA_AUTH": "none",
            "CHECKER_ALLOW_PRIVATE_TARGETS": "true",  # the demo targets are on loopback
            "DATABASE_URL": self.database_url,
            "DB_SCHEMA": self.settings.db_schema,
            "WEBCHECKER_API_URL": self.rest_api.url,
        }
        if self.broker is not None:
            variables[EMBEDDED_KAFKA_VARIABLE] = self.bootstrap_servers
        return variables

    def banner(self) -> list[str]:
        return banner(self)

    # -- running -----------------------------------------------------------------------------

    def tick(self, moment: datetime | None = None) -> dict[str, Any]:
        """One scheduler invocation (at the next simulated minute unless ``moment``)."""
        event = scheduled_event(moment or self.clock.next(), region=self.aws.region)
        summary: dict[str, Any] = self.functions.invoke(SCHEDULER, event)
        try:  # the notifier's every-minute run: alerts committed by now go out
            self.functions.invoke(NOTIFIER, event)
        except InvocationFailed as error:  # as in AWS: the next run takes what is pending
            logger.warning("notifier failed: %s", error)
        # what is stored so far, every few ticks and in the background (its own schedule)
        self.status_site.tick()
        return summary

    def drain(self, timeout: float) -> bool:
        """Waits for the checker invocations in flight; True when none is left."""
        return self.lambda_api is None or self.lambda_api.drain(timeout)

    def wait_for_writer(self, *, timeout: float) -> bool:
        """Waits until the writer has handled as many records as the checkers published."""
        return self.poller is None or self.progress.wait_for_writer(timeout)

    def run(self, view: LiveView, *, stop: threading.Event | None = None) -> None:
        """Ticks with the live view until ``duration`` or ``stop`` (see ``ticks.Ticker``)."""
        self.ticker.run(view, self.board.render, stop=stop)

    def settle(self, *, until: float, stop: threading.Event) -> bool:
        return self.ticker.settle(until=until, stop=stop)
