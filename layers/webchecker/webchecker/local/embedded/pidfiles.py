"""Pid files for the helper processes the local stack starts, so a killed run can be cleaned up.

A run that dies by SIGKILL skips every cleanup hook and leaves its child servers running
(they run in their own session so that Ctrl-C reaches only the stack, which stops them in
order). Each child is recorded as ``{"pid", "started"}``; the next run stops a recorded
process only if it is still the same process (same start time: pids are recycled).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


def _started_at(pid: int) -> float | None:
    import psutil  # type: ignore[import-untyped]  # a dev dependency, like every embedded server

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def record(path: Path, pid: int) -> None:
    """Writes ``path`` for the process ``pid`` (creating the directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": pid, "started": _started_at(pid)}))


def forget(path: Path) -> None:
    path.unlink(missing_ok=True)


def stop_stale(path: Path, *, timeout: float = 10.0) -> bool:
    """Stops the process recorded in ``path`` if it still runs; True when one was stopped."""
    import psutil

    try:
        recorded = json.loads(path.read_text())
        pid, started = int(recorded["pid"]), recorded["started"]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        forget(path)
        return False
    now = _started_at(pid)
    stopped = False
    if pid != os.getpid() and now is not None and started is not None and abs(now - started) < 1:
        logger.warning("stopping a stale %s (pid %d) left by a run that was killed", path.stem, pid)
        try:
            process = psutil.Process(pid)
            process.terminate()
            try:
                process.wait(timeout)
            except psutil.TimeoutExpired:
                process.kill()
                process.wait(timeout)
            stopped = True
        except psutil.NoSuchProcess:
            pass
    forget(path)
    return stopped
