"""Where the rendered files go: a directory (CLI, local stack) or an S3 bucket (Lambda).

Both take the same ``{name: (bytes, content type)}`` files. The directory is written file
by file through a temporary name and ``os.replace``, so a reader never sees half a page;
S3 replaces each object whole anyway. Objects get a short ``Cache-Control`` so CloudFront
serves a page at most a minute older than the bucket.

The bucket is versioned and every PUT is billed, so ``S3Publisher`` writes only objects
whose content changed: one ListObjectsV2 page per 1,000 keys gives each object's ETag,
which for a single-part PUT into an SSE-S3 (AES256) or unencrypted bucket is the MD5 of
its bytes. An ETag that is not (SSE-KMS, multipart) never matches, so the object is simply
written again: the page can cost more, never go stale. Badges of sites no longer shown
are deleted (a badge must not claim "up 99.98%" for a site nobody watches any more).
A manifest object of hashes would save the LIST calls but could disagree with the bucket;
the listing is the bucket's own truth. A changed ``Cache-Control`` alone does not rewrite
an unchanged badge.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from webchecker.exceptions import ConfigurationError, StatusPageError
from webchecker.page.badge import BADGE_FOLDER

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CACHE_CONTROL = "public, max-age=60"

# A file's content: its bytes, or a file holding them (the renderer spools index.html and
# status.json to disk: at 10,000 sites status.json alone is ~100 MB)
Content = bytes | Path
Files = Mapping[str, tuple[Content, str]]  # name -> (content, content type)
CHUNK = 1 << 20  # bytes read at a time from a spooled file


def content_size(content: Content) -> int:
    return len(content) if isinstance(content, bytes) else content.stat().st_size


def chunks(content: Content) -> Iterator[bytes]:
    """The content a megabyte at a time (bytes: at once)."""
    if isinstance(content, bytes):
        yield content
        return
    with content.open("rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk


DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys


@dataclass(frozen=True)
class Published:
    """What one publish did: files written, files left alone as unchanged, objects deleted."""

    written: int
    unchanged: int = 0
    deleted: int = 0


class Publisher(Protocol):
    def publish(self, files: Files) -> Published: ...


@dataclass(frozen=True)
class DirectoryPublisher:
    """Writes the files below ``directory`` (created when missing)."""

    directory: Path

    def publish(self, files: Files) -> Published:
        """Writes the files whose content changed (each atomically); the others are left
        alone, as the S3 publisher does (the local stack renders thousands of badges)."""
        root = self.directory.resolve()
        folders: set[Path] = set()  # made and checked (few: the root and badges/)
        unchanged = 0
        for name, (content, _) in files.items():
            target = _inside(root, name)
            if _holds(target, content):
                unchanged += 1
                continue
            try:
                if target.parent not in folders:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if not target.parent.resolve().is_relative_to(root):
                        raise StatusPageError(f"{name!r}: its folder leads out of {root}")
                    folders.add(target.parent)
                # this process's own temporary name: no other writer can interleave with it
                temporary = target.with_name(f".tmp-{os.getpid()}-{target.name}")
                handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                with os.fdopen(handle, "wb") as out:
                    os.fchmod(handle, 0o644)  # whatever the umask
                    for chunk in chunks(content):
                        out.write(chunk)
                os.replace(temporary, target)
            except OSError as error:
                raise StatusPageError(f"cannot write {target}: {error}") from error
        return Published(written=len(files) - unchanged, unchanged=unchanged)


class S3Publisher:
    """Puts the changed files into ``bucket`` (under ``prefix``), each with its content type,
    and deletes the objects under ``prune`` (the badges) that are no longer among them."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        prune: str = BADGE_FOLDER,
        client: S3Client | None = None,
    ) -> None:
        if not bucket:
            raise ConfigurationError("STATUS_BUCKET: the status page's S3 bucket is not set")
        self.bucket = bucket
        self.prefix = prefix
        self.prune = prune
        self._client = client

    def publish(self, files: Files) -> Published:
        from botocore.exceptions import BotoCoreError, ClientError

        client = self._client
        if client is None:
            import boto3

            client = self._client = boto3.client("s3")
        where = f"s3://{self.bucket}/{self.prefix}"
        try:
            etags = self._etags(client)
        except (BotoCoreError, ClientError) as error:
            raise StatusPageError(f"cannot list {where}: {error}") from error
        written = 0
        for name, (content, content_type) in files.items():
            key = f"{self.prefix}{name}"
            if etags.get(key) == _md5(content):
                continue
            try:
                if isinstance(content, bytes):
                    self._put(client, key, content, content_type)
                else:
                    with content.open("rb") as body:
                        self._put(client, key, body, content_type)
            except (BotoCoreError, ClientError, OSError) as error:
                raise StatusPageError(f"cannot put s3://{self.bucket}/{key}: {error}") from error
            written += 1
        # deleted only after every write succeeded: a failed run leaves the last page whole
        stale = sorted(
            key
            for key in etags
            if key.startswith(f"{self.prefix}{self.prune}")
            and key.removeprefix(self.prefix) not in files
        )
        try:
            self._delete(client, stale)
        except (BotoCoreError, ClientError, StatusPageError) as error:
            raise StatusPageError(f"cannot delete stale objects in {where}: {error}") from error
        return Published(written=written, unchanged=len(files) - written, deleted=len(stale))

    def _put(self, client: S3Client, key: str, body: bytes | BinaryIO, content_type: str) -> None:
        client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            CacheControl=CACHE_CONTROL,
        )

    def _etags(self, client: S3Client) -> dict[str, str]:
        """Key -> ETag (without its quotes) of every object under the prefix."""
        etags: dict[str, str] = {}
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                etags[item["Key"]] = item["ETag"].strip('"')
        return etags

    def _delete(self, client: S3Client, keys: list[str]) -> None:
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            response = client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise StatusPageError(
                    f"{len(errors)} not deleted, first {first.get('Key')!r}: "
                    f"{first.get('Code')} {first.get('Message')}"
                )


def _md5(content: Content) -> str:
    """What S3 reports as the ETag of a single-part, SSE-S3 or unencrypted object."""
    digest = hashlib.md5(usedforsecurity=False)
    for chunk in chunks(content):
        digest.update(chunk)
    return digest.hexdigest()


def _holds(path: Path, content: Content) -> bool:
    """True when the file at ``path`` has exactly ``content`` (read a megabyte at a time: the
    local stack's status.json of 10,000 sites is ~100 MB)."""
    try:
        if path.stat().st_size != content_size(content):
            return False
        with path.open("rb") as existing:
            for chunk in chunks(content):
                view = memoryview(chunk)
                for start in range(0, len(view), CHUNK):
                    piece = view[start : start + CHUNK]
                    if existing.read(len(piece)) != piece:
                        return False
        return True
    except OSError:
        return False


def _inside(root: Path, name: str) -> Path:
    """``root / name`` (``root`` already resolved), refusing any name that would leave it.

    Checked on the name (no ``..`` out of it, not absolute); the folders it lands in are
    resolved once per publish, so that a symbolic link cannot lead out either.
    """
    target = Path(os.path.normpath(root / name))
    if not target.is_relative_to(root):
        raise StatusPageError(f"{name!r}: outside {root}")
    return target
