"""The REST API on loopback: each HTTP request becomes an API Gateway payload 2.0 event.

``ApiServer`` is a small threading HTTP server that turns a request into the event API
Gateway's HTTP API would send (``$default`` route, headers lower-cased and joined,
repeated query parameters joined with commas, a body that is not UTF-8 in base64), calls
the handler, and writes its response back. ``LocalApi`` is the local stack's part: the
package's ``Api`` on the stack's Parameter Store, database and SNS (moto), at
``http://127.0.0.1:8781`` (or a free port when that one is taken). Loopback only, so no
signature is asked for.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import boto3

from webchecker.api.app import Api
from webchecker.api.services import ApiSettings, Services
from webchecker.local.embedded.lambda_api import LocalContext
from webchecker.local.embedded.service import Service
from webchecker.schedule.catalog import SiteStore, SiteStoreSettings
from webchecker.store.database import DatabaseSettings

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

    from webchecker.local.embedded.aws import EmbeddedAws
    from webchecker.local.services import Postgres
    from webchecker.local.settings import LocalSettings

logger = logging.getLogger(__name__)

DEFAULT_API_PORT = 8781
MAX_BODY = 1024 * 1024  # bytes; API Gateway allows 10 MB, no API body comes near 1 MB
ALERT_TOPIC = "webchecker-alerts"
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
Route = Callable[[dict[str, Any]], dict[str, Any] | None]  # None: not this route's path


def request_event(
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    *,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The payload 2.0 event API Gateway would send for this request."""
    path, _, query = target.partition("?")
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    parameters: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        parameters[key] = f"{parameters[key]},{value}" if key in parameters else value
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path or "/",
        "rawQueryString": query,
        "headers": joined,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": joined.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method.upper(),
                "path": path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if parameters:
        event["queryStringParameters"] = parameters
    if body:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    return event


def response_parts(response: Mapping[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body bytes of a handler's payload 2.0 response."""
    status = int(response.get("statusCode", 200))
    headers = [(str(k), str(v)) for k, v in (response.get("headers") or {}).items()]
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(value)) for value in values)
    headers.extend(("Set-Cookie", str(cookie)) for cookie in response.get("cookies") or [])
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        raw = base64.b64decode(body)
    else:
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return status, headers, raw


def _context() -> LocalContext:
    return LocalContext(
        function_name="webchecker-api",
        aws_request_id=str(uuid.uuid4()),
        memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:local:000000000000:function:webchecker-api",
        deadline=time.monotonic() + 30,
    )


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = self.headers.get("Content-Length")
        try:
            size = int(length) if length else 0
        except ValueError:
            size = -1
        if size < 0 or size > MAX_BODY:
            self._write(413 if size > MAX_BODY else 400, [], b"")
            return
        body = self.rfile.read(size) if size else b""
        event = request_event(
            self.command, self.path, self.headers.items(), body, source_ip=self.client_address[0]
        )
        try:
            status, headers, raw = response_parts(self.server.handle_event(event, _context()))
        except Exception:  # the handler answers every error itself; this is a last resort
            logger.exception("API handler raised")
            status, headers, raw = (
                500,
                [("Content-Type", "application/problem+json")],
                (
                    b'{"type":"about:blank","title":"Internal Server Error","status":500,'
                    b'"detail":"internal error; it has been logged"}'
                ),
            )
        self._write(status, headers, b"" if self.command == "HEAD" else raw)

    def _write(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def __getattr__(self, name: str) -> Any:
        # every method (TRACE, PROPFIND...) goes to the handler, which answers 405 itself
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Handler) -> None:
        super().__init__(address, _RequestHandler)
        self._handler = handler
        # one request at a time, as in one Lambda container (its database connection is one)
        self._lock = threading.Lock()

    def handle_event(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        with self._lock:
            return self._handler(event, context)


class ApiServer(Service):
    """A handler of payload 2.0 events served over HTTP on loopback."""

    def __init__(self, handle_event: Handler, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handle_event = handle_event
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ApiServer:
        if self._server is not None:
            return self
        try:
            server = _Server((self.host, self.port), self.handle_event)
        except OSError:
            if self.port == 0:
                raise
            server = _Server((self.host, 0), self.handle_event)  # the usual port is taken
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, name="webchecker-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class LocalApi(Service):
    """The local stack's REST API: the package's ``Api`` on the stack's moto and database."""

    def __init__(
        self,
        settings: LocalSettings,
        *,
        aws: EmbeddedAws,
        postgres: Postgres,
        port: int = DEFAULT_API_PORT,
        routes: Sequence[Route] = (),
    ) -> None:
        self.settings = settings
        self.aws = aws
        self.postgres = postgres
        self.routes = tuple(routes)  # tried first, e.g. the status page's /status/ files
        self.server: ApiServer | None = None
        self.api: Api | None = None
        self._port = port

    @property
    def url(self) -> str:
        return self.server.url if self.server is not None else ""

    def start(self) -> LocalApi:
        if self.server is not None:
            return self
        env = self.aws.client_env()
        client_args: dict[str, Any] = {
            "endpoint_url": env["AWS_ENDPOINT_URL"],
            "region_name": env["AWS_REGION"],
            "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        }
        sns: SNSClient = boto3.client("sns", **client_args)
        topic = sns.create_topic(Name=ALERT_TOPIC)["TopicArn"]  # idempotent
        settings = ApiSettings(
            sites=SiteStoreSettings(path=self.settings.sites_path, cache_seconds=0),
            database=DatabaseSettings.from_url(self.postgres.url, schema=self.settings.db_schema),
            alert_topic_arn=topic,
        )
        sites = SiteStore(settings.sites, client=boto3.client("ssm", **client_args))
        self.api = Api(Services(settings, sites=sites, sns=sns))
        self.server = ApiServer(self._handle, port=self._port).start()
        return self

    def _handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        for route in self.routes:
            answer = route(event)
            if answer is not None:
                return answer
        assert self.api is not None
        return self.api.handle(event, context)

    def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.stop()
        if self.api is not None:
            with contextlib.suppress(Exception):
                self.api.services.close()
            self.api = None
