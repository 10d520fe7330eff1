"""Site alerts on loopback: the alert topic in moto's SNS and a webhook sink subscribed to it.

The notifier itself is a function on the local Invoke API (``functions.py``), run by the
stack after every tick, as EventBridge runs it every minute in AWS. moto delivers each
published alert to the sink's HTTP subscription (an SNS envelope, as SNS posts it); the
sink appends the alert to ``STATE_DIR/alerts.jsonl``, which the end-to-end tests and
``tail -f`` read.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3

from webchecker.local.embedded.aws import EmbeddedAws
from webchecker.local.embedded.service import Service
from webchecker.local.settings import STACK_NAME

logger = logging.getLogger(__name__)

TOPIC_NAME = f"{STACK_NAME}-site-alerts"
MOTO_ACCOUNT = "123456789012"  # moto's default account


def topic_arn(region: str) -> str:
    """The topic's ARN (known before moto creates it: the functions' environment has it)."""
    return f"arn:aws:sns:{region}:{MOTO_ACCOUNT}:{TOPIC_NAME}"


class _Sink(BaseHTTPRequestHandler):
    server: _SinkServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.send_response(200)
        self.end_headers()
        try:
            envelope = json.loads(body)
            alert = json.loads(envelope["Message"])
        except (ValueError, KeyError, TypeError):
            logger.warning("webhook sink: not an SNS notification: %r", body[:200])
            return
        self.server.record(alert, envelope)

    def log_message(self, *args: Any) -> None:
        return  # no access log on the terminal


class _SinkServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, path: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Sink)
        self.path = path
        self._lock = threading.Lock()

    def record(self, alert: dict[str, Any], envelope: dict[str, Any]) -> None:
        received_at = datetime.now(UTC).isoformat()
        line = json.dumps(
            {"alert": alert, "subject": envelope.get("Subject"), "received_at": received_at}
        )
        with self._lock, self.path.open("a") as file:
            file.write(line + "\n")


class LocalAlerts(Service):
    """The topic in moto and the sink (``url`` once started)."""

    def __init__(self, aws: EmbeddedAws, state_dir: Path) -> None:
        self.aws = aws
        self.path = state_dir / "alerts.jsonl"
        self.url: str | None = None
        self._server: _SinkServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def topic_arn(self) -> str:
        return topic_arn(self.aws.region)

    def start(self) -> LocalAlerts:
        if self._server is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        server = _SinkServer(self.path)
        self._thread = threading.Thread(
            target=server.serve_forever, name="webhook-sink", daemon=True
        )
        self._thread.start()
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
        sns = boto3.client("sns", **self.aws.client_args())
        created = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
        if created != self.topic_arn:
            raise RuntimeError(f"moto named the alert topic {created}, not {self.topic_arn}")
        sns.subscribe(TopicArn=created, Protocol="http", Endpoint=self.url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def received(self) -> list[dict[str, Any]]:
        """Every alert the sink received, oldest first (with its ``subject``)."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]
