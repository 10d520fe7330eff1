"""How ``webchecker local`` runs: names, defaults and the settings every part of the stack reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webchecker.config import env_int, env_optional, env_str
from webchecker.exceptions import ConfigurationError
from webchecker.local.embedded.lambda_api import RetryPolicy
from webchecker.schedule.catalog import DEFAULT_SITES_PATH

DEFAULT_STATE_DIR = Path(".webchecker")
DEFAULT_TICK_SECONDS = 60.0
DEFAULT_DEMO_PORT = 8780
DEFAULT_TOPIC = "webchecker.checks"
STACK_NAME = "webchecker"
SCHEDULER = f"{STACK_NAME}-scheduler"
CHECKER = f"{STACK_NAME}-checker"
WRITER = f"{STACK_NAME}-writer"
NOTIFIER = f"{STACK_NAME}-notifier"
#: Set by ``STATE_DIR/env`` to the embedded broker's address (see ``env_file``).
EMBEDDED_KAFKA_VARIABLE = "WEBCHECKER_LOCAL_KAFKA"


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
    #: template.yaml's ChecksPerInvocation: per-invocation costs spread over more checks.
    checks_per_invocation: int = 800
    #: Ticks between two status page renders (template.yaml's StatusPageSchedule: 5 minutes).
    status_page_ticks: int = 5
    retry_delays: tuple[float, ...] | None = None  # default: one and two ticks
    function_env: Mapping[str, str] = field(default_factory=dict)
    #: Variables from the environment not used, and why (shown in the banner).
    ignored: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> LocalSettings:
        kafka = env_optional("KAFKA_BOOTSTRAP_SERVERS", env)
        ignored: tuple[str, ...] = ()
        if kafka is not None and kafka == env_optional(EMBEDDED_KAFKA_VARIABLE, env):
            # From `source .webchecker/env` of an earlier run: that broker stopped with it.
            kafka = None
            ignored = (
                "KAFKA_BOOTSTRAP_SERVERS: an earlier run's embedded broker (from its env file);"
                " starting a new one",
            )
        values: dict[str, Any] = {
            "sites_path": env_str("SITES_PATH", DEFAULT_SITES_PATH, env),
            "topic": env_str("KAFKA_TOPIC", DEFAULT_TOPIC, env),
            "kafka_bootstrap_servers": kafka,
            "ignored": ignored,
            "database_url": env_optional("DATABASE_URL", env),
            "db_schema": env_str("DB_SCHEMA", "webchecker", env),
            "status_page_ticks": env_int("STATUS_PAGE_TICKS", 5, env, minimum=1),
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

    @property
    def state_path(self) -> Path:
        """``state_dir`` as an absolute path (the working directory may change later)."""
        return self.state_dir.expanduser().absolute()
