"""Running one Lambda handler on an event file, without Docker: ``sam local invoke``'s twin.

``webchecker invoke writer events/writer-msk.json`` imports ``functions/writer/app.py``
(its cold start, with the function's environment) and calls ``lambda_handler(event,
context)`` once, in this process, against whatever the environment points at (the local
broker and database, moto, or real AWS). The differences from Lambda live here, at the
edge, never in the package: a small context object, the environment file in SAM's
``--env-vars`` format, and stdout kept for the result alone (logs and EMF metrics, which
Lambda would send to CloudWatch, go to stderr).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webchecker.exceptions import ConfigurationError
from webchecker.local.embedded.lambda_api import LocalContext, load_handler

#: Function name -> SAM logical id in template.yaml; either may be given.
FUNCTIONS: dict[str, str] = {
    "scheduler": "SchedulerFunction",
    "checker": "CheckerFunction",
    "writer": "WriterFunction",
    "notifier": "NotifierFunction",
    "webhook": "WebhookFunction",
    "statuspage": "StatuspageFunction",
    "api": "ApiFunction",
}
#: Keys of a SAM env-vars file that apply to every function.
GLOBAL_ENV_KEY = "Parameters"
DEFAULT_TIMEOUT_S = 120
DEFAULT_MEMORY_MB = 512


@dataclass(frozen=True, kw_only=True)
class Invocation:
    """What one invoke needs: which handler, its event, and its environment on top of ours."""

    function: str
    event: Any
    env: Mapping[str, str] = field(default_factory=dict)
    timeout_s: int = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """The handler's result, or Lambda's error object when it raised."""

    ok: bool
    payload: Any
    duration_ms: float

    def to_json(self) -> str:
        return json.dumps(self.payload, indent=2, default=str)


def resolve_function(name: str) -> str:
    """``scheduler``/``SchedulerFunction`` (any case) -> ``scheduler``; else ConfigurationError."""
    wanted = name.strip().lower()
    for short, logical_id in FUNCTIONS.items():
        if wanted in (short, logical_id.lower()):
            return short
    choices = ", ".join([*FUNCTIONS, *FUNCTIONS.values()])
    raise ConfigurationError(f"unknown function {name!r}: expected one of {choices}")


def read_event(source: str) -> Any:
    """The JSON event in file ``source`` (``-`` reads stdin)."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as error:
        raise ConfigurationError(f"event file {source}: {error.strerror or error}") from error
    try:
        return json.loads(text)
    except ValueError as error:
        raise ConfigurationError(f"event file {source}: not valid JSON ({error})") from error


def read_env_vars(path: Path, function: str) -> dict[str, str]:
    """The variables for ``function`` in a SAM ``--env-vars`` file.

    ``{"Parameters": {...}, "WriterFunction": {...}}``: ``Parameters`` applies to every
    function, then the function's own object (by logical id, or by its short name) wins.
    Numbers and booleans become strings, as Lambda's environment holds only strings; null
    becomes the empty string, which unsets the variable for the invoke.
    """
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise ConfigurationError(f"env-vars file {path}: {error.strerror or error}") from error
    except ValueError as error:
        raise ConfigurationError(f"env-vars file {path}: not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise ConfigurationError(f"env-vars file {path}: expected a JSON object of objects")
    merged: dict[str, str] = {}
    for key in (GLOBAL_ENV_KEY, function, FUNCTIONS[function]):
        section = data.get(key, {})
        if not isinstance(section, dict):
            raise ConfigurationError(f"env-vars file {path}: {key!r} must be an object")
        for name, value in section.items():
            if isinstance(value, dict | list):
                raise ConfigurationError(f"env-vars file {path}: {key}.{name} must be a scalar")
            merged[name] = _env_string(value)
    return merged


def invoke(invocation: Invocation, *, root: Path) -> Outcome:
    """Imports ``functions/<function>/app.py`` and runs its handler once on the event.

    The environment (``os.environ`` plus ``invocation.env``, where an empty value unsets a
    variable) is in place for the import, as at a cold start, and restored afterwards. An
    exception from the import or the handler becomes Lambda's error object.
    """
    function = resolve_function(invocation.function)
    path = root / "functions" / function / "app.py"
    if not path.is_file():
        raise ConfigurationError(f"{path}: no handler file (is {root} a webchecker checkout?)")
    logical_id = FUNCTIONS[function]
    module_name = f"webchecker_invoke_{function}"
    request_id = str(uuid.uuid4())
    started = time.perf_counter()
    with _function_environment(function, invocation), contextlib.redirect_stdout(sys.stderr):
        try:
            handler = load_handler(path, "lambda_handler", module_name)
            context = LocalContext(
                function_name=logical_id,
                aws_request_id=request_id,
                memory_limit_in_mb=invocation.memory_mb,
                invoked_function_arn=f"arn:aws:lambda:{_region()}:000000000000:function:{logical_id}",
                deadline=time.monotonic() + invocation.timeout_s,
                log_group_name=f"/aws/lambda/{logical_id}",
                log_stream_name=f"local/{request_id}",
            )
            result = handler(invocation.event, context)
        except Exception as error:  # the function's error is the invocation's result
            payload = _error_object(error, request_id)
            return Outcome(ok=False, payload=payload, duration_ms=_since(started))
        finally:
            sys.modules.pop(module_name, None)
    return Outcome(ok=True, payload=result, duration_ms=_since(started))


@contextlib.contextmanager
def _function_environment(function: str, invocation: Invocation) -> Iterator[None]:
    saved = dict(os.environ)
    # What Lambda and the template set, unless the caller's environment says otherwise:
    # no X-Ray daemon runs here, and Powertools Metrics needs a namespace to flush.
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", function)
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Webchecker")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ["AWS_LAMBDA_FUNCTION_NAME"] = FUNCTIONS[function]
    os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(invocation.memory_mb)
    for name, value in invocation.env.items():
        if not value:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _error_object(error: BaseException, request_id: str) -> dict[str, Any]:
    """The error Lambda reports for an unhandled exception."""
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "requestId": request_id,
        "stackTrace": [line.rstrip("\n") for line in traceback.format_tb(error.__traceback__)],
    }


def _env_string(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
