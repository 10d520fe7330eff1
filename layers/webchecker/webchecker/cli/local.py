"""`webchecker local`: the whole pipeline on loopback with a live view (``make run``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from webchecker.local.settings import DEFAULT_DEMO_PORT, DEFAULT_STATE_DIR, DEFAULT_TICK_SECONDS


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "local",
        help="run the whole pipeline locally (embedded Kafka, PostgreSQL, Parameter Store)",
        description=(
            "Starts the broker, PostgreSQL, moto's Parameter Store, the demo targets and the "
            "three functions on loopback, seeds example sites on first start, and calls the "
            "scheduler every tick. KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL, when set, are "
            "used instead of the embedded broker and database."
        ),
    )
    parser.add_argument(
        "--tick",
        type=float,
        default=DEFAULT_TICK_SECONDS,
        metavar="SECONDS",
        help="seconds between scheduler ticks; each tick is one scheduler minute (default 60)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop by itself after this many seconds (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--no-public-sites",
        dest="public_sites",
        action="store_false",
        help="seed only the demo targets, no public web sites (first start only)",
    )
    parser.add_argument(
        "--demo-port",
        type=int,
        default=DEFAULT_DEMO_PORT,
        metavar="PORT",
        help=f"loopback port of the demo targets (default {DEFAULT_DEMO_PORT})",
    )
    parser.add_argument(
        "--checker-workers",
        type=int,
        default=2,
        metavar="N",
        help="checker invocations run at once (local Lambda concurrency, default 2)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        metavar="DIR",
        help="where the database, saved sites and logs live (default .webchecker)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: the stack pulls in the embedded services, which `webchecker --help`
    # and the other subcommands do not need.
    from webchecker.local.run import run_local
    from webchecker.local.settings import LocalSettings

    settings = LocalSettings.from_env(
        tick_seconds=args.tick,
        duration=args.duration,
        public_sites=args.public_sites,
        demo_port=args.demo_port,
        checker_workers=args.checker_workers,
        state_dir=args.state_dir,
    )
    return run_local(settings)
