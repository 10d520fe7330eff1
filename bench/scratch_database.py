"""A database of its own for one benchmark run (not a benchmark: run.py runs bench_*.py).

On the server that ``DATABASE_URL`` names, else on an embedded PostgreSQL started for the run
in a temporary directory; the database is dropped (and the server stopped) afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from webchecker.local.embedded.postgres import EmbeddedPostgres
from webchecker.store.database import Database, DatabaseSettings, quote_identifier


def with_database(url: str, name: str) -> str:
    """``url`` naming the database ``name`` instead."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@contextmanager
def scratch_database(label: str) -> Iterator[str]:
    """The URL of a fresh database; ``label`` names the embedded server's directory."""
    server: EmbeddedPostgres | None = None
    server_dir: Path | None = None
    base_url = os.environ.get("DATABASE_URL")
    if not base_url:
        server_dir = Path(tempfile.mkdtemp(prefix=f"bench-{label}-"))
        server = EmbeddedPostgres(server_dir / "pg").start()
        base_url = server.url()
    name = f"wc_bench_{uuid.uuid4().hex[:8]}"
    try:
        yield with_database(base_url, name)
    finally:
        with Database(DatabaseSettings.from_url(with_database(base_url, "postgres"))) as admin:
            admin.connection().run(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)")
        if server is not None:
            server.stop()
        if server_dir is not None:
            shutil.rmtree(server_dir, ignore_errors=True)
