"""The slow-site queue on loopback: the queue the checkers report to, in moto's SQS.

The checker and scheduler functions get its URL as ``SLOW_SITES_QUEUE_URL``, as
template.yaml gives them ``SlowSitesQueue``; the code that sends and reads the reports is
the one that runs in AWS (schedule/slow_sites.py).
"""

from __future__ import annotations

import boto3

from webchecker.local.alerts import MOTO_ACCOUNT
from webchecker.local.embedded.aws import EmbeddedAws
from webchecker.local.embedded.service import Service
from webchecker.local.settings import STACK_NAME

QUEUE_NAME = f"{STACK_NAME}-slow-sites"


def queue_url(aws: EmbeddedAws) -> str:
    """The queue's URL (known before moto creates it: the functions' environment has it)."""
    return f"{aws.endpoint_url}/{MOTO_ACCOUNT}/{QUEUE_NAME}"


class LocalSlowSitesQueue(Service):
    """Creates the queue in moto (idempotent: a restarted stack finds it again)."""

    def __init__(self, aws: EmbeddedAws) -> None:
        self.aws = aws

    @property
    def url(self) -> str:
        return queue_url(self.aws)

    def start(self) -> LocalSlowSitesQueue:
        sqs = boto3.client("sqs", **self.aws.client_args())
        created = sqs.create_queue(
            QueueName=QUEUE_NAME, Attributes={"MessageRetentionPeriod": "300"}
        )
        if created["QueueUrl"] != self.url:
            raise RuntimeError(
                f"moto named the slow-site queue {created['QueueUrl']}, not {self.url}"
            )
        return self

    def stop(self) -> None:
        """The queue lives as long as moto does."""
