"""`webchecker local` in a real terminal (tmux): the live table fits the screen, lists
invalid entries, and never pushes copies of itself into the scrollback (issue 9, 16-17)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

SITES_PATH = "/webchecker/sites"
HEADER = "STATE    SITE"


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # Outside pytest's basetemp (see tests/e2e/conftest.py: root runs PostgreSQL as pgserver).
    path = Path(tempfile.mkdtemp(prefix="webchecker-tmux-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def saved_sites(state_dir: Path, count: int) -> None:
    """A saved site list: ``count`` sites (port 9 on loopback: refused at once) and two
    invalid entries."""
    parameters = [
        {
            "name": f"{SITES_PATH}/site-{i:02d}",
            "type": "String",
            "value": json.dumps(
                {"id": f"site-{i:02d}", "url": "http://127.0.0.1:9/", "timeout": 2}
            ),
        }
        for i in range(count)
    ]
    parameters += [
        {"name": f"{SITES_PATH}/broken-json", "type": "String", "value": "{not json"},
        {"name": f"{SITES_PATH}/bad-interval", "type": "String",
         "value": json.dumps({"id": "bad-interval", "url": "http://127.0.0.1:9/", "interval": -1})},
    ]  # fmt: skip
    content = {"path": SITES_PATH, "demo": "", "parameters": parameters}
    (state_dir / "sites.json").write_text(json.dumps(content))


def tmux(socket: str, *args: str) -> str:
    done = subprocess.run(
        ["tmux", "-L", socket, *args], capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout


@pytest.mark.parametrize(("columns", "lines", "sites"), [(80, 24, 40), (200, 60, 40)])
def test_live_table_fits_the_terminal_without_scrollback_copies(
    state_dir: Path, columns: int, lines: int, sites: int
) -> None:
    saved_sites(state_dir, sites)
    # 4 s at one tick a second: the table is redrawn at least four times (once a second on a
    # terminal, and once more at the end), each a chance to push a copy into the scrollback.
    command = [
        sys.executable, "-m", "webchecker", "local", "--tick", "1", "--duration", "4",
        "--demo-port", "0", "--state-dir", str(state_dir),
    ]  # fmt: skip
    done_marker = state_dir / "done"
    script = (
        # tmux may apply the size a moment after the pane starts: wait for it
        f'until [ "$(stty size)" = "{lines} {columns}" ]; do sleep 0.1; done; '
        # COLUMNS/LINES as a shell exports them, stale after a resize: the terminal wins
        "unset DATABASE_URL KAFKA_BOOTSTRAP_SERVERS; export COLUMNS=80 LINES=24; "
        f"{shlex.join(command)}; touch {shlex.quote(str(done_marker))}; sleep 600"
    )
    socket = f"webchecker-test-{os.getpid()}-{columns}"
    size = ("-x", str(columns), "-y", str(lines))
    tmux(socket, "-f", "/dev/null", "new-session", "-d", "-s", "live", *size, script)
    tmux(socket, "set-option", "-w", "-t", "live", "window-size", "manual")
    tmux(socket, "resize-window", "-t", "live", *size)
    try:
        deadline = time.monotonic() + 180
        while not done_marker.exists():
            assert time.monotonic() < deadline, tmux(socket, "capture-pane", "-p", "-t", "live")
            time.sleep(0.5)
        screen = tmux(socket, "capture-pane", "-p", "-t", "live").splitlines()
        everything = tmux(
            socket, "capture-pane", "-p", "-t", "live", "-S", "-", "-E", "-"
        ).splitlines()
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], check=False, timeout=30)

    text = "\n".join(everything)
    # One table in the whole terminal history: the last one, redrawn in place until then.
    assert sum(line.startswith(HEADER) for line in everything) == 1, text
    assert any(line.startswith(HEADER) for line in screen), text
    assert all(len(line) <= columns for line in everything)
    assert "2 invalid site entries skipped:" in text
    assert f"{SITES_PATH}/broken-json: " in text
    assert f"{SITES_PATH}/bad-interval: interval" in text
    rows = [
        line for line in everything if line.split()[1:2] and line.split()[1].startswith("site-")
    ]
    if sites + 10 > lines:  # the table did not fit: the rest is counted
        assert "more sites not shown" in text, text
        assert len(rows) < sites
    else:
        assert len(rows) == sites, text
    assert "stopped; every service the stack started is down" in text
