"""Failback's resync on SSE-KMS buckets, as in AWS: a source and its replica have different ETags
for the same bytes, so the resync compares them on their stored SHA-256 and copies only what
differs - and says what it compared and verified on."""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid

import pytest

from mldr.actions.resync import resync_dataset
from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.sandbox.manager import Sandbox
from mldr.topology import Topology, load_topology
from tests.dp_support import scoped

pytestmark = pytest.mark.sandbox


def _bytes_by_key(s3: object, bucket: str, prefix: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):  # type: ignore[attr-defined]
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()  # type: ignore[attr-defined]
            out[obj["Key"]] = hashlib.sha256(body).hexdigest()
    return out


def test_resync_leaves_equal_kms_replicas_alone_and_copies_what_differs(sandbox: Sandbox) -> None:
    topology: Topology = load_topology(use_airflow=False)
    factory = ClientFactory.from_environment(topology)
    primary, secondary = topology.primary_region, topology.secondary_region
    prefix = f"resync-kms-{uuid.uuid4().hex[:8]}/"
    dataset = scoped(topology, "features", prefix).dataset("features")
    src, dst = factory.client("s3", primary), factory.client("s3", secondary)
    src_bucket, dst_bucket = dataset.buckets[primary], dataset.buckets[secondary]

    keys = [f"{prefix}{i}.bin" for i in range(4)]
    for key in keys:
        body = os.urandom(100)
        src.put_object(
            Bucket=src_bucket,
            Key=key,
            Body=body,
            ChecksumSHA256=base64.b64encode(hashlib.sha256(body).digest()).decode(),
        )
    deadline = time.monotonic() + 20
    while len(_bytes_by_key(dst, dst_bucket, prefix)) < len(keys):
        assert time.monotonic() < deadline, "not replicated within 20s"
        time.sleep(0.3)
    # one replica edited in the standby (same size, other bytes): the primary's copy must win back
    edited = keys[0]
    other = os.urandom(100)
    dst.put_object(
        Bucket=dst_bucket,
        Key=edited,
        Body=other,
        ChecksumSHA256=base64.b64encode(hashlib.sha256(other).digest()).decode(),
    )
    time.sleep(1.5)  # nothing in the primary is newer than `since` (listing times are to the second)
    before = _bytes_by_key(src, src_bucket, prefix)
    heads = [src.head_object(Bucket=src_bucket, Key=k) for k in keys[1:]]
    replicas = [dst.head_object(Bucket=dst_bucket, Key=k) for k in keys[1:]]
    assert all(h["ETag"] != r["ETag"] for h, r in zip(heads, replicas, strict=True)), "KMS ETags differ"

    # failback to the primary: the secondary was active since `since`, and nothing was written there
    report = resync_dataset(
        AwsCloud(factory),
        dataset,
        active_region=secondary,
        standby_region=primary,
        since=time.time(),
    )

    assert report.failures == [] and report.changed_during == []
    assert report.copied_to == {secondary: 1}, "only the edited replica differs"
    assert report.public()["basis"] == {
        "copies_verified_on_etag": 0,
        "copies_verified_on_sha256": 1,
        "unchanged_by_sha256": 3,
    }
    after_src, after_dst = _bytes_by_key(src, src_bucket, prefix), _bytes_by_key(dst, dst_bucket, prefix)
    assert after_src == before and after_dst == before, "both regions hold the primary's bytes"
    versions = dst.list_object_versions(Bucket=dst_bucket, Prefix=keys[1])["Versions"]
    assert len(versions) == 1, "an equal replica was copied again"
