"""The infrastructure parts of the local stack: the state-directory lock, Kafka, PostgreSQL
and the demo targets (moto's server is ``embedded.aws.EmbeddedAws``, used as it is).

Each is a ``Service``; the ones that may be given from outside (``KAFKA_BOOTSTRAP_SERVERS``,
``DATABASE_URL``) start the embedded server only when nothing was given.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING

import boto3

from webchecker.exceptions import ConfigurationError, WebcheckerError
from webchecker.local.demo import DemoServer
from webchecker.local.embedded import pidfiles
from webchecker.local.embedded.aws import EmbeddedAws
from webchecker.local.embedded.broker import EmbeddedBroker
from webchecker.local.embedded.postgres import EmbeddedPostgres
from webchecker.local.embedded.service import Service
from webchecker.local.settings import LocalSettings
from webchecker.store.database import Database, DatabaseSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ssm import SSMClient

logger = logging.getLogger(__name__)


def ssm_client(aws: EmbeddedAws) -> SSMClient:
    """An SSM client on this stack's moto (explicit: the caller's AWS_* are not ours)."""
    client: SSMClient = boto3.client("ssm", **aws.client_args())
    return client


def _s3_client(aws: EmbeddedAws) -> S3Client:
    client: S3Client = boto3.client("s3", **aws.client_args())
    return client


class StateLock(Service):
    """One stack per state directory: two would fight over the database and the site list."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "local.lock"
        self._file: IO[str] | None = None

    def start(self) -> StateLock:
        if self._file is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "a+")  # noqa: SIM115  (held open: the flock lives with it)
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "?"
            file.close()
            raise ConfigurationError(
                f"another webchecker local (pid {holder}) uses {self.path.parent}; stop it first"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(str(os.getpid()))
        file.flush()
        self._file = file
        return self

    def stop(self) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the flock
            self._file = None


class Kafka(Service):
    """The embedded Tansu broker (unless ``KAFKA_BOOTSTRAP_SERVERS``), and the topic on it."""

    def __init__(self, settings: LocalSettings, aws: EmbeddedAws) -> None:
        self.settings = settings
        self.aws = aws
        self.log_dir = settings.state_path / "logs"
        self.pid_file = settings.state_path / "run" / "tansu.pid"
        self.broker: EmbeddedBroker | None = None
        self.bootstrap_servers = ""

    def start(self) -> Kafka:
        if self.settings.kafka_bootstrap_servers:
            self.bootstrap_servers = self.settings.kafka_bootstrap_servers
        elif self.broker is None:
            pidfiles.stop_stale(self.pid_file)
            self.broker = self._new_broker().start()
            _record_child(self.pid_file, self.broker.port)
            self.bootstrap_servers = self.broker.bootstrap_servers
        ensure_topic(self.bootstrap_servers, self.settings.topic, self.settings.partitions)
        return self

    def stop(self) -> None:
        broker, self.broker = self.broker, None
        if broker is not None:
            try:
                broker.stop()
            finally:
                pidfiles.forget(self.pid_file)

    def _new_broker(self) -> EmbeddedBroker:
        log_path = str(self.log_dir / "tansu.log")
        if not self.settings.durable_broker:
            return EmbeddedBroker(log_path=log_path)
        bucket = "webchecker-tansu"
        client_env = self.aws.client_env()
        _s3_client(self.aws).create_bucket(
            Bucket=bucket,
            CreateBucketConfiguration={"LocationConstraint": client_env["AWS_REGION"]},  # type: ignore[typeddict-item]
        )
        env = {
            **client_env,
            "AWS_ENDPOINT": client_env["AWS_ENDPOINT_URL"],  # what Tansu's S3 client reads
            "AWS_ALLOW_HTTP": "true",
        }
        return EmbeddedBroker(storage_engine=f"s3://{bucket}/", env=env, log_path=log_path)


class Postgres(Service):
    """``DATABASE_URL``, else the embedded server with its data in ``STATE_DIR/postgres``;
    ``database`` is the stack's own client (the live view, the tests)."""

    def __init__(self, settings: LocalSettings) -> None:
        self.settings = settings
        self.server: EmbeddedPostgres | None = None
        self.url = ""
        self.note: str | None = None  # how DATABASE_URL was taken (shown in the banner)
        self._database: Database | None = None

    def start(self) -> Postgres:
        if self.server is not None:
            return self
        data_dir = self.settings.state_path / "postgres"
        given = self.settings.database_url
        if given and given != EmbeddedPostgres(data_dir).url():
            self.url = given
            self._check_answers()
            return self
        if given:  # from `source .webchecker/env`: this stack's own server, not running yet
            self.note = "DATABASE_URL: this stack's embedded database (from its env file)"
        # Finds and stops a server left by a killed run; shares one a live run owns.
        self.server = EmbeddedPostgres(data_dir).start()
        self.url = self.server.url()
        return self

    def _check_answers(self) -> None:
        """Fails the start at once rather than every tick later (a stale or wrong URL)."""
        try:
            with self.database.transaction() as connection:
                connection.run("SELECT 1")
        except WebcheckerError as error:
            raise ConfigurationError(
                f"DATABASE_URL: {error}; unset DATABASE_URL to use the embedded database"
            ) from error

    def stop(self) -> None:
        if self._database is not None:
            self._database.close()
            self._database = None
        server, self.server = self.server, None
        if server is not None:
            server.stop()

    @property
    def database(self) -> Database:
        if self._database is None:
            settings = DatabaseSettings.from_url(self.url, schema=self.settings.db_schema)
            self._database = Database(settings)
        return self._database


class DemoTargets(Service):
    """The demo server, with a clear error when its port is taken."""

    def __init__(self, settings: LocalSettings) -> None:
        self.settings = settings
        self.server = DemoServer(port=settings.demo_port)

    def start(self) -> DemoTargets:
        try:
            self.server.start()
        except OSError as error:
            raise ConfigurationError(
                f"demo targets: port {self.settings.demo_port} is in use ({error.strerror}); "
                "pass --demo-port"
            ) from error
        return self

    def stop(self) -> None:
        self.server.stop()


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
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception as error:  # KafkaException: no broker answered within the timeout
        raise ConfigurationError(
            f"Kafka at {bootstrap_servers} does not answer ({error}); unset "
            "KAFKA_BOOTSTRAP_SERVERS to use the embedded broker"
        ) from error
    if topic in metadata.topics:
        return
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions)])
    for future in futures.values():
        try:
            future.result(timeout)
        except Exception as error:  # already created by someone else is fine
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                raise WebcheckerError(f"cannot create topic {topic}: {error}") from error
