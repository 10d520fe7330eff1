"""The lines ``webchecker local`` prints at start: what runs where, and how to use it."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from webchecker.local.stack import LocalStack


def banner(stack: LocalStack) -> list[str]:
    """What is running where, and how to use it from another terminal."""
    assert stack.aws is not None
    assert stack.demo is not None
    kafka = "embedded Tansu" if stack.broker is not None else "KAFKA_BOOTSTRAP_SERVERS"
    database = "embedded" if stack.postgres is not None else "DATABASE_URL"
    psql = _psql_command()
    return [
        "Webchecker local stack (Ctrl-C stops it)",
        f"  Parameter Store  {stack.aws.endpoint_url}  (moto; sites saved in {stack.sites_file})",
        f"  Kafka            {stack.bootstrap_servers}  ({kafka}, topic {stack.settings.topic})",
        f"  PostgreSQL       {stack.database_url}  ({database})",
        f"  Demo targets     {stack.demo.url('/')}",
        f"  Logs             {stack.log_dir}/",
        f"  Tick             every {stack.settings.tick_seconds:g}s = one scheduler minute",
        "In another terminal:",
        f"  source {stack.state_dir / 'env'}",
        f"  # that is: export {' '.join(f'{k}={v}' for k, v in stack.aws.client_env().items())}",
        f"  #          export DATABASE_URL='{stack.database_url}'",
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
