"""Object Lock of a dataset's buckets: read from the bucket's default retention (moto, like some
S3-compatible stores, does not answer GetObjectRetention) and checked against the topology."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mldr.checks.verification.compare import object_lock_problems
from mldr.cloud.aws.s3 import S3ObjectStore
from mldr.cloud.calls import Timeouts
from mldr.topology import Dataset
from tests.unit.test_verification_logic import dataset as verification_dataset


def dataset(lock_days: int | None) -> Dataset:
    retention = {"noncurrent_days": 30, "min_versions": 1, "object_lock_days": lock_days}
    return verification_dataset(retention=retention)


def test_a_bucket_without_the_required_lock_or_with_a_shorter_one_is_reported() -> None:
    assert object_lock_problems(None, dataset(None), "b") == []  # not required: nothing to say
    (missing,) = object_lock_problems(None, dataset(30), "models-usw2")
    assert missing.startswith("s3://models-usw2: no Object Lock default retention; the topology requires 30")
    (short,) = object_lock_problems(7, dataset(30), "models-use1")
    assert short == "s3://models-use1: Object Lock default retention is 7 days; the topology requires 30"
    assert object_lock_problems(30, dataset(30), "b") == object_lock_problems(365, dataset(30), "b") == []


class _Factory:
    timeouts = Timeouts()

    def __init__(self, client: Any) -> None:
        self._client = client

    def client(self, service: str, region: str, **_: Any) -> Any:
        return self._client


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")


def test_the_default_retention_is_read_from_the_bucket(s3: Any) -> None:
    store = S3ObjectStore(_Factory(s3), "us-east-1")  # type: ignore[arg-type]
    s3.create_bucket(Bucket="plain")
    assert store.object_lock_days("plain") is None
    s3.create_bucket(Bucket="locked", ObjectLockEnabledForBucket=True)
    assert store.object_lock_days("locked") is None, "Object Lock on, but no default retention"
    for rule, days in (({"Mode": "COMPLIANCE", "Days": 30}, 30), ({"Mode": "GOVERNANCE", "Years": 1}, 365)):
        s3.put_object_lock_configuration(
            Bucket="locked",
            ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": rule}},
        )
        assert store.object_lock_days("locked") == days
