"""A local Lambda Invoke API: the one edge where the local stack differs from AWS.

boto3 reaches it through ``AWS_ENDPOINT_URL_LAMBDA`` (boto3 honours service-specific
endpoint variables), so the scheduler's fan-out code is the same as in AWS. It serves
``POST /2015-03-31/functions/{name}/invocations``:

- ``Event`` (asynchronous): answers 202 at once and queues the event. Like AWS, a failed
  event is retried up to two more times after a delay (AWS waits about 1 then 2 minutes;
  the delays here are configurable), then it goes to the on-failure list (``failures``,
  and one JSON line per event in ``failures_path``).
- ``RequestResponse``: runs the handler and answers its result, or ``X-Amz-Function-Error``.

Handlers run in worker processes, one invocation at a time per process, like Lambda
containers: each worker imports ``functions/<name>/app.py`` once (cold start, with the
function's environment), so Powertools' per-module state is never shared between
concurrent invocations, checks run in parallel on every core, and each function's
memory and durations are measured on their own (``stats``).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import resource
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing import get_context
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import unquote

from webchecker.exceptions import InvocationFailed, WebcheckerError
from webchecker.local.embedded.network import free_port
from webchecker.local.embedded.service import Service

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
#: Lambda's payload limits: 256 KB for an asynchronous invoke, 6 MB for a synchronous one.
MAX_EVENT_PAYLOAD = 256 * 1024
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024
#: What a worker keeps from the stack's environment (the rest comes from the function's).
_INHERITED = frozenset({"PATH", "HOME", "USER", "LANG", "TZ", "TMPDIR", "VIRTUAL_ENV"})
_INHERITED_PREFIXES = ("LC_", "PYTHON", "SSL_CERT_", "REQUESTS_CA_BUNDLE", "XDG_")
_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")


@dataclass(frozen=True, kw_only=True)
class FunctionSpec:
    """One function: its handler file, how many containers may run at once, its memory."""

    name: str
    path: Path
    handler: str = "lambda_handler"
    concurrency: int = 1
    memory_mb: int = 512
    timeout_s: float = 60.0
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Asynchronous-invoke retries: AWS makes 2 more attempts, about 1 and 2 minutes later."""

    delays: tuple[float, ...] = (60.0, 120.0)


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """One finished run of a handler (what Lambda would bill and log)."""

    function: str
    request_id: str
    attempt: int
    ok: bool
    duration_ms: float
    max_rss_kb: int
    pid: int
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class FailedEvent:
    """An asynchronous event that failed every attempt (the on-failure destination)."""

    function: str
    request_id: str
    attempts: int
    error: str
    payload: str


@dataclass
class FunctionStats:
    invocations: int = 0
    errors: int = 0
    durations_ms: list[float] = field(default_factory=list)
    max_rss_kb: dict[int, int] = field(default_factory=dict)  # per worker pid


# -- worker side (runs in the function's own processes) -------------------------------------

_handler: Callable[[dict[str, Any], Any], Any] | None = None


@dataclass(frozen=True, kw_only=True)
class LocalContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    deadline: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def load_handler(
    path: Path, handler: str, module_name: str
) -> Callable[[dict[str, Any], Any], Any]:
    """Imports a handler file as a module (its cold start) and returns the handler."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise WebcheckerError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    function: Callable[[dict[str, Any], Any], Any] = getattr(module, handler)
    return function


def _worker_init(
    spec: FunctionSpec, env: Mapping[str, str], log_path: str | None, parent: int
) -> None:
    global _handler
    # Ctrl-C in the terminal reaches the whole process group: the stack, not its
    # containers, decides when they stop (after in-flight invocations).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent(parent)
    # A Lambda container gets the function's variables, not the caller's shell: the user's
    # own AWS_PROFILE, credentials or endpoints must not leak into a local function.
    for key in list(os.environ):
        if key not in _INHERITED and not key.startswith(_INHERITED_PREFIXES):
            del os.environ[key]
    os.environ.update(env)
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", spec.name)
    os.environ.update(spec.env)
    os.environ["AWS_LAMBDA_FUNCTION_NAME"] = spec.name
    os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(spec.memory_mb)
    if log_path is not None:
        # Like CloudWatch Logs: everything the function prints (Powertools JSON logs, EMF
        # metrics, librdkafka on fd 2) goes to the function's log, not the terminal.
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    _handler = load_handler(spec.path, spec.handler, f"webchecker_function_{spec.name}")


def exit_with_parent(parent: int) -> None:
    """Ends this container when the stack that started it (``parent``, passed in: a stack
    killed before this process got here has already handed it to init) is gone, even after
    SIGKILL."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class FunctionTimeout(BaseException):
    """Raised in a container when its invocation ran past the function's timeout.

    A BaseException, so that a handler's ``except Exception`` does not swallow it.
    """


