"""``webchecker local`` in the foreground: start the stack, tick with a live view, stop cleanly."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TextIO

from webchecker.local.live import LiveView
from webchecker.local.settings import LocalSettings
from webchecker.local.stack import LocalStack


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
    state_dir = settings.state_path
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
    lost = stack.progress.published - stack.progress.handed_over  # after the drain in stop()
    if lost > 0:
        view.message(
            f"{lost} check {'result was' if lost == 1 else 'results were'} published but not "
            f"stored (the writer failed: see {stack.log_dir / 'stack.log'})"
        )
    view.message("stopped; every service the stack started is down")
    return 0


def _log_to_file(path: Path) -> None:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
