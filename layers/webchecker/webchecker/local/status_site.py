"""The status page of the local stack: rendered into ``STATE_DIR/status`` at start and then
on its own schedule, and served at ``/status/`` on the REST API's address (DESIGN.md), the
local stand-in for S3 and CloudFront.

The schedule is the statuspage function's in AWS (``StatusPageSchedule``, rate(5 minutes)):
every ``every_ticks`` simulated minutes, in the background, as EventBridge would invoke that
function next to the scheduler. It renders in a process of its own (the function's
container), at a lower CPU priority: rendering 10,000 sites takes seconds of CPU, which
must neither hold up the tick, nor take the stack's interpreter lock from the Invoke API and
the poller, nor the cores from the checks. A run still going when the next one is due is
skipped (it would only redo the same work).

The renderer is the one the statuspage function runs (``page.statuspage.StatusPage``), with a
directory instead of the S3 bucket. ``response(event)`` answers a payload 2.0 request for
``/status/...`` with the file (files only: no listing, nothing outside the directory) and
returns None for every other path, so the API server tries it before the REST API. A failed
render is logged and the previous page stays, as in AWS.
"""

from __future__ import annotations

import base64
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from webchecker.exceptions import WebcheckerError
from webchecker.local.embedded.lambda_api import exit_with_parent
from webchecker.local.embedded.service import Service
from webchecker.page.publish import DirectoryPublisher
from webchecker.page.settings import PageSettings
from webchecker.page.statuspage import HTML_TYPE, JSON_TYPE, SVG_TYPE, StatusPage
from webchecker.store.database import Database, DatabaseSettings

logger = logging.getLogger(__name__)

PREFIX = "/status/"
CONTENT_TYPES = {".html": HTML_TYPE, ".json": JSON_TYPE, ".svg": SVG_TYPE}


def static_response(directory: Path, event: Mapping[str, Any]) -> dict[str, Any] | None:
    """A payload 2.0 response with the file ``event`` asks for below ``/status/``; None when
    the path is not the status page's."""
    path = str(event.get("rawPath") or "/")
    if path == PREFIX.rstrip("/"):
        return {"statusCode": 302, "headers": {"Location": PREFIX}, "body": ""}
    if not path.startswith(PREFIX):
        return None
    method = str(event.get("requestContext", {}).get("http", {}).get("method", "GET"))
    if method not in {"GET", "HEAD"}:
        return _text(405, "method not allowed", {"Allow": "GET, HEAD"})
    name = path[len(PREFIX) :]
    if name == "" or name.endswith("/"):
        name += "index.html"  # never a directory listing
    root = directory.resolve()
    try:
        target = (root / name).resolve()
        found = target.is_relative_to(root) and target.is_file()
    except (ValueError, OSError):  # a NUL byte, a name too long...: no such file
        found = False
    if not found:
        return _text(404, "not found")
    content_type = CONTENT_TYPES.get(target.suffix, "application/octet-stream")
    return {
        "statusCode": 200,
        "headers": {"Content-Type": content_type, "Cache-Control": "no-cache"},
        "body": base64.b64encode(target.read_bytes()).decode(),
        "isBase64Encoded": True,
    }


def _text(status: int, text: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "text/plain; charset=utf-8", **(headers or {})},
        "body": text,
    }


#: The renderer's niceness: a background job, the checks go first on a busy machine.
NICENESS = 10

# -- the renderer's process ----------------------------------------------------------------

_page: StatusPage | None = None


def _start_renderer(
    database_url: str, schema: str, page: PageSettings, directory: Path, parent: int
) -> None:
    global _page
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the stack decides when it stops
    exit_with_parent(parent)
    os.nice(NICENESS)
    database = Database(DatabaseSettings.from_url(database_url, schema=schema))
    _page = StatusPage(page, database, DirectoryPublisher(directory))


def _render() -> str | None:
    """Renders and publishes once; the error's text when it failed (the old page stays)."""
    assert _page is not None
    try:
        _page.publish()
    except WebcheckerError as error:
        return str(error)
    return None


