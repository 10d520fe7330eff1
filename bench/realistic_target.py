"""Targets for the realistic benchmark: HTTP and HTTPS, the behaviour chosen by the path.

Runs in its own process (several processes may share the ports with ``--reuse-port``), on
asyncio's protocol API with a deep accept backlog. Paths (every number in the path, so a
site's behaviour is fixed by its URL and the benchmark knows what was injected):

- ``/d/<delay_ms>/<status>/<size>``: waits ``delay_ms`` after the request head, then
  answers ``status`` with a ``size``-byte HTML body (it contains ``webchecker-ok``);
- ``/r/<delay_ms>/<next_delay_ms>/<size>``: waits, then ``302`` to ``/d/<next>/200/<size>``;
- ``/hang``: reads the request and never answers (the connection stays open).

With ``--lateness-dir`` every answer appends ``<id> <ms>`` to ``lateness-<pid>.log`` there:
how much later than planned this process sent it (its own event loop's lag, from the
request head to the write), for the request's ``?id=`` query. The benchmark subtracts it
to tell the checker's timing error from this target's.

Prints ``ready HTTP_PORT HTTPS_PORT`` once it listens; stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import ssl

_FILLER = b"<p>lorem ipsum dolor sit amet, consectetur adipiscing elit</p>\n" * 64
_REASONS = {200: b"OK", 302: b"Found", 404: b"Not Found", 500: b"Internal Server Error"}


def body_of(size: int) -> bytes:
    head = b"<!doctype html><title>webchecker-ok</title>\n"
    repeats = size // len(_FILLER) + 1
    return (head + _FILLER * repeats)[:size]


def response(status: int, body: bytes, location: str | None = None) -> bytes:
    reason = _REASONS.get(status, b"Status")
    head = b"HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\n" % (status, reason)
    if location is not None:
        head += b"Location: " + location.encode() + b"\r\n"
    head += b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    return head + body


def plan(path: str) -> tuple[float, bytes] | None:
    """(delay in seconds, the whole response) for a path; None: never answer."""
    route, _, query = path.partition("?")
    parts = route.strip("/").split("/")
    try:
        if parts[0] == "d":
            delay_ms, status, size = int(parts[1]), int(parts[2]), int(parts[3])
            return delay_ms / 1000.0, response(status, body_of(size))
        if parts[0] == "r":
            delay_ms, next_ms, size = int(parts[1]), int(parts[2]), int(parts[3])
            suffix = f"?{query}" if query else ""
            return delay_ms / 1000.0, response(302, b"", f"/d/{next_ms}/200/{size}{suffix}")
    except (IndexError, ValueError):
        return 0.0, response(404, b"unknown path")
    return None if parts[0] == "hang" else (0.0, response(404, b"unknown path"))


LATENESS: list[str] = []  # "<id> <ms>" lines not yet written


class Target(asyncio.Protocol):
    """Reads a request head, then answers as its path says (or never)."""

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.started = False
        self.site_id = ""
        self.due = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.started:
            return
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            return
        self.started = True
        request_line = self.buffer.split(b"\r\n", 1)[0].decode("latin-1")
        fields = request_line.split(" ")
        target = fields[1] if len(fields) > 1 else "/"
        self.site_id = target.partition("?id=")[2]
        planned = plan(target)
        if planned is not None:
            delay, answer = planned
            loop = asyncio.get_running_loop()
            self.due = loop.time() + delay
            loop.call_later(delay, self.answer, answer)

    def answer(self, answer: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(answer)
            transport.close()
            if self.site_id:
                late_ms = (asyncio.get_running_loop().time() - self.due) * 1000.0
                LATENESS.append(f"{self.site_id} {late_ms:.3f}\n")


async def flush_lateness(directory: str) -> None:
    path = os.path.join(directory, f"lateness-{os.getpid()}.log")
    while True:
        await asyncio.sleep(0.5)
        if LATENESS:
            lines, LATENESS[:] = "".join(LATENESS), []
            with open(path, "a") as file:  # noqa: ASYNC230 (small appends, twice a second)
                file.write(lines)


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(args.cert, args.key)
    servers = [
        await loop.create_server(
            Target,
            "127.0.0.1",
            port,
            backlog=4096,
            reuse_address=True,
            reuse_port=args.reuse_port,
            ssl=context,
        )
        for port, context in ((args.http_port, None), (args.https_port, tls))
    ]
    for server in servers:
        server.sockets[0].setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ports = [server.sockets[0].getsockname()[1] for server in servers]
    print(f"ready {ports[0]} {ports[1]}", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    flusher = (
        asyncio.ensure_future(flush_lateness(args.lateness_dir)) if args.lateness_dir else None
    )
    await stop.wait()
    if flusher is not None:
        flusher.cancel()
    for server in servers:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cert", required=True, help="PEM: the leaf, then the intermediate")
    parser.add_argument("--key", required=True)
    parser.add_argument("--http-port", type=int, default=0)
    parser.add_argument("--https-port", type=int, default=0)
    parser.add_argument("--reuse-port", action="store_true")
    parser.add_argument("--lateness-dir", help="append each answer's lateness here")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
