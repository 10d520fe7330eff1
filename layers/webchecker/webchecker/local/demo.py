"""Demo targets on loopback: endpoints that pass and fail in every way a checker must report.

A small asyncio HTTP/1.1 server (one request per connection, like the checker's fresh
connection per check). ``webchecker local`` runs it in a thread; the pipeline benchmark
runs it in its own process (``python -m webchecker.local.demo --port N``) so that its CPU and
memory are not counted as the checker's.

| path | answer |
| --- | --- |
| ``/healthy`` | 200, body contains "healthy"; ``?delay=MS`` answers after MS milliseconds |
| ``/slow`` | 200 after ``SLOW_SECONDS`` |
| ``/hang`` | nothing for ``HANG_SECONDS`` (a site with a shorter timeout fails with ``timeout``) |
| ``/failing`` | 500 |
| ``/flapping`` | 200 and 503, alternating request by request |
| ``/wrong-body`` | 200 with a maintenance page ("healthy" missing: ``regex`` fails) |
| ``/redirect`` | 302 to ``/healthy`` |
| ``/garbage`` | bytes that are not HTTP (``invalid_response``) |
| ``https://`` | any path: a plain-HTTP answer to the TLS handshake (``tls``) |
| ``/big`` | 200 with ``BIG_BYTES`` of filler (more than the checker reads for a regex) |
| anything else | 404 |
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qs

from webchecker.local.embedded.network import free_port
from webchecker.local.embedded.service import Service

HOST = "127.0.0.1"
SLOW_SECONDS = 1.5
HANG_SECONDS = 30.0
BIG_BYTES = 2 * 1024 * 1024
_MAX_HEAD = 16 * 1024
_REASONS = {200: "OK", 302: "Found", 404: "Not Found", 500: "Internal Server Error"}
_REASONS[503] = "Service Unavailable"


class DemoServer(Service):
    """The demo targets on ``HOST:port``, served by an event loop in a background thread."""

    def __init__(self, *, port: int | None = None) -> None:
        self.port = port or free_port(HOST)
        self.requests: Counter[str] = Counter()  # per path: tests and the live view read it
        self._flaps = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    def url(self, path: str = "/") -> str:
        return f"http://{HOST}:{self.port}{path}"

    # -- lifecycle (thread) ------------------------------------------------------------------

    def start(self) -> DemoServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self.serve(ready))
            except BaseException as error:  # reported to start(), which re-raises
                failure.append(error)
                ready.set()

        self._thread = threading.Thread(target=run, name="demo-targets", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    async def serve(self, ready: threading.Event | None = None) -> None:
        """Serves until ``stop()`` (or forever when run as a program)."""
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(self._handle, HOST, self.port, backlog=4096)
        if ready is not None:
            ready.set()
        async with server:
            await self._stopped.wait()

    # -- HTTP --------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.readexactly(1)
            if first == b"\x16":  # a TLS handshake (https:// to this plain-HTTP port)
                writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                await writer.drain()
                return
            head = first + await reader.readuntil(b"\r\n\r\n")
            if len(head) > _MAX_HEAD:
                return
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, target, _ = request_line.split(" ", 2)
            length = 0
            for line in header_lines:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip() or 0)
            if length:
                await reader.readexactly(min(length, 1 << 20))
            path, _, query = target.partition("?")
            self.requests[path] += 1
            if path == "/garbage":
                writer.write(b"this is not HTTP\r\n\r\n")
                await writer.drain()
                return
            status, body, headers = await self._route(path, parse_qs(query))
            head_out = [f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}"]
            headers = {
                "Content-Type": "text/plain; charset=utf-8",
                "Content-Length": str(len(body)),
                "Connection": "close",
                **headers,
            }
            head_out += [f"{key}: {value}" for key, value in headers.items()]
            writer.write(("\r\n".join(head_out) + "\r\n\r\n").encode())
            if method != "HEAD":
                writer.write(body)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, OSError):
            pass  # a client that went away or sent garbage: nothing to answer
        except asyncio.CancelledError:
            # Shutdown with a /hang in flight: end quietly (Python 3.11's stream callback
            # would log the cancellation of a connection task as an error).
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _route(
        self, path: str, query: Mapping[str, list[str]]
    ) -> tuple[int, bytes, dict[str, str]]:
        if path == "/healthy":
            # An emulated server latency (the pipeline benchmark's stand-in for the Internet).
            delay_ms = min(float(query.get("delay", ["0"])[0]), 10_000.0)
            if delay_ms > 0:
                await asyncio.sleep(delay_ms / 1000)
            return 200, b"webchecker demo: healthy\n", {}
        if path == "/slow":
            await asyncio.sleep(SLOW_SECONDS)
            return 200, b"webchecker demo: healthy, but slow\n", {}
        if path == "/hang":
            await asyncio.sleep(HANG_SECONDS)
            return 200, b"webchecker demo: too late\n", {}
        if path == "/failing":
            return 500, b"webchecker demo: internal error\n", {}
        if path == "/flapping":
            if next(self._flaps) % 2 == 0:
                return 200, b"webchecker demo: healthy (this time)\n", {}
            return 503, b"webchecker demo: down (this time)\n", {}
        if path == "/wrong-body":
            return 200, b"webchecker demo: down for maintenance\n", {}
        if path == "/big":
            return 200, b"x" * BIG_BYTES, {}
        if path == "/redirect":
            return 302, b"", {"Location": "/healthy"}
        if path == "/":
            return 200, _index(), {}
        return 404, b"webchecker demo: no such page (GET / lists the endpoints)\n", {}


def _index() -> bytes:
    """The endpoint table of this module's docstring: what a newcomer opening / wants."""
    values = {"SLOW_SECONDS": f"{SLOW_SECONDS:g} s", "HANG_SECONDS": f"{HANG_SECONDS:g} s"}
    values["BIG_BYTES"] = f"{BIG_BYTES // (1024 * 1024)} MiB"
    lines = []
    for row in (__doc__ or "").splitlines():
        if row.startswith("| ``"):
            path, answer = (cell.strip().replace("``", "") for cell in row.strip("| ").split(" | "))
            for name, value in values.items():
                answer = answer.replace(name, value)
            lines.append(f"  {path:<12} {answer}\n")
    return ("webchecker demo targets:\n" + "".join(lines)).encode()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Webchecker demo targets on loopback.")
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    server = DemoServer(port=args.port)
    print(f"demo targets on {server.url()}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
