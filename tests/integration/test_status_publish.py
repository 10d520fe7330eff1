"""S3Publisher on moto's versioned S3: only changed objects are written (their ETag, the MD5
of a single-part SSE-S3 object, is compared with the new bytes), badges of sites no longer
shown are deleted, and anything it cannot vouch for is written again rather than trusted."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest

from webchecker.exceptions import StatusPageError
from webchecker.page.publish import CHUNK, Files, Published, S3Publisher

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "webchecker-status"
SVG = "image/svg+xml"


@pytest.fixture
def s3(aws: None) -> S3Client:
    """A bucket like the template's: versioned, SSE-S3 (AES256) by default."""
    client: S3Client = boto3.client("s3", region_name="eu-west-1")
    client.create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    client.put_bucket_encryption(
        Bucket=BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    return client


def files(generated: str, **badges: str) -> Files:
    page: dict[str, tuple[bytes, str]] = {
        "index.html": (f"<p>Updated {generated}</p>".encode(), "text/html; charset=utf-8"),
        "status.json": (f'{{"generated_at": "{generated}"}}'.encode(), "application/json"),
    }
    for site, text in badges.items():
        page[f"badges/{site}.svg"] = (f"<svg>{site}: {text}</svg>".encode(), SVG)
    return page


def versions(s3: S3Client) -> dict[str, int]:
    """Key -> how many versions the bucket holds (delete markers not counted)."""
    counts: dict[str, int] = {}
    for version in s3.list_object_versions(Bucket=BUCKET).get("Versions", []):
        counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts


def body(s3: S3Client, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_the_etag_of_an_sse_s3_object_is_the_md5_of_its_bytes(s3: S3Client) -> None:
    """The premise of the comparison, checked on the bucket configured like the template's."""
    response = s3.put_object(Bucket=BUCKET, Key="x", Body=b"badge")
    assert response["ServerSideEncryption"] == "AES256"
    listed = s3.list_objects_v2(Bucket=BUCKET)["Contents"][0]["ETag"]
    assert listed.strip('"') == hashlib.md5(b"badge").hexdigest()


def test_an_unchanged_render_writes_only_the_page_and_the_document(s3: S3Client) -> None:
    publisher = S3Publisher(BUCKET, client=s3)

    first = publisher.publish(files("17:00", shop="up 100%", api="down 0.00%"))
    second = publisher.publish(files("17:05", shop="up 100%", api="down 0.00%"))

    assert first == Published(written=4)
    assert second == Published(written=2, unchanged=2)
    assert versions(s3) == {
        "index.html": 2,
        "status.json": 2,
        "badges/shop.svg": 1,
        "badges/api.svg": 1,
    }
    assert body(s3, "index.html") == b"<p>Updated 17:05</p>"
    assert s3.head_object(Bucket=BUCKET, Key="badges/shop.svg")["ContentType"] == SVG


def test_a_changed_site_rewrites_its_badge_and_no_other(s3: S3Client) -> None:
    publisher = S3Publisher(BUCKET, client=s3)
    publisher.publish(files("17:00", shop="up 100%", api="up 99.98%"))

    result = publisher.publish(files("17:05", shop="down 99.97%", api="up 99.98%"))

    assert result == Published(written=3, unchanged=1)
    assert versions(s3)["badges/shop.svg"] == 2
    assert versions(s3)["badges/api.svg"] == 1
    assert body(s3, "badges/shop.svg") == b"<svg>shop: down 99.97%</svg>"


def test_the_same_bytes_twice_write_nothing(s3: S3Client) -> None:
    publisher = S3Publisher(BUCKET, client=s3)
    publisher.publish(files("17:00", shop="up 100%"))
    assert publisher.publish(files("17:00", shop="up 100%")) == Published(written=0, unchanged=3)
    assert set(versions(s3).values()) == {1}


def test_badges_of_sites_no_longer_shown_are_deleted_and_nothing_else(s3: S3Client) -> None:
    s3.put_object(Bucket=BUCKET, Key="robots.txt", Body=b"User-agent: *")  # not ours to delete
    publisher = S3Publisher(BUCKET, client=s3)
    publisher.publish(files("17:00", shop="up 100%", api="up 100%", old="up 100%"))

    result = publisher.publish(files("17:05", shop="up 100%"))

    assert result == Published(written=2, unchanged=1, deleted=2)
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {"robots.txt", "index.html", "status.json", "badges/shop.svg"}
    # versioned: the removed badge stays recoverable until the lifecycle rule expires it
    assert versions(s3)["badges/api.svg"] == 1


def test_only_objects_under_the_prefix_are_compared_and_pruned(s3: S3Client) -> None:
    S3Publisher(BUCKET, client=s3).publish(files("17:00", other="up 100%"))
    publisher = S3Publisher(BUCKET, prefix="status/", client=s3)

    first = publisher.publish(files("17:00", shop="up 100%"))
    second = publisher.publish(files("17:00", shop="up 100%"))

    assert first == Published(written=3)  # the same bytes outside the prefix do not count
    assert second == Published(written=0, unchanged=3)
    assert "badges/other.svg" in versions(s3)  # another page's badge, not pruned
    assert "status/badges/shop.svg" in versions(s3)


def test_an_etag_that_is_not_the_md5_is_rewritten_not_trusted(s3: S3Client) -> None:
    """A multipart upload (or SSE-KMS) gives another ETag: the object is written again."""
    content = files("17:00", shop="up 100%")["badges/shop.svg"][0]
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="badges/shop.svg")
    part = s3.upload_part(
        Bucket=BUCKET,
        Key="badges/shop.svg",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=content,
    )
    s3.complete_multipart_upload(
        Bucket=BUCKET,
        Key="badges/shop.svg",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    listed = s3.list_objects_v2(Bucket=BUCKET)["Contents"][0]["ETag"]
    assert listed.strip('"') != hashlib.md5(content).hexdigest()

    result = S3Publisher(BUCKET, client=s3).publish(files("17:00", shop="up 100%"))

    assert result == Published(written=3)
    assert versions(s3)["badges/shop.svg"] == 2


def test_a_bucket_that_cannot_be_listed_is_a_status_page_error(s3: S3Client) -> None:
    with pytest.raises(StatusPageError, match="cannot list s3://no-such-bucket/"):
        S3Publisher("no-such-bucket", client=s3).publish(files("17:00"))


def test_a_spooled_file_is_put_whole_and_left_alone_when_unchanged(
    s3: S3Client, tmp_path: Path
) -> None:
    publisher = S3Publisher(BUCKET, client=s3)
    spooled = tmp_path / "status.json"
    document = b'{"sites": []}' * (3 * CHUNK // 13)  # over three chunks of the file
    spooled.write_bytes(document)

    first = publisher.publish({"status.json": (spooled, "application/json")})
    second = publisher.publish({"status.json": (spooled, "application/json")})

    assert (first, second) == (Published(written=1), Published(written=0, unchanged=1))
    assert body(s3, "status.json") == document
    head = s3.head_object(Bucket=BUCKET, Key="status.json")
    assert head["ETag"].strip('"') == hashlib.md5(document).hexdigest()  # single part
    assert head["ContentType"] == "application/json"
