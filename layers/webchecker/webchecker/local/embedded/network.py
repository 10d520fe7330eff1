"""Loopback helpers shared by the embedded services."""

from __future__ import annotations

import socket
import time

from webchecker.exceptions import WebcheckerError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, *, timeout: float = 20.0, what: str = "service") -> None:
    """Block until ``host:port`` accepts TCP connections, or raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as error:
            if time.monotonic() > deadline:
                raise WebcheckerError(
                    f"{what} did not start listening on {host}:{port} within {timeout:g}s"
                ) from error
            time.sleep(0.05)
