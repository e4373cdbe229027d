"""A dataset's primary bucket and its replica in the other region, with S3 Cross-Region Replication."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.components._iam import key_policy, objects, policy_document, s3_trust_policy
from infra.components.secure_bucket import SecureBucket, SecureBucketArgs
from mldr.cloud.aws.replication_rule import build_replication_rule, pulumi_rule_args, replication_rule_id


@dataclass(frozen=True)
class ReplicatedBucketArgs:
    primary_region: str
    replica_region: str
    #: Key prefix the dataset lives under ('' = whole bucket); only it is replicated.
    prefix: str
    #: Replication latency above this raises the latency alarm.
    rpo_seconds: int
    noncurrent_days: int
    min_versions: int
    #: Object Lock (COMPLIANCE) retention in days on both buckets; None = none.
    object_lock_days: int | None
    #: SNS topic in the primary region: replication metrics and their alarms live in the source region.
    alarm_topic_arn: pulumi.Input[str]
    tags: Mapping[str, str] = field(default_factory=dict)


class ReplicatedBucket(pulumi.ComponentResource):
    """Primary and replica buckets (SSE-KMS, one key per region), replication with RTC, alarms."""

    def __init__(
        self, name: str, args: ReplicatedBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mldr:index:ReplicatedBucket", name, None, opts)
        if args.primary_region == args.replica_region:
            # config.load() refuses this first; the component refuses it too so it cannot be reused wrongly.
            raise ValueError(
                f"{name}: replica region must differ from {args.primary_region} (same-region is not DR)"
            )
        child = pulumi.ResourceOptions(parent=self)
        source_region, replica_region = args.primary_region, args.replica_region
        tags = {**args.tags, "mldr:dataset": name}
        me = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition
        account_root = pulumi.Output.concat("arn:", partition, ":iam::", me.account_id, ":root")

        # A key per region: a KMS key never leaves its region, and the replica must stay
        # readable when the primary region (and its key) is gone.
        self.primary_key = self._key(name, source_region, account_root, tags, child)
        self.replica_key = self._key(name, replica_region, account_root, tags, child)

        def secure(region: str, key: aws.kms.Key, role: str) -> SecureBucket:
            return SecureBucket(
                f"{name}-{region}",
                SecureBucketArgs(
                    region=region,
                    kms_key_arn=key.arn,
                    noncurrent_days=args.noncurrent_days,
                    min_versions=args.min_versions,
                    object_lock_days=args.object_lock_days,
                    # mldr's canaries and drill data (RESERVED_PREFIX in plugins/mldr)
                    scratch_prefix=f"{args.prefix}_mldr/",
                    tags={**tags, "mldr:bucket-role": role},
                ),
                opts=child,
            )

        self.primary = secure(source_region, self.primary_key, "primary")
        self.replica = secure(replica_region, self.replica_key, "replica")

        self.role = aws.iam.Role(
            f"{name}-replication-role",
            description=f"S3 replication of dataset {name} between {source_region} and {replica_region}",
            assume_role_policy=s3_trust_policy(me.account_id),
            tags={**tags, "mldr:purpose": "replication"},
            opts=child,
        )
        self.role_policy = aws.iam.RolePolicy(
            f"{name}-replication-policy",
            role=self.role.id,
            policy=self._replication_policy(args),
            opts=child,
        )

        # The rule itself is mldr's (one builder for infra/, the sandbox and the runbooks, which
        # rewrite it when they turn replication around); only the resources' names and ARNs are ours.
        self.rule_id = replication_rule_id(dataset=name, destination_region=replica_region)
        rule = pulumi.Output.all(self.replica.bucket.bucket, self.replica_key.arn).apply(
            lambda resolved: pulumi_rule_args(
                build_replication_rule(
                    dataset=name,
                    prefix=args.prefix,
                    source_region=source_region,
                    destination_region=replica_region,
                    destination_bucket=resolved[0],
                    # Always: every dataset bucket is SSE-KMS, and S3 skips SSE-KMS objects otherwise.
                    replica_kms_key_arn=resolved[1],
                )
            )
        )
        self.replication = aws.s3.BucketReplicationConfig(
            f"{name}-replication",
            bucket=self.primary.bucket.id,
            region=source_region,
            role=self.role.arn,
            rules=[rule],
            # S3 refuses a replication configuration unless both buckets are already versioned;
            # and objects written before the role may act would fail to replicate.
            # The runbooks turn replication around on failover and back on failback: a `pulumi up`
            # during an incident must not rewrite the direction they chose (infra/README.md).
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.primary.versioning, self.replica.versioning, self.role_policy],
                ignore_changes=["rules", "role"],
            ),
        )

        dimensions: dict[str, pulumi.Input[str]] = {
            "SourceBucket": self.primary.bucket.bucket,
            "DestinationBucket": self.replica.bucket.bucket,
            "RuleId": self.rule_id,
        }
        where = f"dataset {name}, {source_region} -> {replica_region}"
        self.failed_alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-replication-failed",
            region=source_region,
            alarm_description=(
                f"Objects failed to replicate ({where}). The replica is missing data: check the "
                "replication role's policy and both KMS keys, then re-copy the failed keys "
                "(S3 Batch Replication)."
            ),
            namespace="AWS/S3",
            metric_name="OperationFailedReplication",
            dimensions=dimensions,
            statistic="Sum",
            period=300,
            evaluation_periods=1,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[args.alarm_topic_arn],
            ok_actions=[args.alarm_topic_arn],
            tags=tags,
            opts=child,
        )
        self.latency_alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-replication-latency",
            region=source_region,
            alarm_description=(
                f"Replication latency is above the dataset's RPO of {args.rpo_seconds}s ({where}): "
                "a failover now would lose more data than agreed. See the dr_replication_lag DAG."
            ),
            namespace="AWS/S3",
            metric_name="ReplicationLatency",
            dimensions=dimensions,
            statistic="Maximum",
            period=300,
            evaluation_periods=1,
            threshold=args.rpo_seconds,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[args.alarm_topic_arn],
            ok_actions=[args.alarm_topic_arn],
            tags=tags,
            opts=child,
        )
        self.register_outputs(
            {
                "primaryBucket": self.primary.bucket.bucket,
                "replicaBucket": self.replica.bucket.bucket,
                "replicationRoleArn": self.role.arn,
            }
        )

    @staticmethod
    def _key(
        name: str,
        region: str,
        account_root: pulumi.Input[str],
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions,
    ) -> aws.kms.Key:
        return aws.kms.Key(
            f"{name}-key-{region}",
            region=region,
            description=f"SSE-KMS for dataset {name} in {region}",
            policy=key_policy(account_root),
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags={**tags, "mldr:region": region},
            # Without its key the dataset's objects cannot be read: never deleted by a `pulumi up`.
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=True)),
        )

    def _replication_policy(self, args: ReplicatedBucketArgs) -> pulumi.Output[str]:
        """Least privilege for replication in both directions between exactly these two buckets.

        Both directions because after a failover the runbook's protect step replicates the new
        primary back (T->S) and passes this same role; the bucket and key ARNs stay these four.
        """
        buckets = [self.primary.bucket.arn, self.replica.bucket.arn]
        keys = [self.primary_key.arn, self.replica_key.arn]
        all_objects = [objects(arn) for arn in buckets]
        read_object_actions = [
            "s3:GetObjectVersionForReplication",
            "s3:GetObjectVersionAcl",
            "s3:GetObjectVersionTagging",
        ]
        if args.object_lock_days:
            # Replicating locked objects carries their retention, which the role must read.
            read_object_actions += ["s3:GetObjectRetention", "s3:GetObjectLegalHold"]
        via_s3 = {
            "StringEquals": {
                "kms:ViaService": [
                    f"s3.{r}.amazonaws.com" for r in (args.primary_region, args.replica_region)
                ]
            }
        }
        return policy_document(
            [
                {
                    "Sid": "ReadReplicationSource",
                    "Effect": "Allow",
                    "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                    "Resource": buckets,
                },
                {
                    "Sid": "ReadSourceObjects",
                    "Effect": "Allow",
                    "Action": read_object_actions,
                    "Resource": all_objects,
                },
                {
                    "Sid": "WriteReplicas",
                    "Effect": "Allow",
                    "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                    "Resource": all_objects,
                },
                {
                    "Sid": "DecryptSource",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt"],
                    "Resource": keys,
                    "Condition": via_s3,
                },
                {
                    "Sid": "EncryptReplica",
                    "Effect": "Allow",
                    "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
                    "Resource": keys,
                    "Condition": via_s3,
                },
            ]
        )
