"""Child processes of the embedded services: started in their own session, stopped in order."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def spawn(
    command: Sequence[str], *, log_path: str | Path | None, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Starts ``command`` with its output in ``log_path`` (or discarded).

    Its own session: Ctrl-C in a terminal reaches only us, and we stop our services in order.
    """
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path or os.devnull, "ab") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=None if env is None else {**os.environ, **env},
            start_new_session=True,
        )


def stop_process(
    process: subprocess.Popen[bytes] | None,
    *,
    signal_number: int = signal.SIGTERM,
    timeout: float = 10.0,
) -> None:
    """Asks ``process`` to stop with ``signal_number``; kills it after ``timeout`` seconds."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal_number)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
