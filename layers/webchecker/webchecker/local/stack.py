"""The whole pipeline on loopback: ``webchecker local`` (``make run``) and the end-to-end tests.

Same code path as in AWS; only the edges differ:

- Parameter Store is moto's server (``embedded.aws``); ``webchecker sites`` in another
  terminal edits the running stack through the printed ``AWS_ENDPOINT_URL``. moto keeps
  state only while it runs, so the site parameters are saved to ``.webchecker/sites.json``
  after every tick and at stop, and loaded again at the next start (example sites are
  seeded only when there is no saved list).
- Lambda is the local Invoke API (``embedded.lambda_api``): the scheduler's asynchronous
  invokes reach it through ``AWS_ENDPOINT_URL_LAMBDA`` and run the checker handler in
  worker processes, retried like AWS (after one and two ticks here, one and two minutes
  in AWS).
- Kafka is the embedded Tansu broker unless ``KAFKA_BOOTSTRAP_SERVERS`` is set; PostgreSQL
  is ``DATABASE_URL``, else the embedded server with its data in ``.webchecker/postgres``.
- The MSK event source mapping is the writer engineer's poller, which calls the writer
  handler (here through the Invoke API, in the writer's own process).

Ticks: every ``tick_seconds`` the stack invokes the scheduler with an EventBridge scheduled
event. Its ``time`` is a simulated minute that advances one minute per tick, starting from
now floored to the minute, so with ``--tick 5`` every 5 seconds is "a minute" to the
scheduler: a site with interval 60 is due at every tick, one with interval 300 at every
fifth. (``checked_at`` stays the real clock.)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import boto3

from webchecker.config import env_optional, env_str
from webchecker.exceptions import ConfigurationError, WebcheckerError
from webchecker.local.demo import DemoServer
from webchecker.local.embedded import pidfiles
from webchecker.local.embedded.aws import EmbeddedAws
from webchecker.local.embedded.broker import EmbeddedBroker
from webchecker.local.embedded.lambda_api import FunctionSpec, LambdaApi, RetryPolicy
from webchecker.local.embedded.network import free_port
from webchecker.local.embedded.postgres import EmbeddedPostgres
from webchecker.local.embedded.service import Service
from webchecker.local.live import LiveView, format_table, read_statuses
from webchecker.local.poller import Poller, PollerSettings
from webchecker.schedule.catalog import DEFAULT_SITES_PATH, SiteStore, SiteStoreSettings
from webchecker.schedule.plan import format_tick
from webchecker.store.database import Database, DatabaseSettings

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

logger = logging.getLogger(__name__)

DEFAULT_STATE_DIR = Path(".webchecker")
DEFAULT_TICK_SECONDS = 60.0
DEFAULT_DEMO_PORT = 8780
DEFAULT_TOPIC = "webchecker.checks"
STACK_NAME = "webchecker"
SCHEDULER = f"{STACK_NAME}-scheduler"
CHECKER = f"{STACK_NAME}-checker"
WRITER = f"{STACK_NAME}-writer"

PUBLIC_SITES: tuple[dict[str, Any], ...] = (
    {"id": "example-com", "url": "https://example.com/", "regex": "Example Domain"},
    {"id": "python-org", "url": "https://www.python.org/", "interval": 300},
    {"id": "aws-health", "url": "https://health.aws.amazon.com/health/status", "interval": 120},
)


def demo_sites(demo: str) -> list[dict[str, Any]]:
    """The example sites on the demo server ``demo`` (``http://127.0.0.1:PORT``)."""
    return [
        {"id": "demo-healthy", "url": f"{demo}/healthy", "regex": "healthy"},
        {"id": "demo-slow", "url": f"{demo}/slow", "timeout": 5},
        {"id": "demo-timeout", "url": f"{demo}/hang", "timeout": 2},
        {"id": "demo-failing", "url": f"{demo}/failing"},
        {"id": "demo-flapping", "url": f"{demo}/flapping"},
        {"id": "demo-wrong-body", "url": f"{demo}/wrong-body", "regex": "healthy"},
        {"id": "demo-redirect", "url": f"{demo}/redirect", "expected_status": ["200"]},
        # HTTPS to the demo's plain-HTTP port: the TLS handshake fails.
        {"id": "demo-tls", "url": demo.replace("http://", "https://", 1) + "/healthy"},
        # Port 9 (discard) on loopback: nothing listens there, so the connect is refused.
        {"id": "demo-refused", "url": "http://127.0.0.1:9/", "timeout": 2},
        {"id": "demo-hourly", "url": f"{demo}/healthy", "interval": 3600},
    ]


def follow_demo(value: str, old: str, new: str) -> str:
    """A saved parameter value with its demo-target URLs moved from ``old`` to ``new``.

    The demo server may listen on another port in the next run (``--demo-port``); sites
    pointing at it follow, every other field is kept as the user left it.
    """
    try:
        parsed = json.loads(value)
    except ValueError:
        return value  # invalid JSON stays invalid (and is reported by the scheduler)
    entries = parsed if isinstance(parsed, list) else [parsed]
    changed = False
    old_host, new_host = urlsplit(old).netloc, urlsplit(new).netloc
    for entry in entries:
        url = entry.get("url") if isinstance(entry, dict) else None
        if isinstance(url, str) and urlsplit(url).netloc == old_host:  # http:// and https://
            entry["url"] = urlunsplit(urlsplit(url)._replace(netloc=new_host))
            changed = True
    return json.dumps(parsed) if changed else value


@dataclass(frozen=True, kw_only=True)
class LocalSettings:
    """How ``webchecker local`` runs. Arguments beat environment variables, which beat defaults."""

    state_dir: Path = DEFAULT_STATE_DIR
    tick_seconds: float = DEFAULT_TICK_SECONDS
    duration: float | None = None
    public_sites: bool = True
    seed: bool = True
    persist_sites: bool = True
    demo_port: int | None = DEFAULT_DEMO_PORT
    sites_path: str = DEFAULT_SITES_PATH
    topic: str = DEFAULT_TOPIC
    partitions: int = 1
    kafka_bootstrap_servers: str | None = None
    database_url: str | None = None
    db_schema: str = "webchecker"
    checker_workers: int = 2
    #: Tansu's S3 storage on moto's S3 (topics and offsets survive a broker restart).
    durable_broker: bool = False
    checks_per_invocation: int = 50
    retry_delays: tuple[float, ...] | None = None  # default: one and two ticks
    function_env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> LocalSettings:
        values: dict[str, Any] = {
            "sites_path": env_str("SITES_PATH", DEFAULT_SITES_PATH, env),
            "topic": env_str("KAFKA_TOPIC", DEFAULT_TOPIC, env),
            "kafka_bootstrap_servers": env_optional("KAFKA_BOOTSTRAP_SERVERS", env),
            "database_url": env_optional("DATABASE_URL", env),
            "db_schema": env_str("DB_SCHEMA", "webchecker", env),
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def __post_init__(self) -> None:
        if self.tick_seconds <= 0:
            raise ConfigurationError(f"--tick {self.tick_seconds:g}: must be more than 0 seconds")
        if self.duration is not None and self.duration <= 0:
            raise ConfigurationError(f"--duration {self.duration:g}: must be more than 0 seconds")

    @property
    def retry(self) -> RetryPolicy:
        delays = self.retry_delays
        if delays is None:
            delays = (self.tick_seconds, 2 * self.tick_seconds)
        return RetryPolicy(delays=delays)


def repository_root() -> Path:
    """The checkout holding ``functions/`` (the package is installed in editable mode)."""
    root = Path(__file__).resolve().parents[4]
    if not (root / "functions").is_dir():
        raise ConfigurationError(
            f"functions/ not found next to {root}: run the local stack from a checkout "
            "(pip install -e .)"
        )
    return root


def scheduled_event(tick: datetime, *, region: str) -> dict[str, Any]:
    """The EventBridge scheduled event whose ``time`` is ``tick``."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": format_tick(tick),
        "region": region,
        "resources": [f"arn:aws:events:{region}:000000000000:rule/{STACK_NAME}-every-minute"],
        "detail": {},
    }


class SimulatedClock:
    """Scheduler ticks one minute apart, starting at ``start`` (default: now, floored)."""

    def __init__(self, start: datetime | None = None) -> None:
        now = start or datetime.now(UTC)
        self.start = now.replace(second=0, microsecond=0)
        self.ticks = 0

    def next(self) -> datetime:
        tick = self.start + timedelta(minutes=self.ticks)
        self.ticks += 1
        return tick


class LocalStack(Service):
    """Every service of the pipeline on loopback; ``start()``/``stop()`` or a context manager."""

    def __init__(self, settings: LocalSettings) -> None:
        self.settings = settings
        self.state_dir = settings.state_dir.expanduser().absolute()
        self.log_dir = self.state_dir / "logs"
        self.clock = SimulatedClock()
        self.aws: EmbeddedAws | None = None
        self.broker: EmbeddedBroker | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.demo: DemoServer | None = None
        self.lambda_api: LambdaApi | None = None
        self.poller: Poller | None = None
        self._poller_thread: threading.Thread | None = None
        self._counts = threading.Condition()
        self.published = 0  # check results the checker reported as published
        self.handed_over = 0  # records the writer function stored or rejected
        self.database_url = ""
        self.bootstrap_servers = ""
        self._store: SiteStore | None = None
        self._database: Database | None = None
        self._lock_file: IO[str] | None = None
        self._saved_sites = ""
        self._stack: contextlib.ExitStack | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LocalStack:
        settings = self.settings
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            stack.callback(self._unlock)
            self._lock()
            run_dir = self.state_dir / "run"

            self.aws = EmbeddedAws(
                log_path=self.log_dir / "moto.log", pid_file=run_dir / "moto.pid"
            ).start()
            stack.callback(self.aws.stop)

            if settings.kafka_bootstrap_servers:
                self.bootstrap_servers = settings.kafka_bootstrap_servers
            else:
                pidfiles.stop_stale(run_dir / "tansu.pid")
                self.broker = self._new_broker().start()
                stack.callback(self.broker.stop)
                stack.callback(pidfiles.forget, run_dir / "tansu.pid")
                _record_child(run_dir / "tansu.pid", self.broker.port)
                self.bootstrap_servers = self.broker.bootstrap_servers
            ensure_topic(self.bootstrap_servers, settings.topic, settings.partitions)

            if settings.database_url:
                self.database_url = settings.database_url
            else:
                # Finds and stops a server left by a killed run; shares one a live run owns.
                self.postgres = EmbeddedPostgres(self.state_dir / "postgres").start()
                stack.callback(self.postgres.stop)
                self.database_url = self.postgres.url()

            self.demo = DemoServer(port=settings.demo_port)
            try:
                self.demo.start()
            except OSError as error:
                raise ConfigurationError(
                    f"demo targets: port {settings.demo_port} is in use ({error.strerror}); "
                    "pass --demo-port"
                ) from error
            stack.callback(self.demo.stop)

            self._store = SiteStore(
                SiteStoreSettings(path=settings.sites_path, cache_seconds=0),
                client=self.ssm(),
            )
            self._load_sites()

            root = repository_root()
            # The functions read the Invoke API's endpoint at import: choose its port first.
            lambda_port = free_port()
            self.lambda_api = LambdaApi(
                [
                    # Memory and timeouts as in template.yaml.
                    FunctionSpec(
                        name=SCHEDULER,
                        path=root / "functions/scheduler/app.py",
                        memory_mb=512,
                        timeout_s=50,
                    ),
                    FunctionSpec(
                        name=CHECKER,
                        path=root / "functions/checker/app.py",
                        concurrency=settings.checker_workers,
                        memory_mb=256,
                        timeout_s=180,
                    ),
                    FunctionSpec(
                        name=WRITER,
                        path=root / "functions/writer/app.py",
                        memory_mb=1024,
                        timeout_s=120,
                    ),
                ],
                env=self.function_env(lambda_endpoint=f"http://127.0.0.1:{lambda_port}"),
                retry=settings.retry,
                port=lambda_port,
                log_dir=self.log_dir,
                failures_path=self.state_dir / "lambda-failures.jsonl",
                on_success=self._on_success,
            )
            self.lambda_api.start()
            stack.callback(self.lambda_api.stop)

            self.start_poller()
            stack.callback(self.stop_poller)
            self._write_env_file()
            self._stack = stack.pop_all()
        return self

    def stop(self, *, drain_timeout: float = 15.0) -> None:
        """Lets in-flight checks finish (bounded), saves the sites, stops everything started."""
        if self._stack is None:
            return
        try:
            if self.lambda_api is not None:
                self.lambda_api.drain(drain_timeout)
            self.wait_for_writer(timeout=drain_timeout)
            self.save_sites()
        except WebcheckerError as error:
            logger.warning("stopping without a clean drain: %s", error)
        finally:
            if self._database is not None:
                self._database.close()
            stack, self._stack = self._stack, None
            stack.close()

    def _new_broker(self) -> EmbeddedBroker:
        log_path = str(self.log_dir / "tansu.log")
        if not self.settings.durable_broker:
            return EmbeddedBroker(log_path=log_path)
        assert self.aws is not None
        bucket = "webchecker-tansu"
        client_env = self.aws.client_env()
        s3 = boto3.client(
            "s3",
            endpoint_url=client_env["AWS_ENDPOINT_URL"],
            region_name=client_env["AWS_REGION"],
            aws_access_key_id=client_env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=client_env["AWS_SECRET_ACCESS_KEY"],
        )
        s3.create_bucket(
            Bucket=bucket,
            CreateBucketConfiguration={"LocationConstraint": client_env["AWS_REGION"]},  # type: ignore[typeddict-item]
        )
        env = {
            **client_env,
            "AWS_ENDPOINT": client_env["AWS_ENDPOINT_URL"],  # what Tansu's S3 client reads
            "AWS_ALLOW_HTTP": "true",
        }
        return EmbeddedBroker(storage_engine=f"s3://{bucket}/", env=env, log_path=log_path)

    def _lock(self) -> None:
        # Two stacks on one state directory would fight over the database and the site list.
        self._lock_file = open(self.state_dir / "local.lock", "a+")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.seek(0)
            holder = self._lock_file.read().strip() or "?"
            self._lock_file.close()
            self._lock_file = None
            raise ConfigurationError(
                f"another webchecker local (pid {holder}) uses {self.state_dir}; stop it first"
            ) from None
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(str(os.getpid()))
        self._lock_file.flush()

    def _unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing releases the flock
            self._lock_file = None

    def start_poller(self) -> None:
        """The local event source mapping: batches from the topic to the writer function,
        committed only after the writer returned (a failed batch is retried)."""
        if self.poller is not None:
            return
        self.poller = Poller(
            PollerSettings.from_env(
                {"KAFKA_TOPIC": self.settings.topic, **self.settings.function_env},
                bootstrap_servers=self.bootstrap_servers,
            ),
            self._invoke_writer,
        )
        self._poller_thread = self.poller.start()

    def stop_poller(self) -> None:
        """Stops reading the topic (like disabling the event source mapping)."""
        if self.poller is not None:
            self.poller.stop()
            if self._poller_thread is not None:
                self._poller_thread.join(30)
            self.poller = None

    def _invoke_writer(self, event: dict[str, Any]) -> object:
        assert self.lambda_api is not None
        result = self.lambda_api.invoke(WRITER, event)  # raises: the poller retries the batch
        with self._counts:
            self.handed_over += sum(len(records) for records in event.get("records", {}).values())
            self._counts.notify_all()
        return result

    def _on_success(self, function: str, body: bytes) -> None:
        if function != CHECKER:
            return
        published = json.loads(body).get("published", 0)
        with self._counts:
            self.published += int(published)

    # -- configuration -----------------------------------------------------------------------

    def aws_env(self) -> dict[str, str]:
        """What a boto3 client (or ``webchecker sites``) needs to reach this stack's AWS."""
        assert self.aws is not None
        env = self.aws.client_env()
        if self.lambda_api is not None:
            env["AWS_ENDPOINT_URL_LAMBDA"] = self.lambda_api.endpoint_url
        return env

    def function_env(self, *, lambda_endpoint: str) -> dict[str, str]:
        """The environment of the three functions: the template's variables, local values."""
        assert self.aws is not None
        settings = self.settings
        env = {
            **self.aws.client_env(),
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
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "KAFKA_TOPIC": settings.topic,
            "KAFKA_AUTH": "none",
            # The demo targets are on loopback: configuration, not a code branch.
            "CHECKER_ALLOW_PRIVATE_TARGETS": "true",
            "DATABASE_URL": self.database_url,
            "DB_SCHEMA": settings.db_schema,
            **settings.function_env,
        }
        return env

    # -- sites -------------------------------------------------------------------------------

    @property
    def sites_file(self) -> Path:
        return self.state_dir / "sites.json"

    @property
    def store(self) -> SiteStore:
        assert self._store is not None
        return self._store

    def ssm(self) -> SSMClient:
        """An SSM client on this stack's moto (explicit: the caller's AWS_* are not ours)."""
        assert self.aws is not None
        env = self.aws.client_env()
        client: SSMClient = boto3.client(
            "ssm",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        return client

    def _load_sites(self) -> None:
        assert self.demo is not None
        demo = self.demo.url("").rstrip("/")
        saved = None
        if self.settings.persist_sites and self.sites_file.exists():
            try:
                content = json.loads(self.sites_file.read_text())
                saved = content["parameters"]
                saved_demo = content.get("demo")
            except (ValueError, KeyError, TypeError) as error:
                raise ConfigurationError(
                    f"{self.sites_file}: not a saved site list ({error}); move it away to start "
                    "with the example sites"
                ) from error
        client = self.ssm()
        if saved is not None:
            for parameter in saved:
                value = parameter["value"]
                if saved_demo and saved_demo != demo:
                    value = follow_demo(value, saved_demo, demo)
                client.put_parameter(
                    Name=parameter["name"],
                    Value=value,
                    Type=parameter.get("type", "String"),
                    Overwrite=True,
                    Tier="Intelligent-Tiering",
                )
            logger.info("loaded %d site parameters from %s", len(saved), self.sites_file)
        elif self.settings.seed:
            examples = demo_sites(demo)
            if self.settings.public_sites:
                examples += [dict(site) for site in PUBLIC_SITES]
            for site in examples:
                client.put_parameter(
                    Name=f"{self.settings.sites_path.rstrip('/')}/{site['id']}",
                    Value=json.dumps(site),
                    Type="String",
                    Tier="Intelligent-Tiering",
                )
        self.save_sites()

    def export_sites(self) -> list[dict[str, str]]:
        """Every parameter under the sites path, with its type (to restore it exactly)."""
        client = self.ssm()
        parameters: list[dict[str, str]] = []
        paginator = client.get_paginator("get_parameters_by_path")
        for page in paginator.paginate(
            Path=self.settings.sites_path, Recursive=True, WithDecryption=True
        ):
            for parameter in page["Parameters"]:
                parameters.append(
                    {
                        "name": parameter["Name"],
                        "type": parameter["Type"],
                        "value": parameter["Value"],
                    }
                )
        return sorted(parameters, key=lambda parameter: parameter["name"])

    def save_sites(self) -> None:
        """Writes the site list to ``sites.json`` if it changed (atomically)."""
        if not self.settings.persist_sites or self.aws is None or self.aws.pid is None:
            return
        assert self.demo is not None
        content = {
            "path": self.settings.sites_path,
            "demo": self.demo.url("").rstrip("/"),  # sites under it follow the demo port
            "parameters": self.export_sites(),
        }
        text = json.dumps(content, indent=2)
        if text == self._saved_sites:
            return
        partial = self.sites_file.with_suffix(".json.partial")
        partial.write_text(text + "\n")
        partial.replace(self.sites_file)
        self._saved_sites = text

    # -- running -----------------------------------------------------------------------------

    def tick(self, moment: datetime | None = None) -> dict[str, Any]:
        """One scheduler invocation (at the next simulated minute unless ``moment``)."""
        assert self.lambda_api is not None
        assert self.aws is not None
        tick = moment or self.clock.next()
        summary: dict[str, Any] = self.lambda_api.invoke(
            SCHEDULER, scheduled_event(tick, region=self.aws.region)
        )
        return summary

    @property
    def database(self) -> Database:
        if self._database is None:
            settings = DatabaseSettings.from_url(self.database_url, schema=self.settings.db_schema)
            self._database = Database(settings)
        return self._database

    def stored_checks(self) -> int:
        checks = f"{self.settings.db_schema}.checks"
        try:
            with self.database.transaction() as connection:
                rows = connection.run(f"SELECT count(*) FROM {checks}")  # noqa: S608
        except WebcheckerError:
            return -1
        except Exception as error:  # the table does not exist before the writer's first batch
            logger.debug("cannot count checks yet: %s", error)
            return -1
        return int(rows[0][0])

    def wait_for_writer(self, *, timeout: float) -> bool:
        """Waits until the writer has handled as many records as the checkers published."""
        if self.poller is None:
            return True
        with self._counts:
            return self._counts.wait_for(lambda: self.handed_over >= self.published, timeout)

    def run(self, view: LiveView, *, stop: threading.Event | None = None) -> None:
        """Ticks until ``duration`` or ``stop``.

        On a terminal the table is refreshed every second; otherwise it is printed once per
        tick, when the tick's checks are stored (or when the next tick is due).
        """
        stop = stop or threading.Event()
        settings = self.settings
        started = time.monotonic()
        deadline = started + settings.duration if settings.duration else None
        next_tick = started
        last_summary: dict[str, Any] = {}
        complete = True  # the plain view has printed the latest tick's stored results
        while not stop.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if now >= next_tick:
                try:
                    last_summary = self.tick()
                except WebcheckerError as error:
                    view.message(f"tick failed: {error}")
                next_tick += settings.tick_seconds
                self.save_sites()
                complete = False
            if not view.tty and not complete:
                until = min(next_tick, deadline or next_tick)
                complete = self.settle(until=until, stop=stop)
                if complete or time.monotonic() >= next_tick:
                    self._render(view, last_summary)  # at the latest when the next tick is due
            if view.tty:
                self._render(view, last_summary)
            wake = min(next_tick, deadline or next_tick, time.monotonic() + 1.0)
            stop.wait(max(0.0, wake - time.monotonic()))
        # A last table with the checks that were still in flight (waiting at most 15 s).
        settled = self.settle(until=time.monotonic() + 15.0, stop=threading.Event())
        if view.tty or not complete or not settled:
            self._render(view, last_summary)
        view.release()

    def settle(self, *, until: float, stop: threading.Event) -> bool:
        """Waits (until the monotonic time ``until``, or ``stop``) for every checker
        invocation to finish and the writer to store what they published; True if so."""
        while not stop.is_set():
            remaining = until - time.monotonic()
            if remaining <= 0:
                return False
            slice_ = min(0.5, remaining)
            if self.lambda_api is not None and not self.lambda_api.drain(slice_):
                continue
            if self.wait_for_writer(timeout=slice_):
                return True
        return False

    def _render(self, view: LiveView, summary: Mapping[str, Any]) -> None:
        try:
            catalog = self.store.load(force=True)
            statuses = read_statuses(self.database, catalog.sites)
        except Exception as error:  # e.g. the schema is created by the writer's first batch
            view.message(f"(status not available yet: {error})")
            return
        width = shutil.get_terminal_size((120, 24)).columns
        title = (
            f"tick {summary.get('tick', '-')}: {summary.get('sites', 0)} sites, "
            f"{summary.get('due', 0)} due, {summary.get('invocations', 0)} checker invocations"
            f"{', ' + str(summary['invalid']) + ' invalid' if summary.get('invalid') else ''}"
        )
        footer = []
        if self.lambda_api is not None and self.lambda_api.failures:
            footer.append(
                f"{len(self.lambda_api.failures)} checker events dropped after 3 attempts: "
                f"see {self.state_dir / 'lambda-failures.jsonl'}"
            )
        view.show(title, format_table(statuses, width=width), footer)

    def _write_env_file(self) -> None:
        lines = [f"export {key}={value}" for key, value in self.aws_env().items()]
        lines.append(f"export DATABASE_URL='{self.database_url}'")
        (self.state_dir / "env").write_text("\n".join(lines) + "\n")

    def banner(self) -> list[str]:
        """What is running where, and how to use it from another terminal."""
        assert self.aws is not None
        assert self.demo is not None
        kafka = "embedded Tansu" if self.broker is not None else "KAFKA_BOOTSTRAP_SERVERS"
        database = "embedded" if self.postgres is not None else "DATABASE_URL"
        psql = _psql_command()
        return [
            "Webchecker local stack (Ctrl-C stops it)",
            f"  Parameter Store  {self.aws.endpoint_url}  (moto; sites saved in {self.sites_file})",
            f"  Kafka            {self.bootstrap_servers}  ({kafka}, topic {self.settings.topic})",
            f"  PostgreSQL       {self.database_url}  ({database})",
            f"  Demo targets     {self.demo.url('/')}",
            f"  Logs             {self.log_dir}/",
            f"  Tick             every {self.settings.tick_seconds:g}s = one scheduler minute",
            "In another terminal:",
            f"  source {self.state_dir / 'env'}",
            f"  # that is: export {' '.join(f'{k}={v}' for k, v in self.aws.client_env().items())}",
            f"  #          export DATABASE_URL='{self.database_url}'",
            "  webchecker sites list",
            "  webchecker report",
            f'  {psql} "$DATABASE_URL"',
            "",
        ]


def _psql_command() -> str:
    found = shutil.which("psql")
    if found:
        return "psql"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns without XDG_RUNTIME_DIR
            import pgserver._commands  # ships psql with its server
    except ImportError:
        return "psql"
    return str(Path(getattr(pgserver._commands, "POSTGRES_BIN_PATH", "")) / "psql")


def _record_child(path: Path, port: int) -> None:
    """Records the pid of our child listening on ``port`` (the broker runs in its own session)."""
    import psutil  # type: ignore[import-untyped]

    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if any(f"127.0.0.1:{port}" in part for part in child.cmdline()):
                pidfiles.record(path, child.pid)
                return


def ensure_topic(
    bootstrap_servers: str, topic: str, partitions: int, timeout: float = 20.0
) -> None:
    """Creates the topic if it does not exist (MSK does not auto-create topics)."""
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    # log_level 3: errors only (librdkafka prints notices to stderr, over the live view)
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 3})
    metadata = admin.list_topics(timeout=timeout)
    if topic in metadata.topics:
        return
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions)])
    for future in futures.values():
        try:
            future.result(timeout)
        except Exception as error:  # already created by someone else is fine
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                raise WebcheckerError(f"cannot create topic {topic}: {error}") from error


@contextlib.contextmanager
def terminal_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM stops the stack like Ctrl-C (SIGINT raises KeyboardInterrupt as usual)."""

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_local(settings: LocalSettings, out: TextIO | None = None) -> int:
    """``webchecker local``: start, tick with a live view until the end, stop cleanly."""
    out = out or sys.stdout
    # Everything AWS here is local (explicit endpoints and fake credentials); a profile the
    # user has selected for real AWS must not be looked up (or fail) on the way.
    os.environ.pop("AWS_PROFILE", None)
    state_dir = settings.state_dir.expanduser().absolute()
    (state_dir / "logs").mkdir(parents=True, exist_ok=True)
    _log_to_file(state_dir / "logs" / "stack.log")
    view = LiveView(out)
    stop = threading.Event()
    view.message("starting the local stack (broker, PostgreSQL, Parameter Store, functions)...")
    with terminal_signals(stop), LocalStack(settings) as stack:
        for line in stack.banner():
            view.message(line)
        try:
            stack.run(view, stop=stop)
        except KeyboardInterrupt:
            view.release()
            view.message("stopping (Ctrl-C)...")
    view.message("stopped; every service the stack started is down")
    return 0


def _log_to_file(path: Path) -> None:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
