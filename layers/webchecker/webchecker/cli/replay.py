"""`webchecker replay`: store the writer's failed batches kept in its S3 failure bucket.

A batch lands there only when it failed for longer than the topic retains records (see
docs/deploy.md); this writes each one through the writer's own code, idempotently, into
the database that ``DATABASE_URL`` or the ``DB_*`` variables name (the writer's settings),
and with ``--delete`` removes each object once its batch is stored.
"""

from __future__ import annotations

import argparse
from typing import Any

from webchecker.store.replay import replay
from webchecker.store.writer import Writer, WriterSettings


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="store the writer's failed batches from its S3 failure bucket",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument(
        "location", help="s3://BUCKET[/PREFIX] (the stack's output WriterFailureBucket)"
    )
    parser.add_argument(
        "--delete", action="store_true", help="delete each object once its batch is stored"
    )
    parser.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    import boto3

    writer = Writer(WriterSettings.from_env())
    try:
        report = replay(boto3.client("s3"), args.location, writer.handle, delete=args.delete)
    finally:
        writer.close()
    print(
        f"{report.batches} batches: {report.received} records, {report.inserted} inserted, "
        f"{report.duplicates} duplicates, {report.rejected} rejected"
        + (f", {report.deleted} objects deleted" if args.delete else "")
    )
    for key, reason in report.skipped.items():
        print(f"skipped {key}: {reason}")
    return 1 if report.skipped else 0
