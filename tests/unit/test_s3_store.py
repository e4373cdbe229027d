"""The S3 object store's own logic, over a fake client: the write fence keeps a bucket's other
policy statements and is idempotent; versions come merged with delete markers, newest first."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mldr.cloud.aws.s3 import FENCE_SID, S3ObjectStore
from mldr.cloud.aws.s3_listing import parse_versions
from mldr.cloud.calls import Timeouts
from mldr.errors import NotFound

OTHER = {"Sid": "ReadOnlyAudit", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}


class FakeS3:
    def __init__(
        self, policy: dict[str, Any] | None = None, pages: list[dict[str, Any]] | None = None
    ) -> None:
        self.policy = json.dumps(policy) if policy is not None else None
        self.puts = 0
        self.pages = pages or []

    def get_bucket_policy(self, *, Bucket: str) -> dict[str, Any]:
        if self.policy is None:
            raise ClientError({"Error": {"Code": "NoSuchBucketPolicy", "Message": "none"}}, "GetBucketPolicy")
        return {"Policy": self.policy}

    def put_bucket_policy(self, *, Bucket: str, Policy: str) -> None:
        self.puts += 1
        self.policy = Policy

    def delete_bucket_policy(self, *, Bucket: str) -> None:
        self.policy = None

    def get_bucket_replication(self, *, Bucket: str) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "NoSuchBucket", "Message": "gone"}}, "GetBucketReplication")

    def get_paginator(self, name: str) -> Any:
        assert name == "list_object_versions"
        pages = self.pages

        class Paginator:
            def paginate(self, **_: Any) -> list[dict[str, Any]]:
                return pages

        return Paginator()


class FakeFactory:
    timeouts = Timeouts()

    def __init__(self, client: FakeS3) -> None:
        self._client = client

    def client(self, service: str, region: str, **_: Any) -> FakeS3:
        assert service == "s3"
        return self._client


def store(client: FakeS3) -> S3ObjectStore:
    return S3ObjectStore(FakeFactory(client), "us-east-1")  # type: ignore[arg-type]


def statements(client: FakeS3) -> list[dict[str, Any]]:
    assert client.policy is not None
    return list(json.loads(client.policy)["Statement"])


def test_the_fence_keeps_other_statements_and_is_idempotent() -> None:
    client = FakeS3({"Version": "2012-10-17", "Statement": OTHER})  # a single statement, not a list
    s3 = store(client)
    assert not s3.is_fenced("b")
    assert s3.fence("b") is True
    assert s3.is_fenced("b")
    assert s3.fence("b") is False, "already fenced"
    assert [s["Sid"] for s in statements(client)] == ["ReadOnlyAudit", FENCE_SID]
    [fence] = [s for s in statements(client) if s["Sid"] == FENCE_SID]
    assert fence["Effect"] == "Deny" and fence["Resource"] == "arn:aws:s3:::b/*"
    assert s3.lift_fence("b") is True
    assert statements(client) == [OTHER]
    assert s3.lift_fence("b") is False, "nothing to lift"


def test_lifting_the_only_statement_deletes_the_policy() -> None:
    client = FakeS3()  # no policy at all: NoSuchBucketPolicy is "no statements", not an error
    s3 = store(client)
    assert s3.fence("b") is True
    assert s3.lift_fence("b") is True
    assert client.policy is None


def test_a_missing_bucket_is_not_mistaken_for_a_missing_setting() -> None:
    with pytest.raises(NotFound, match="NoSuchBucket"):
        store(FakeS3()).replication("b")


def test_versions_and_delete_markers_come_merged_newest_first_per_key() -> None:
    # a ListObjectVersions page as S3 writes it (keys url-encoded, as asked): a restore plans from these
    page = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name>
<Prefix></Prefix><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
<NextKeyMarker>b+c%2B</NextKeyMarker><NextVersionIdMarker>b1</NextVersionIdMarker>
<DeleteMarker><Key>a</Key><VersionId>am</VersionId><IsLatest>true</IsLatest>
<LastModified>2026-12-01T00:00:03.000Z</LastModified></DeleteMarker>
<Version><Key>a</Key><VersionId>a2</VersionId><IsLatest>false</IsLatest>
<LastModified>2026-12-01T00:00:02.000Z</LastModified><ETag>&quot;e2&quot;</ETag><Size>2</Size></Version>
<Version><Key>a</Key><VersionId>a1</VersionId><IsLatest>false</IsLatest>
<LastModified>2026-12-01T00:00:01.000Z</LastModified><ETag>"e1"</ETag><Size>1</Size></Version>
<Version><Key>b+c%2B</Key><VersionId>b1</VersionId><IsLatest>true</IsLatest>
<LastModified>2026-12-01T00:00:01.000Z</LastModified><ETag>"f1"</ETag><Size>5</Size></Version>
</ListVersionsResult>"""
    parsed = parse_versions(page)
    versions = parsed.versions
    assert [(v.key, v.version_id, v.deleted, v.latest) for v in versions] == [
        ("a", "am", True, True),
        ("a", "a2", False, False),
        ("a", "a1", False, False),
        ("b c+", "b1", False, True),
    ]
    assert versions[1].etag == "e2" and versions[3].size == 5 and versions[0].etag == ""
    assert versions[0].modified - versions[1].modified == 1.0
    assert (parsed.next_key, parsed.next_version) == ("b c+", "b1"), "the next page starts after b1"
    last = page.replace(b"<IsTruncated>true", b"<IsTruncated>false")
    assert parse_versions(last).next_key is None


def test_a_fence_with_a_pass_lets_only_that_operations_writes_through() -> None:
    """A failback fences the primary with a pass for its fencing token: its resync's requests
    (User-Agent carrying the pass) write, no one else does - a stale token's pass included."""
    from mldr.cloud.aws.s3 import fence_pass
    from mldr.sandbox.motoserver import _applies

    client = FakeS3()
    s3 = store(client)
    assert s3.fence("b", pass_token=7) is True
    assert s3.fence("b", pass_token=7) is False, "exactly this fence was there"
    [fence] = statements(client)
    assert fence["Condition"] == {"StringNotLike": {"aws:UserAgent": "*mldr-fence-pass/7/*"}}
    assert not _applies(fence, f"Botocore/1.35 md/x {fence_pass(7)}"), "the resync's own write passes"
    assert _applies(fence, "Botocore/1.35 md/x"), "a client's write is denied"
    assert _applies(fence, f"Botocore/1.35 {fence_pass(71)}"), "another token's pass does not match"
    assert s3.fence("b", pass_token=8) is True, "a new operation's token replaces the pass"
    assert s3.fence("b") is True, "a plain fence (abort) drops the pass"
    [plain] = statements(client)
    assert "Condition" not in plain and _applies(plain, fence_pass(8))
