"""The ``webchecker`` command line: one subcommand module per concept.

Each module in ``SUBCOMMANDS`` exposes ``register(subparsers)``, which adds its parser and
sets ``handler`` (a function taking the parsed namespace and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from webchecker.exceptions import WebcheckerError

SUBCOMMANDS = (
    "sites",
    "db",
    "report",
    "invoke",
    "local",
    "topic",
    "replay",
    "preflight",
    "status-page",
    "smoke",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="webchecker", description="Serverless website-availability monitoring."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"webchecker.cli.{name.replace('-', '_')}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except WebcheckerError as error:
        print(f"webchecker: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
