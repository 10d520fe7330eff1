"""Issue 9 item 18: "database unavailable" names where (never the password) and what to check."""

from __future__ import annotations

from pathlib import Path

import pytest

from webchecker.exceptions import StoreUnavailable
from webchecker.store.database import Database, DatabaseSettings


@pytest.mark.parametrize("form", ["socket", "tcp"])
def test_unavailable_names_the_database_without_its_password(tmp_path: Path, form: str) -> None:
    # Nothing listens there: a socket directory without a server, a closed loopback port.
    url = (
        f"postgresql://app:s3cret@/wc?host={tmp_path}"
        if form == "socket"
        else "postgresql://app:s3cret@127.0.0.1:9/wc"
    )
    database = Database(DatabaseSettings.from_url(url, timeout=5))

    with pytest.raises(StoreUnavailable) as raised, database.transaction() as connection:
        connection.run("SELECT 1")

    message = str(raised.value)
    where = f"postgresql://app@/wc?host={tmp_path}" if form == "socket" else "127.0.0.1:9/wc"
    assert where in message
    assert "s3cret" not in message
    assert "DATABASE_URL" in message  # the hint: what to check
