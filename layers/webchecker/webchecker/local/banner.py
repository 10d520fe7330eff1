"""The lines ``webchecker local`` prints at start: what runs where, and how to use it.

No password is ever printed (the database URL is shown redacted; ``source`` the env file,
which only its owner can read, to get the real one), and the commands are the ones that
work from this shell: ``.venv/bin/webchecker`` when the virtual environment is not active.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from webchecker.store.database import redact_url

if TYPE_CHECKING:
    from webchecker.local.stack import LocalStack


def banner(stack: LocalStack) -> list[str]:
    """What is running where, and how to use it from another terminal."""
    kafka = "embedded Tansu" if stack.broker is not None else "KAFKA_BOOTSTRAP_SERVERS"
    database = "embedded" if stack.postgres is not None else "DATABASE_URL"
    notes = [note for note in (stack.db.note, stack.sites.note) if note]
    notes = [*stack.settings.ignored, *notes]
    command = webchecker_command()
    ticks = stack.status_site.every_ticks
    every = "at every tick" if ticks == 1 else f"at the 2nd tick, then every {ticks}"
    return [
        "Webchecker local stack (Ctrl-C stops it)",
        f"  Parameter Store  {stack.aws.endpoint_url}  (moto; sites saved in {stack.sites_file})",
        f"  Kafka            {stack.bootstrap_servers}  ({kafka}, topic {stack.settings.topic})",
        f"  PostgreSQL       {redact_url(stack.database_url)}  ({database})",
        f"  Demo targets     {stack.demo.url('/')}  (it lists its endpoints)",
        f"  REST API         {stack.rest_api.url}/v1/  (OpenAPI: /v1/openapi.json)",
        f"  Status page      {stack.status_site.url}  (rendered {every})",
        f"  Logs             {stack.log_dir}/",
        f"  Tick             every {stack.settings.tick_seconds:g}s = one scheduler minute",
        *(f"  Note             {note}" for note in notes),
        "In another terminal:",
        f"  source {_shown(stack.state_dir / 'env')}",
        "  # sets AWS_ENDPOINT_URL (moto), DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, SITES_PATH...",
        f"  {command} sites list",
        f"  {command} report",
        f"  {command} topic --count 5      # the latest check results on the Kafka topic",
        '  curl -s "$WEBCHECKER_API_URL/v1/sites"',
        f'  {_psql_command()} "$DATABASE_URL"',
        "",
    ]


def webchecker_command() -> str:
    """How to run ``webchecker`` from this shell: its name when it is on PATH, else the
    script next to this Python (``.venv/bin/webchecker``), else ``python -m webchecker``."""
    script = Path(sys.executable).parent / "webchecker"
    found = shutil.which("webchecker")
    if found and script.exists() and Path(found).resolve() == script.resolve():
        return "webchecker"
    if script.exists():
        return _shown(script)
    return f"{_shown(Path(sys.executable))} -m webchecker"


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (shorter to type)."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def _psql_command() -> str:
    if shutil.which("psql"):
        return "psql"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns without XDG_RUNTIME_DIR
            import pgserver._commands  # ships psql with its server
    except ImportError:
        return "psql"
    return str(Path(getattr(pgserver._commands, "POSTGRES_BIN_PATH", "")) / "psql")
