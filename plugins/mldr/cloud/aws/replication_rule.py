"""The one S3 replication rule of a dataset: what infra/ declares, the sandbox provisions and the
runbooks write when they turn replication around.

Pure on purpose (no boto, no Pulumi): `infra/` imports it next to `pulumi_aws`, the runbooks and
the sandbox next to botocore, and a unit test needs neither. `build_replication_rule` returns the
rule as `PutBucketReplication` takes it in `Rules`; `pulumi_rule_args` renames the same dict for
`aws.s3.BucketReplicationConfig(rules=[...])`, so no field is written twice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: Replication Time Control: S3's 99.99% "replicated within 15 minutes" SLA; 15 is the only value.
RTC_MINUTES = 15
#: The only rule on the bucket; S3 wants a priority on every rule of a Filter-style configuration.
PRIORITY = 1
#: Replicas stay readable at once after a failover (no Glacier restore, no IA minimum duration).
REPLICA_STORAGE_CLASS = "STANDARD"

# Region-name prefix -> ARN partition, most specific first; everything else is the commercial "aws".
_PARTITIONS: tuple[tuple[str, str], ...] = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-iso-", "aws-iso"),
)


def partition(region: str) -> str:
    """The ARN partition a region belongs to: `aws`, `aws-cn` for cn-*, `aws-us-gov` for us-gov-*."""
    for prefix, name in _PARTITIONS:
        if region.startswith(prefix):
            return name
    return "aws"


def s3_bucket_arn(bucket: str, *, region: str) -> str:
    """A bucket's ARN: S3 ARNs carry no region or account, but the partition follows the region."""
    return f"arn:{partition(region)}:s3:::{bucket}"


def replication_rule_id(*, dataset: str, destination_region: str) -> str:
    """The rule's id, also the `RuleId` dimension of the replication metrics infra/'s alarms watch."""
    return f"{dataset}-to-{destination_region}"


def build_replication_rule(
    *,
    dataset: str,
    prefix: str,
    source_region: str,
    destination_region: str,
    destination_bucket: str,
    replica_kms_key_arn: str | None = None,
    rule_id: str | None = None,
) -> dict[str, Any]:
    """The dataset's rule, source -> destination, in the shape `PutBucketReplication` takes.

    Only keys under `prefix` replicate ('' = the whole bucket); delete markers replicate too, or
    a failover resurrects deleted data; Replication Time Control and its metrics are on (RTC
    requires the metrics, and the alarms watch them). With `replica_kms_key_arn`, SSE-KMS
    objects are selected (without it S3 silently skips every one of them) and their replicas
    are encrypted with that key, which must live in the destination region. `rule_id` is the id
    the topology names (infra's, which its alarms watch); by default `replication_rule_id`'s.
    """
    if source_region == destination_region:
        raise ValueError(f"dataset {dataset}: replication within {source_region} is not disaster recovery")
    if partition(source_region) != partition(destination_region):
        raise ValueError(
            f"dataset {dataset}: S3 cannot replicate across partitions "
            f"({source_region} -> {destination_region})"
        )
    destination: dict[str, Any] = {
        "Bucket": s3_bucket_arn(destination_bucket, region=destination_region),
        "StorageClass": REPLICA_STORAGE_CLASS,
        "ReplicationTime": {"Status": "Enabled", "Time": {"Minutes": RTC_MINUTES}},
        "Metrics": {"Status": "Enabled", "EventThreshold": {"Minutes": RTC_MINUTES}},
    }
    rule: dict[str, Any] = {
        "ID": rule_id or replication_rule_id(dataset=dataset, destination_region=destination_region),
        "Priority": PRIORITY,
        "Status": "Enabled",
        "Filter": {"Prefix": prefix},
        "DeleteMarkerReplication": {"Status": "Enabled"},
        "Destination": destination,
    }
    if replica_kms_key_arn is not None:
        rule["SourceSelectionCriteria"] = {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
        destination["EncryptionConfiguration"] = {"ReplicaKmsKeyID": replica_kms_key_arn}
    return rule


_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _snake(name: str) -> str:
    # "ReplicaKmsKeyID" -> "replica_kms_key_id", "SseKmsEncryptedObjects" -> "sse_kms_encrypted_objects"
    return _WORD_BOUNDARY.sub("_", name).lower()


def pulumi_rule_args(rule: Mapping[str, Any]) -> dict[str, Any]:
    """The same rule as `aws.s3.BucketReplicationConfig` takes it (a `...RuleArgsDict`).

    The provider's argument names are the S3 API's in snake case, so renaming every key is the
    whole translation: nothing here can say something the S3 shape does not.
    """

    def convert(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {_snake(k): convert(v) for k, v in value.items()}
        return value

    converted: dict[str, Any] = convert(rule)
    return converted