def _timed_out(signum: int, frame: FrameType | None) -> None:
    raise FunctionTimeout


def _worker_invoke(
    spec: FunctionSpec, payload: bytes, request_id: str
) -> tuple[bool, bytes, float, int, int]:
    """Runs the handler once: (ok, response or error JSON, duration ms, peak RSS KiB, pid)."""
    assert _handler is not None
    context = LocalContext(
        function_name=spec.name,
        aws_request_id=request_id,
        memory_limit_in_mb=spec.memory_mb,
        invoked_function_arn=f"arn:aws:lambda:local:000000000000:function:{spec.name}",
        deadline=time.monotonic() + spec.timeout_s,
    )
    started = time.perf_counter()
    # Like Lambda's timeout: the invocation fails (and an async event is retried). The
    # container survives here, where Lambda would freeze it.
    signal.signal(signal.SIGALRM, _timed_out)
    signal.setitimer(signal.ITIMER_REAL, spec.timeout_s)
    try:
        event = json.loads(payload) if payload else {}
        body = json.dumps(_handler(event, context)).encode()
        ok = True
    except FunctionTimeout:
        body = json.dumps(
            {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"Task timed out after {spec.timeout_s:.2f} seconds",
            }
        ).encode()
        ok = False
    except Exception as error:  # the function's error becomes the invocation's error
        body = json.dumps(
            {
                "errorType": type(error).__name__,
                "errorMessage": str(error),
                "stackTrace": traceback.format_exception(error)[-5:],
            }
        ).encode()
        ok = False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    duration = (time.perf_counter() - started) * 1000
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return ok, body, duration, peak, os.getpid()


# -- server side ----------------------------------------------------------------------------


