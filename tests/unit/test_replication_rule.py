"""The one replication rule infra/, the sandbox and the runbooks write (mldr.cloud.aws.replication_rule)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mldr.cloud.aws.replication_rule import (
    build_replication_rule,
    partition,
    pulumi_rule_args,
    replication_rule_id,
    s3_bucket_arn,
)

KEY = "arn:aws:kms:us-west-2:123456789012:key/1234abcd"


def rule(**overrides: Any) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "dataset": "features",
        "prefix": "online/",
        "source_region": "us-east-1",
        "destination_region": "us-west-2",
        "destination_bucket": "features-us-west-2-1a2b3c4",
        **overrides,
    }
    return build_replication_rule(**inputs)


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("us-east-1", "aws"),
        ("eu-west-1", "aws"),
        ("ap-southeast-2", "aws"),
        ("cn-north-1", "aws-cn"),
        ("cn-northwest-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
        ("us-gov-east-1", "aws-us-gov"),
        ("us-iso-east-1", "aws-iso"),
        ("us-isob-east-1", "aws-iso-b"),
    ],
)
def test_partition_follows_the_region(region: str, expected: str) -> None:
    assert partition(region) == expected
    assert s3_bucket_arn("b", region=region) == f"arn:{expected}:s3:::b"


@pytest.mark.parametrize(
    ("source", "destination", "arn"),
    [
        ("us-east-1", "us-west-2", "arn:aws:s3:::data-copy"),
        ("cn-north-1", "cn-northwest-1", "arn:aws-cn:s3:::data-copy"),
        ("us-gov-west-1", "us-gov-east-1", "arn:aws-us-gov:s3:::data-copy"),
    ],
)
def test_destination_arn_is_in_the_regions_partition(source: str, destination: str, arn: str) -> None:
    built = rule(source_region=source, destination_region=destination, destination_bucket="data-copy")
    assert built["Destination"]["Bucket"] == arn


def test_the_whole_rule_with_a_replica_key() -> None:
    assert rule(replica_kms_key_arn=KEY) == {
        "ID": "features-to-us-west-2",
        "Priority": 1,
        "Status": "Enabled",
        "Filter": {"Prefix": "online/"},
        "DeleteMarkerReplication": {"Status": "Enabled"},
        "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"}},
        "Destination": {
            "Bucket": "arn:aws:s3:::features-us-west-2-1a2b3c4",
            "StorageClass": "STANDARD",
            "EncryptionConfiguration": {"ReplicaKmsKeyID": KEY},
            "ReplicationTime": {"Status": "Enabled", "Time": {"Minutes": 15}},
            "Metrics": {"Status": "Enabled", "EventThreshold": {"Minutes": 15}},
        },
    }


def test_without_a_replica_key_no_kms_selection_and_no_replica_encryption() -> None:
    with_key, without = rule(replica_kms_key_arn=KEY), rule()
    assert "SourceSelectionCriteria" not in without
    assert "EncryptionConfiguration" not in without["Destination"]
    # everything else is the same rule
    del with_key["SourceSelectionCriteria"], with_key["Destination"]["EncryptionConfiguration"]
    assert without == with_key


@pytest.mark.parametrize("prefix", ["", "online/", "registry/v2/"])
def test_only_the_datasets_prefix_replicates(prefix: str) -> None:
    assert rule(prefix=prefix)["Filter"] == {"Prefix": prefix}


def test_rule_id_names_the_dataset_and_where_it_replicates_to() -> None:
    assert replication_rule_id(dataset="features", destination_region="us-west-2") == "features-to-us-west-2"
    # the runbooks' reverse rule (after a failover) is the same dataset's rule the other way
    back = rule(source_region="us-west-2", destination_region="us-east-1", destination_bucket="f-east")
    assert back["ID"] == "features-to-us-east-1"


def test_refuses_same_region_and_cross_partition_replication() -> None:
    with pytest.raises(ValueError, match="not disaster recovery"):
        rule(destination_region="us-east-1")
    with pytest.raises(ValueError, match="across partitions"):
        rule(destination_region="cn-north-1")


def test_pulumi_args_are_the_same_rule_under_the_providers_names() -> None:
    assert pulumi_rule_args(rule(replica_kms_key_arn=KEY)) == {
        "id": "features-to-us-west-2",
        "priority": 1,
        "status": "Enabled",
        "filter": {"prefix": "online/"},
        "delete_marker_replication": {"status": "Enabled"},
        "source_selection_criteria": {"sse_kms_encrypted_objects": {"status": "Enabled"}},
        "destination": {
            "bucket": "arn:aws:s3:::features-us-west-2-1a2b3c4",
            "storage_class": "STANDARD",
            "encryption_configuration": {"replica_kms_key_id": KEY},
            "replication_time": {"status": "Enabled", "time": {"minutes": 15}},
            "metrics": {"status": "Enabled", "event_threshold": {"minutes": 15}},
        },
    }


def test_the_builder_imports_no_cloud_sdk() -> None:
    """infra/ imports it next to pulumi_aws, the runbooks next to botocore: it must need neither."""
    import ast

    import mldr.cloud.aws.replication_rule as module

    tree = ast.parse(Path(module.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {m.split(".")[0] for m in imported} <= {"__future__", "re", "collections", "typing"}, imported
