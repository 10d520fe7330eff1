"""Where the rendered files go: a directory (CLI, local stack) or an S3 bucket (Lambda).

Both take the same ``{name: (bytes, content type)}`` files. The directory is written file
by file through a temporary name and ``os.replace``, so a reader never sees half a page;
S3 replaces each object whole anyway. Objects get a short ``Cache-Control`` so CloudFront
serves a page at most a minute older than the bucket.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from webchecker.exceptions import ConfigurationError, StatusPageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CACHE_CONTROL = "public, max-age=60"

Files = Mapping[str, tuple[bytes, str]]  # name -> (content, content type)


class Publisher(Protocol):
    def publish(self, files: Files) -> None: ...


@dataclass(frozen=True)
class DirectoryPublisher:
    """Writes the files below ``directory`` (created when missing)."""

    directory: Path

    def publish(self, files: Files) -> None:
        for name, (content, _) in files.items():
            target = _inside(self.directory, name)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
                with os.fdopen(handle, "wb") as out:
                    out.write(content)
                os.chmod(temporary, 0o644)
                os.replace(temporary, target)
            except OSError as error:
                raise StatusPageError(f"cannot write {target}: {error}") from error


class S3Publisher:
    """Puts the files into ``bucket`` (under ``prefix``), each with its content type."""

    def __init__(self, bucket: str, *, prefix: str = "", client: S3Client | None = None) -> None:
        if not bucket:
            raise ConfigurationError("STATUS_BUCKET: the status page's S3 bucket is not set")
        self.bucket = bucket
        self.prefix = prefix
        self._client = client

    def publish(self, files: Files) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        client = self._client
        if client is None:
            import boto3

            client = self._client = boto3.client("s3")
        for name, (content, content_type) in files.items():
            try:
                client.put_object(
                    Bucket=self.bucket,
                    Key=f"{self.prefix}{name}",
                    Body=content,
                    ContentType=content_type,
                    CacheControl=CACHE_CONTROL,
                )
            except (BotoCoreError, ClientError) as error:
                raise StatusPageError(
                    f"cannot put s3://{self.bucket}/{self.prefix}{name}: {error}"
                ) from error


def _inside(directory: Path, name: str) -> Path:
    """``directory / name``, refusing any name that would leave the directory."""
    target = (directory / name).resolve()
    if not target.is_relative_to(directory.resolve()):
        raise StatusPageError(f"{name!r}: outside {directory}")
    return target