class LambdaApi(Service):
    """The functions, their worker pools, and the HTTP endpoint boto3 talks to."""

    def __init__(
        self,
        functions: Sequence[FunctionSpec],
        *,
        env: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        log_dir: Path | None = None,
        failures_path: Path | None = None,
        port: int | None = None,
        on_success: Callable[[str, bytes], None] | None = None,
    ) -> None:
        self.functions = {spec.name: spec for spec in functions}
        self.port = port or free_port(HOST)
        self.retry = retry or RetryPolicy()
        self.failures: list[FailedEvent] = []
        self.attempts: list[Attempt] = []
        self.stats = {name: FunctionStats() for name in self.functions}
        self._env = dict(env or {})
        self._on_success = on_success  # (function, response body) after each success
        self._log_dir = log_dir
        self._failures_path = failures_path
        self._pools: dict[str, ProcessPoolExecutor] = {}
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Condition()
        self._pending = 0  # asynchronous events queued, running or waiting for a retry
        self._timers: set[threading.Timer] = set()
        self._closing = False

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, *, warm: bool = True) -> LambdaApi:
        if self._log_dir is not None:
            self._log_dir.mkdir(parents=True, exist_ok=True)
        for spec in self.functions.values():
            self._pools[spec.name] = self._new_pool(spec)
        if warm:  # cold starts now, not in the first tick (and import errors surface here)
            for spec in self.functions.values():
                self._warm(spec)
        self._server = ThreadingHTTPServer((HOST, self.port), _handler_class(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="lambda-api", daemon=True).start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._closing = True
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        # Every pool is told first, then waited for: the containers exit in parallel.
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        for pool in self._pools.values():
            pool.shutdown(wait=True)
        self._pools.clear()

    def worker_pids(self) -> dict[str, list[int]]:
        """The process ids of each function's running containers (for CPU accounting)."""
        return {
            name: sorted(getattr(pool, "_processes", None) or {})
            for name, pool in self._pools.items()
        }

    def _new_pool(self, spec: FunctionSpec) -> ProcessPoolExecutor:
        log_path = str(self._log_dir / f"{spec.name}.log") if self._log_dir else None
        # spawn, not fork: the stack is multi-threaded (fork would copy held locks)
        return ProcessPoolExecutor(
            max_workers=spec.concurrency,
            mp_context=get_context("spawn"),
            initializer=_worker_init,
            initargs=(spec, self._env, log_path, os.getpid()),
        )

    def _warm(self, spec: FunctionSpec) -> None:
        pool = self._pools[spec.name]
        # One trivial task per container starts them all; their import is the cold start.
        futures = [pool.submit(os.getpid) for _ in range(spec.concurrency)]
        for future in futures:
            try:
                future.result(timeout=120)
            except BrokenProcessPool as error:
                raise WebcheckerError(
                    f"function {spec.name} failed to start (see its log): {error}"
                ) from error

    # -- invoking ----------------------------------------------------------------------------

    def resolve(self, name: str) -> FunctionSpec:
        """A function by name, ARN or ``name:qualifier``; raises ``InvocationFailed``."""
        short = name.split(":function:", 1)[-1].split(":", 1)[0]
        spec = self.functions.get(short)
        if spec is None:
            raise InvocationFailed(f"Function not found: {name}", error_type="ResourceNotFound")
        return spec

    def invoke(self, name: str, event: Any) -> Any:
        """A synchronous invoke with a Python value; the handler's result, decoded."""
        return json.loads(self.invoke_raw(name, json.dumps(event).encode()))

    def invoke_raw(self, name: str, payload: bytes) -> bytes:
        """A synchronous invoke; raises ``InvocationFailed`` when the handler raised."""
        ok, body = self.call(name, payload)
        if not ok:
            error = json.loads(body)
            raise InvocationFailed(
                f"{name}: {error['errorType']}: {error['errorMessage']}",
                error_type=str(error["errorType"]),
            )
        return body

    def invoke_async(self, name: str, payload: bytes) -> str:
        """An ``Event`` invoke: queued at once; returns the request id."""
        spec = self.resolve(name)
        request_id = str(uuid.uuid4())
        with self._lock:
            if self._closing:
                raise InvocationFailed("the local Lambda API is stopping", error_type="Service")
            self._pending += 1
        self._submit(spec, payload, request_id, attempt=1)
        return request_id

    def drain(self, timeout: float | None = None) -> bool:
        """Waits until every asynchronous event has finished (retries included)."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pending == 0, timeout=timeout)

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def call(self, name: str, payload: bytes) -> tuple[bool, bytes]:
        """A synchronous invoke: (handler succeeded, its result or Lambda's error JSON)."""
        spec = self.resolve(name)
        request_id = str(uuid.uuid4())
        future = self._pool(spec).submit(_worker_invoke, spec, payload, request_id)
        return self._record(spec, request_id, 1, future)

    def _pool(self, spec: FunctionSpec) -> ProcessPoolExecutor:
        pool = self._pools.get(spec.name)
        if pool is None:
            raise InvocationFailed("the local Lambda API is not running", error_type="Service")
        return pool

    def _record(
        self, spec: FunctionSpec, request_id: str, attempt: int, future: Future[Any]
    ) -> tuple[bool, bytes]:
        try:
            ok, body, duration, peak, pid = future.result()
        except BrokenProcessPool as error:
            # A container died (killed, out of memory): like Lambda, start fresh ones.
            with self._lock:
                if not self._closing and self._pools.get(spec.name) is not None:
                    self._pools[spec.name] = self._new_pool(spec)
            ok, body, duration, peak, pid = False, _error_body("Runtime.ExitError", error), 0, 0, 0
        except Exception as error:  # cancelled at shutdown
            ok, body, duration, peak, pid = False, _error_body(type(error).__name__, error), 0, 0, 0
        error_text = None if ok else _error_text(body)
        with self._lock:
            stats = self.stats[spec.name]
            stats.invocations += 1
            stats.errors += 0 if ok else 1
            if pid:
                stats.durations_ms.append(duration)
                stats.max_rss_kb[pid] = max(stats.max_rss_kb.get(pid, 0), peak)
            self.attempts.append(
                Attempt(
                    function=spec.name,
                    request_id=request_id,
                    attempt=attempt,
                    ok=ok,
                    duration_ms=duration,
                    max_rss_kb=peak,
                    pid=pid,
                    error=error_text,
                )
            )
        if not ok:
            logger.warning(
                "%s %s attempt %d failed: %s", spec.name, request_id, attempt, error_text
            )
        elif self._on_success is not None:
            self._on_success(spec.name, body)
        return ok, body

    def _submit(self, spec: FunctionSpec, payload: bytes, request_id: str, attempt: int) -> None:
        try:
            future = self._pool(spec).submit(_worker_invoke, spec, payload, request_id)
        except (InvocationFailed, RuntimeError) as error:  # stopping
            self._finished(spec, payload, request_id, attempt, str(error), retry=False)
            return
        future.add_done_callback(
            lambda done: threading.Thread(
                target=self._after, args=(spec, payload, request_id, attempt, done), daemon=True
            ).start()
        )

    def _after(
        self, spec: FunctionSpec, payload: bytes, request_id: str, attempt: int, future: Future[Any]
    ) -> None:
        ok, body = self._record(spec, request_id, attempt, future)
        if ok:
            self._finished(spec, payload, request_id, attempt, None, retry=False)
        else:
            self._finished(spec, payload, request_id, attempt, _error_text(body), retry=True)

    def _finished(
        self,
        spec: FunctionSpec,
        payload: bytes,
        request_id: str,
        attempt: int,
        error: str | None,
        *,
        retry: bool,
    ) -> None:
        with self._lock:
            if (
                error is not None
                and retry
                and attempt <= len(self.retry.delays)
                and not self._closing
            ):
                timer = threading.Timer(
                    self.retry.delays[attempt - 1],
                    self._retry,
                    args=(spec, payload, request_id, attempt + 1),
                )
                timer.daemon = True
                self._timers.add(timer)
                timer.start()
                return
            if error is not None:
                failed = FailedEvent(
                    function=spec.name,
                    request_id=request_id,
                    attempts=attempt,
                    error=error,
                    payload=payload.decode(errors="replace"),
                )
                self.failures.append(failed)
                self._write_failure(failed)
            self._pending -= 1
            self._lock.notify_all()

    def _retry(self, spec: FunctionSpec, payload: bytes, request_id: str, attempt: int) -> None:
        with self._lock:
            self._timers = {timer for timer in self._timers if timer.is_alive()}
        logger.info("%s %s: retry, attempt %d", spec.name, request_id, attempt)
        self._submit(spec, payload, request_id, attempt)

    def _write_failure(self, failed: FailedEvent) -> None:
        logger.error(
            "%s event %s dropped after %d attempts: %s",
            failed.function,
            failed.request_id,
            failed.attempts,
            failed.error,
        )
        if self._failures_path is not None:
            self._failures_path.parent.mkdir(parents=True, exist_ok=True)
            with self._failures_path.open("a") as out:
                out.write(json.dumps(failed.__dict__) + "\n")


def _error_body(error_type: str, error: BaseException) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": str(error)}).encode()


def _error_text(body: bytes) -> str:
    try:
        error = json.loads(body)
        return f"{error['errorType']}: {error['errorMessage']}"
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace")[:500]


def _handler_class(api: LambdaApi) -> type[BaseHTTPRequestHandler]:
    class InvokeHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            match = _INVOKE_PATH.match(self.path.split("?", 1)[0])
            length = int(self.headers.get("Content-Length") or 0)
            payload = self.rfile.read(length) if length else b""
            if match is None:
                self._error(404, "UnknownOperationException", f"no route for {self.path}")
                return
            name = unquote(match["name"])
            kind = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
            try:
                api.resolve(name)
            except InvocationFailed as error:
                self._error(404, "ResourceNotFoundException", str(error))
                return
            limit = MAX_EVENT_PAYLOAD if kind == "Event" else MAX_SYNC_PAYLOAD
            if len(payload) > limit:
                self._error(
                    413,
                    "RequestEntityTooLargeException",
                    f"Request must be smaller than {limit} bytes for the {kind} invocation type",
                )
                return
            if kind == "DryRun":
                self._send(204, b"")
            elif kind == "Event":
                try:
                    request_id = api.invoke_async(name, payload)
                except InvocationFailed as error:
                    self._error(503, "ServiceException", str(error))
                    return
                self._send(202, b"", request_id=request_id)
            elif kind == "RequestResponse":
                ok, body = api.call(name, payload)
                extra = {} if ok else {"X-Amz-Function-Error": "Unhandled"}
                self._send(200, body, headers=extra)
            else:
                self._error(400, "InvalidParameterValueException", f"invocation type {kind!r}")

        def _send(
            self,
            status: int,
            body: bytes,
            *,
            request_id: str | None = None,
            headers: Mapping[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-amzn-RequestId", request_id or str(uuid.uuid4()))
            self.send_header("X-Amz-Executed-Version", "$LATEST")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, kind: str, message: str) -> None:
            body = json.dumps({"Type": "User", "message": message}).encode()
            self._send(status, body, headers={"x-amzn-ErrorType": kind})

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("lambda api: " + format, *args)

    return InvokeHandler
