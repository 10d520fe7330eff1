"""`webchecker invoke FUNCTION EVENT`: one handler on one event file, without Docker."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from webchecker.local.invoke import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT_S,
    FUNCTIONS,
    Invocation,
    invoke,
    read_env_vars,
    read_event,
    resolve_function,
)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "invoke",
        help="run a function's handler on an event file (sam local invoke, without Docker)",
        description=(
            "Imports functions/FUNCTION/app.py with the current environment (plus --env-vars) "
            "and calls lambda_handler(event, context) once, like `sam local invoke -e EVENT "
            "FUNCTION`. The result is printed as JSON on stdout; logs and metrics go to "
            "stderr. Exit status 1 when the handler raised (its error object is printed)."
        ),
    )
    parser.add_argument(
        "function",
        metavar="FUNCTION",
        help=f"one of {', '.join(FUNCTIONS)} (or the SAM logical id, e.g. WriterFunction)",
    )
    parser.add_argument(
        "event", metavar="EVENT", help="JSON event file, e.g. events/... (- reads stdin)"
    )
    parser.add_argument(
        "--env-vars",
        type=Path,
        metavar="FILE",
        help=(
            'environment in SAM\'s format: {"Parameters": {...}, "WriterFunction": '
            '{"DATABASE_URL": ...}}; an empty or null value unsets a variable'
        ),
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"the context's remaining time at the start (default {DEFAULT_TIMEOUT_S})",
    )
    parser.add_argument(
        "--memory",
        type=int,
        default=DEFAULT_MEMORY_MB,
        metavar="MB",
        help=f"context.memory_limit_in_mb (default {DEFAULT_MEMORY_MB})",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="the checkout holding functions/ (default: the one this package is installed from)",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    function = resolve_function(args.function)
    env = read_env_vars(args.env_vars, function) if args.env_vars else {}
    invocation = Invocation(
        function=function,
        event=read_event(args.event),
        env=env,
        timeout_s=args.timeout,
        memory_mb=args.memory,
    )
    outcome = invoke(invocation, root=args.root or _checkout())
    print(outcome.to_json())
    print(
        f"{function}: {'ok' if outcome.ok else 'error'} in {outcome.duration_ms:.0f} ms",
        file=sys.stderr,
    )
    return 0 if outcome.ok else 1


def _checkout() -> Path:
    from webchecker.local.functions import (
        repository_root,  # the local stack's modules load only here
    )

    return repository_root()
