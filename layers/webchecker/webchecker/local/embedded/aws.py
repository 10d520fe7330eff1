"""moto's server on a loopback port: Parameter Store (and S3, for Tansu's durable storage).

It runs as its own process (``python -m moto.server``) so that its state is not touched by
in-process ``mock_aws`` in tests and its memory is measured on its own. moto keeps state only
while it runs; the local stack persists what must survive (the site list) itself.

Clients reach it through the standard variables from ``client_env()``: ``AWS_ENDPOINT_URL``
and fake credentials and region, which is also what ``webchecker sites`` in another terminal
needs to edit the running stack.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TypedDict

from webchecker.exceptions import WebcheckerError
from webchecker.local.embedded import pidfiles
from webchecker.local.embedded.network import free_port, wait_for_port
from webchecker.local.embedded.process import spawn, stop_process
from webchecker.local.embedded.service import Service

HOST = "127.0.0.1"
DEFAULT_REGION = "eu-west-1"


class ClientArgs(TypedDict):
    """``boto3.client``'s keyword arguments for this server (typed, so stubs accept them)."""

    endpoint_url: str
    region_name: str
    aws_access_key_id: str
    aws_secret_access_key: str


#: moto accepts any credentials; these make boto3 sign requests without an AWS account.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class EmbeddedAws(Service):
    """``moto.server`` on a loopback port; ``start()``/``stop()`` or a context manager."""

    def __init__(
        self,
        *,
        port: int | None = None,
        region: str = DEFAULT_REGION,
        log_path: Path | None = None,
        pid_file: Path | None = None,
    ) -> None:
        self.port = port or free_port(HOST)
        self.region = region
        self._log_path = log_path
        self._pid_file = pid_file
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def client_env(self) -> dict[str, str]:
        """The environment a boto3 client (or the ``webchecker`` CLI) needs to use this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            **FAKE_CREDENTIALS,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }

    def client_args(self) -> ClientArgs:
        """``boto3.client(service, **client_args())`` uses this server, whatever AWS_* say."""
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        }

    def start(self, timeout: float = 30.0) -> EmbeddedAws:
        if self._process is not None and self._process.poll() is None:
            return self
        if self._pid_file is not None:
            pidfiles.stop_stale(self._pid_file)
        command = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.port)]
        self._process = spawn(command, log_path=self._log_path)
        if self._pid_file is not None:
            pidfiles.record(self._pid_file, self._process.pid)
        try:
            wait_for_port(HOST, self.port, timeout=timeout, what="moto server")
        except WebcheckerError:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        stop_process(process, timeout=timeout)
        if process is not None and self._pid_file is not None:
            pidfiles.forget(self._pid_file)
