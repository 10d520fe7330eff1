"""A target for the checker and pipeline benchmarks: answers every request after a fixed delay.

Runs in its own process (``python bench/slow_target.py --delay-ms 50``) so that it never
competes with the checker for the same event loop. One thread on epoll with non-blocking
sockets and a deep accept backlog, so that thousands of simultaneous connections are
accepted rather than dropped; no asyncio transports or protocols, so that the target costs
the machine as little as a Python server can (it is not part of the product, and its CPU
is taken from the pipeline being measured). The delay is the same for every request, so
answers wait in a first-in, first-out queue. Prints ``ready PORT`` once it listens; stops on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import contextlib
import select
import signal
import socket
import time
from collections import deque
from types import FrameType

BODY = b"ok"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\nConnection: close\r\n\r\n"
    + BODY
)
MAX_HEAD = 64 * 1024


class Stopped(Exception):
    pass


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stopped


def serve(host: str, port: int, delay: float) -> None:
    listener = socket.create_server((host, port), backlog=4096, reuse_port=False)
    listener.setblocking(False)
    poller = select.epoll()
    poller.register(listener.fileno(), select.EPOLLIN)
    reading: dict[int, tuple[socket.socket, bytes]] = {}  # fd -> (connection, head so far)
    due: deque[tuple[float, socket.socket]] = deque()  # answers, oldest first
    print(f"ready {listener.getsockname()[1]}", flush=True)
    try:
        while True:
            timeout = max(0.0, due[0][0] - time.monotonic()) if due else 1.0
            for fd, _ in poller.poll(timeout):
                if fd == listener.fileno():
                    _accept(listener, poller, reading)
                    continue
                connection, head = reading[fd]
                try:
                    data = connection.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                head += data
                if data and b"\r\n\r\n" not in head and len(head) < MAX_HEAD:
                    reading[fd] = (connection, head)
                    continue
                poller.unregister(fd)
                del reading[fd]
                if data:
                    due.append((time.monotonic() + delay, connection))
                else:  # the client went away
                    connection.close()
            now = time.monotonic()
            while due and due[0][0] <= now:
                _, connection = due.popleft()
                with contextlib.suppress(OSError):  # the client went away
                    connection.send(RESPONSE)  # a few bytes: the socket buffer takes them
                connection.close()
    except Stopped:
        pass
    finally:
        poller.close()
        listener.close()


def _accept(
    listener: socket.socket,
    poller: select.epoll,
    reading: dict[int, tuple[socket.socket, bytes]],
) -> None:
    while True:
        try:
            connection, _ = listener.accept()
        except BlockingIOError:
            return
        connection.setblocking(False)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        poller.register(connection.fileno(), select.EPOLLIN)
        reading[connection.fileno()] = (connection, b"")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    args = parser.parse_args()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    serve(args.host, args.port, args.delay_ms / 1000.0)


if __name__ == "__main__":
    main()
