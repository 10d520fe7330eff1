"""The status page of the local stack: rendered into ``STATE_DIR/status`` at every tick and
served at ``http://127.0.0.1:PORT/status/`` by a plain static-file server on loopback.

The renderer is the one the statuspage function runs (``page.statuspage.StatusPage``), with a
directory instead of the S3 bucket; the server is the local stand-in for S3 + CloudFront
(files only, no listing, nothing outside the directory). A failed render is logged and
the previous page stays, as in AWS.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from webchecker.exceptions import WebcheckerError
from webchecker.local.embedded.service import Service
from webchecker.page.publish import DirectoryPublisher
from webchecker.page.settings import PageSettings
from webchecker.page.statuspage import StatusPage
from webchecker.store.database import Database, DatabaseSettings

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
PREFIX = "/status/"


class _StatusFiles(SimpleHTTPRequestHandler):
    """Serves the directory's files below ``/status/``; everything else is 404."""

    def send_head(self) -> Any:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        if path in {"/", "/status"}:
            self.send_response(302)
            self.send_header("Location", PREFIX)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if not path.startswith(PREFIX):
            self.send_error(404)
            return None
        self.path = "/" + path[len(PREFIX) :]
        if self.path.endswith("/"):
            self.path += "index.html"  # never a directory listing
        return super().send_head()

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("status page: " + format, *args)


class StatusSite(Service):
    """Renders the page on ``render()`` (each tick) and serves it while started."""

    def __init__(
        self,
        directory: Path,
        database_url: Callable[[], str],
        *,
        schema: str = "webchecker",
        page: PageSettings | None = None,
        port: int = 0,
    ) -> None:
        self.directory = directory
        self._database_url = database_url
        self._schema = schema
        self._page_settings = page or PageSettings()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._page: StatusPage | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """Where the page is served (``(not started)`` before ``start()``)."""
        if self._server is None:
            return "(not started)"
        return f"http://{HOST}:{self._server.server_address[1]}{PREFIX}"

    def start(self) -> StatusSite:
        if self._server is not None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        handler = partial(_StatusFiles, directory=str(self.directory))
        self._server = ThreadingHTTPServer((HOST, self._port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="status-page", daemon=True
        )
        self._thread.start()
        database = Database(DatabaseSettings.from_url(self._database_url(), schema=self._schema))
        self._page = StatusPage(self._page_settings, database, DirectoryPublisher(self.directory))
        self.render()
        return self

    def render(self) -> bool:
        """Renders the page again; False (logged) when it could not be, the old page stays."""
        if self._page is None:
            return False
        with self._lock:
            try:
                self._page.publish()
            except WebcheckerError as error:
                logger.warning("status page not rendered: %s", error)
                return False
        return True

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        page, self._page = self._page, None
        if page is not None:
            with contextlib.suppress(Exception):
                page.close()
