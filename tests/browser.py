"""Headless Chromium (Debian's ``chromium`` package, installed by ``make browser``) for the
status page tests: the DOM after load, screenshots, and a proof that nothing was fetched
from anywhere but loopback.

Every request Chromium would send off loopback goes to ``RecordingProxy`` (a proxy on
127.0.0.1 that answers 502 and remembers the request), and host names resolve to nothing,
so no traffic can leave the machine whatever the page says. Chromium itself still asks its
own services (time, component updates, accounts) despite the flags below; those requests
name hosts of ``CHROMIUM_SERVICES`` and carry no ``Referer``, so ``page_requests`` leaves
them out and keeps everything a page could have caused.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_SERVICES = frozenset(
    {
        "accounts.google.com",
        "clients2.google.com",
        "update.googleapis.com",
        "redirector.gvt1.com",
        "optimizationguide-pa.googleapis.com",
        "safebrowsing.googleapis.com",
    }
)
QUIET = (
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-component-extensions-with-background-pages",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--no-pings",
    "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate,"
    "AutofillServerCommunication",
)
TIMEOUT_S = 90.0


def chromium() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError(
        "no Chromium on PATH: `make browser` installs Debian's chromium package "
        "(other systems: install Chromium or Google Chrome and put it on PATH as chromium)"
    )


class RecordingProxy:
    """An HTTP proxy on loopback that refuses everything and records what it was asked."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []  # request line, headers
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._socket.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._socket.getsockname()[1]}"

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(2)
                self.requests.append(_read_head(connection))
                with contextlib.suppress(OSError):
                    connection.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")

    @property
    def page_requests(self) -> list[str]:
        """Requests that a page caused: with a Referer, or to a host not Chromium's own."""
        found = []
        for line, headers in self.requests:
            host = _host(line)
            if "referer" in headers or host not in CHROMIUM_SERVICES:
                found.append(line)
        return found


def _read_head(connection: socket.socket) -> tuple[str, dict[str, str]]:
    data = b""
    try:
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = connection.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def _host(request_line: str) -> str:
    """The host a proxy request line names (``GET http://h/x`` or ``CONNECT h:443``)."""
    parts = request_line.split()
    target = parts[1] if len(parts) > 1 else ""
    if "://" in target:
        target = target.split("://", 1)[1]
    return target.split("/", 1)[0].rsplit(":", 1)[0].lower()


def run_chromium(
    proxy: RecordingProxy, url: str, arguments: Sequence[str], *, profile: Path
) -> subprocess.CompletedProcess[bytes]:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        *QUIET,
        f"--user-data-dir={profile}",
        f"--proxy-server=http://{proxy.address}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        *arguments,
        url,
    ]
    result = subprocess.run(command, capture_output=True, timeout=TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result


def dump_dom(proxy: RecordingProxy, url: str) -> str:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        result = run_chromium(proxy, url, ["--dump-dom"], profile=Path(profile))
    return result.stdout.decode()


def screenshot(proxy: RecordingProxy, url: str, out: Path, *, width: int, height: int) -> Path:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        run_chromium(
            proxy,
            url,
            [f"--window-size={width},{height}", f"--screenshot={out}"],
            profile=Path(profile),
        )
    return out


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height
