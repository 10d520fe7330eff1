"""The ``webchecker`` command line: one subcommand module per concept.

Each module in ``SUBCOMMANDS`` exposes ``register(subparsers)``, which adds its parser and
sets ``handler`` (a function taking the parsed namespace and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from webchecker.exceptions import WebcheckerError

SUBCOMMANDS = (
    "sites",
    "db",
    "report",
    "incidents",
    "maintenance",
    "invoke",
    "local",
    "topic",
    "replay",
    "preflight",
    "status-page",
    "smoke",
)


class PlainFormatter(argparse.HelpFormatter):
    """Help texts come from docstrings: their ``literal`` markup is shown as `literal`."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(_plain(text))

    def _expand_help(self, action: argparse.Action) -> str:
        return _plain(super()._expand_help(action))


def _plain(text: str) -> str:
    return text.replace("``", "`")


def _use_plain_help(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = PlainFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                _use_plain_help(subparser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="webchecker", description="Serverless website-availability monitoring."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"webchecker.cli.{name.replace('-', '_')}").register(subparsers)
    _use_plain_help(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            code = _dispatch(argv)
        finally:
            # Here rather than at exit: a reader that went away (`| head`) is seen below.
            sys.stdout.flush()
    except BrokenPipeError:
        # Not an error of ours: stop writing quietly (no traceback), exit as a writer
        # killed by SIGPIPE would (128 + 13). Python's exit flush must not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code


def _dispatch(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except WebcheckerError as error:
        print(f"webchecker: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