def _close() -> None:
    if _page is not None:
        _page.close()


#: Ticks (simulated minutes) between two renders: template.yaml's StatusPageSchedule.
DEFAULT_EVERY_TICKS = 5


class StatusSite(Service):
    """Renders the page at start, on ``render()`` and every ``every_ticks`` ticks (``tick()``,
    in the background); ``response()`` serves it."""

    def __init__(
        self,
        directory: Path,
        database_url: Callable[[], str],
        *,
        base_url: Callable[[], str] = lambda: "",
        schema: str = "webchecker",
        page: PageSettings | None = None,
        every_ticks: int = DEFAULT_EVERY_TICKS,
    ) -> None:
        if every_ticks < 1:
            raise WebcheckerError(f"status page: every_ticks must be at least 1, got {every_ticks}")
        self.directory = directory
        self.every_ticks = every_ticks
        self._database_url = database_url
        self._base_url = base_url
        self._schema = schema
        self._page_settings = page or PageSettings()
        self._renderer: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._ticks = 0
        self._background: Future[str | None] | None = None

    @property
    def url(self) -> str:
        """Where the page is served (``(not started)`` before the server has an address)."""
        base = self._base_url()
        return f"{base}{PREFIX}" if base else "(not started)"

    def response(self, event: Mapping[str, Any]) -> dict[str, Any] | None:
        return static_response(self.directory, event)

    @property
    def pid(self) -> int | None:
        """The renderer's process id once it rendered (for CPU accounting)."""
        processes = getattr(self._renderer, "_processes", None) or {}
        return next(iter(processes), None)

    def start(self) -> StatusSite:
        if self._renderer is not None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        self._renderer = ProcessPoolExecutor(
            max_workers=1,
            # spawn, not fork: the stack is multi-threaded (fork would copy held locks)
            mp_context=get_context("spawn"),
            initializer=_start_renderer,
            initargs=(
                self._database_url(),
                self._schema,
                self._page_settings,
                self.directory,
                os.getpid(),
            ),
        )
        self.render()
        return self

    def render(self) -> bool:
        """Renders the page again (waiting for it); False (logged) when it could not be, the
        old page stays."""
        future = self._submit()
        return future is not None and self._outcome(future)

    def _submit(self) -> Future[str | None] | None:
        with self._lock:
            if self._renderer is None:
                return None
            return self._renderer.submit(_render)

    @staticmethod
    def _outcome(future: Future[str | None]) -> bool:
        error = future.result()
        if error is not None:
            logger.warning("status page not rendered: %s", error)
        return error is None

    def tick(self) -> bool:
        """Counts a scheduler tick; the second and then every ``every_ticks``-th start a render
        in the background (unless the previous one is still running). True when one started."""
        self._ticks += 1
        # From the second tick on (the first tick's checks are stored by then), then every
        # every_ticks: 2, 7, 12... with the default.
        if (self._ticks - 2) % self.every_ticks:
            return False
        if self._background is not None and not self._background.done():
            logger.info("status page: the previous render is still running; this one skipped")
            return False
        self._background = self._submit()
        if self._background is not None:
            self._background.add_done_callback(self._logged)
        return self._background is not None

    def _logged(self, future: Future[str | None]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            logger.warning("status page not rendered: %s", error)
        else:
            self._outcome(future)

    def wait(self, timeout: float | None = None) -> bool:
        """Waits for a background render; True when none is running."""
        background = self._background
        if background is None:
            return True
        try:
            background.exception(timeout)
        except TimeoutError:
            return False
        except CancelledError:  # stopped before it ran
            pass
        return True

    def stop(self) -> None:
        self.wait(30)
        with self._lock:
            renderer, self._renderer = self._renderer, None
        if renderer is not None:
            try:
                renderer.submit(_close).result(10)
            except Exception as error:  # the renderer died: nothing left to close
                logger.debug("status page renderer: %s", error)
            renderer.shutdown(wait=True, cancel_futures=True)
