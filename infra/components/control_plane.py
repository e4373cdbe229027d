"""What DR itself runs on: the control-state table, alert topics, ops buckets and the runbooks' role.

All of it must survive the loss of either region: the table is a global table with a replica in
each, and topics and ops buckets exist once per region (the runbooks write to both themselves).

The table is strongly consistent across regions when the two regions allow it (DynamoDB
multi-Region strong consistency, MRSC: two replicas and a witness in one region set). The
lease is a compare-and-set: on a last-writer-wins global table two replicas could each accept
one, and both operations would hold the lease. With MRSC a write is acknowledged only once a
quorum has it - any replica answers with the truth, and a write that cannot reach a quorum
fails instead of diverging. Regions in no MRSC set get a last-writer-wins table, and the
topology document tells the runbooks to write it through the secondary's replica only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components._iam import objects, policy_document
from infra.components.secure_bucket import SecureBucket, SecureBucketArgs

#: Partition key of the control-state table (lease, fencing token, operation in progress).
CONTROL_TABLE_KEY = "pk"
#: The lease item's key (mldr.cloud.aws.dynamodb.LEASE_KEY; tests/infra checks the two agree).
LEASE_KEY = "lease"
#: What the DR operator role may never do to a dataset or ops bucket, whatever a bucket policy says.
DESTRUCTIVE_ACTIONS = (
    "s3:DeleteObjectVersion",
    "s3:DeleteBucket",
    "s3:PutBucketVersioning",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketObjectLockConfiguration",
    "s3:BypassGovernanceRetention",
    "s3:PutEncryptionConfiguration",
)
#: Reports and audit events are evidence for the DR owner; keep overwritten versions a year.
OPS_NONCURRENT_DAYS = 365


@dataclass(frozen=True)
class ControlPlaneArgs:
    primary_region: str
    secondary_region: str
    #: Principals allowed to assume the DR operator role (the Airflow workers' role, ...).
    trusted_principal_arns: Sequence[pulumi.Input[str]]
    alert_email: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    #: The third region of the MRSC region set: the quorum's tie-breaker, stores no items.
    #: None: the regions are in no MRSC set; a last-writer-wins global table.
    witness_region: str | None = None


@dataclass(frozen=True)
class RunbookTargets:
    """Everything outside the control plane that the runbooks read or change."""

    dataset_bucket_arns: Sequence[pulumi.Input[str]]
    dataset_key_arns: Sequence[pulumi.Input[str]]
    replication_role_arns: Sequence[pulumi.Input[str]]
    service_arns: Sequence[pulumi.Input[str]]
    health_check_arns: Sequence[pulumi.Input[str]]
    hosted_zone_arn: pulumi.Input[str]


def initial_lease_item(primary_region: str) -> dict[str, object]:
    """The lease before any DR operation: primary active, token 0, nothing fenced, no operation."""
    return {
        CONTROL_TABLE_KEY: {"S": LEASE_KEY},
        "active_region": {"S": primary_region},
        "fencing_token": {"N": "0"},
        "fenced_regions": {"L": []},
        "operation": {"NULL": True},
        "holder": {"S": ""},
    }


class ControlPlane(pulumi.ComponentResource):
    """Control-state global table, per-region SNS topics and ops buckets, the DR operator role.

    The role's permissions name resources declared after the control plane (buckets, services,
    health checks, which themselves need its topics), so they are attached by
    `grant_runbooks()` once those exist; the role itself, and who may assume it, is fixed here.
    """

    def __init__(self, name: str, args: ControlPlaneArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mldr:index:ControlPlane", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self._name = name
        self._regions = (args.primary_region, args.secondary_region)
        regions = (args.primary_region, args.secondary_region)
        tags = dict(args.tags)

        self.table = aws.dynamodb.Table(
            f"{name}-control-state",
            region=args.primary_region,
            billing_mode="PAY_PER_REQUEST",
            hash_key=CONTROL_TABLE_KEY,
            attributes=[aws.dynamodb.TableAttributeArgs(name=CONTROL_TABLE_KEY, type="S")],
            # Global tables replicate through the stream.
            stream_enabled=True,
            stream_view_type="NEW_AND_OLD_IMAGES",
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            # The lease must be readable and writable with either region down: a replica in the
            # other, and a witness so the survivor and the witness still make a quorum.
            replicas=[
                aws.dynamodb.TableReplicaArgs(
                    region_name=args.secondary_region,
                    point_in_time_recovery=True,
                    consistency_mode="STRONG" if args.witness_region else None,
                )
            ],
            global_table_witness=aws.dynamodb.TableGlobalTableWitnessArgs(region_name=args.witness_region)
            if args.witness_region
            else None,
            tags={**tags, "mldr:purpose": "control-state"},
            # Holds the lease, the fencing token and the audit queue: never deleted by a `pulumi up`.
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.replica_table_arns = self.table.replicas.apply(lambda replicas: [r.arn for r in replicas or []])
        self.lease = aws.dynamodb.TableItem(
            f"{name}-lease",
            region=args.primary_region,
            table_name=self.table.name,
            hash_key=self.table.hash_key,
            item=json.dumps(initial_lease_item(args.primary_region)),
            # Seeded once. From then on the runbooks own the lease (active region, fencing token):
            # a later `pulumi up` resetting it would hand the primary back mid-incident.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["item"]),
        )

        self.topics: dict[str, aws.sns.Topic] = {}
        self.ops_buckets: dict[str, SecureBucket] = {}
        for region in regions:
            # Not KMS-encrypted: CloudWatch alarms cannot publish to a topic under the AWS-managed
            # SNS key, and alerts carry names and numbers, not data.
            topic = aws.sns.Topic(
                f"{name}-alerts-{region}", region=region, tags={**tags, "mldr:region": region}, opts=child
            )
            if args.alert_email:
                aws.sns.TopicSubscription(
                    f"{name}-alerts-{region}-email",
                    region=region,
                    topic=topic.arn,
                    protocol="email",
                    endpoint=args.alert_email,
                    opts=child,
                )
            self.topics[region] = topic
            # SSE-S3, not KMS: every runbook task writes here, and should not need a key grant to
            # record that it ran. Not replicated: the runbooks write each report to both regions.
            self.ops_buckets[region] = SecureBucket(
                f"{name}-ops-{region}",
                SecureBucketArgs(
                    region=region,
                    kms_key_arn=None,
                    noncurrent_days=OPS_NONCURRENT_DAYS,
                    tags={**tags, "mldr:bucket-role": "ops"},
                ),
                opts=child,
            )

        self.role = aws.iam.Role(
            f"{name}-dr-operator",
            description="Assumed by the DR Airflow (and `mldr` CLI) to run the DR runbooks",
            assume_role_policy=policy_document(
                [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": list(args.trusted_principal_arns)},
                        "Action": "sts:AssumeRole",
                    }
                ]
            ),
            tags={**tags, "mldr:purpose": "dr-operator"},
            opts=child,
        )
        self.runbook_policy: aws.iam.RolePolicy | None = None
        self.register_outputs(
            {
                "table": self.table.name,
                "roleArn": self.role.arn,
                "topicArns": {r: t.arn for r, t in self.topics.items()},
                "opsBuckets": {r: b.bucket.bucket for r, b in self.ops_buckets.items()},
            }
        )

    def grant_runbooks(self, targets: RunbookTargets) -> aws.iam.RolePolicy:
        """Attach exactly the permissions the runbooks use, on exactly these resources."""
        if self.runbook_policy is not None:
            raise ValueError(f"{self._name}: runbook permissions are already granted")
        dataset_objects = [objects(arn) for arn in targets.dataset_bucket_arns]
        ops_arns = [b.bucket.arn for b in self.ops_buckets.values()]
        ops_objects = [objects(arn) for arn in ops_arns]
        tables = pulumi.Output.all(self.table.arn, self.replica_table_arns).apply(
            lambda arns: [arns[0], *arns[1]]
        )
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition
        statements: list[dict[str, Any]] = [
            {
                # Preflight and drain measure replication; fence/unfence swap the bucket policy;
                # protect starts replication back from the new primary.
                "Sid": "DatasetBuckets",
                "Effect": "Allow",
                "Action": [
                    "s3:ListBucket",
                    "s3:ListBucketVersions",
                    "s3:GetBucketVersioning",
                    # verification: a dataset under Object Lock has its default retention checked
                    "s3:GetBucketObjectLockConfiguration",
                    # Verification fails closed on a bucket whose encryption it cannot read, and
                    # checks that retention keeps noncurrent versions long enough.
                    "s3:GetEncryptionConfiguration",
                    "s3:GetLifecycleConfiguration",
                    "s3:GetReplicationConfiguration",
                    "s3:PutReplicationConfiguration",
                    "s3:GetBucketPolicy",
                    "s3:PutBucketPolicy",
                    # Lifting the write fence deletes the policy when the fence was all it held.
                    "s3:DeleteBucketPolicy",
                ],
                "Resource": list(targets.dataset_bucket_arns),
            },
            {
                # Verification reads both copies; failback resync copies (and deletes) what changed.
                "Sid": "DatasetObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject"],
                "Resource": dataset_objects,
            },
            {
                "Sid": "DatasetKeys",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": list(targets.dataset_key_arns),
                # Only through S3 (reading and writing dataset objects), never the keys directly.
                "Condition": {
                    "StringEquals": {"kms:ViaService": [f"s3.{r}.amazonaws.com" for r in self._regions]}
                },
            },
            {
                "Sid": "PassReplicationRoles",
                "Effect": "Allow",
                "Action": ["iam:PassRole"],
                "Resource": list(targets.replication_role_arns),
                "Condition": {"StringEquals": {"iam:PassedToService": "s3.amazonaws.com"}},
            },
            {
                "Sid": "OpsBuckets",
                "Effect": "Allow",
                # the object store reads a bucket's encryption to choose how it copies into it
                # (a changed-on-both-sides version is kept in the ops bucket)
                "Action": ["s3:ListBucket", "s3:GetEncryptionConfiguration"],
                "Resource": ops_arns,
            },
            {
                "Sid": "OpsReportsAndAudit",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": ops_objects,
            },
            {
                "Sid": "ControlState",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:DeleteItem",
                    # `mldr history` and the dashboard list past operations
                    "dynamodb:Scan",
                ],
                "Resource": tables,
            },
            {
                "Sid": "Alerts",
                "Effect": "Allow",
                "Action": ["sns:Publish"],
                "Resource": [t.arn for t in self.topics.values()],
            },
            {
                "Sid": "ScaleInference",
                "Effect": "Allow",
                "Action": ["ecs:DescribeServices", "ecs:UpdateService"],
                "Resource": list(targets.service_arns),
            },
            {
                "Sid": "SwitchTraffic",
                "Effect": "Allow",
                "Action": [
                    "route53:ListResourceRecordSets",
                    "route53:ChangeResourceRecordSets",
                ],
                "Resource": [targets.hosted_zone_arn],
            },
            {
                "Sid": "HealthChecks",
                "Effect": "Allow",
                "Action": [
                    "route53:GetHealthCheck",
                    "route53:GetHealthCheckStatus",
                ],
                "Resource": list(targets.health_check_arns),
            },
            {
                # The switch confirms what the DNS name answers. TestDNSAnswer takes no resource:
                # "*" is the only grant IAM accepts (the policy pack allows it for such actions).
                "Sid": "ConfirmDnsAnswer",
                "Effect": "Allow",
                "Action": ["route53:TestDNSAnswer"],
                "Resource": ["*"],
            },
            {
                # The drill's and verification's figures, and the dashboard's. CloudWatch names no
                # resource for either: "*" is the only grant IAM accepts (as for TestDNSAnswer).
                "Sid": "Metrics",
                "Effect": "Allow",
                "Action": ["cloudwatch:PutMetricData", "cloudwatch:GetMetricData"],
                "Resource": ["*"],
            },
            {
                # Confirming a record change is INSYNC; change ids are only known after the change,
                # and `change/*` is the narrowest resource Route 53 offers for GetChange.
                "Sid": "ConfirmTrafficSwitch",
                "Effect": "Allow",
                "Action": ["route53:GetChange"],
                "Resource": [pulumi.Output.concat("arn:", partition, ":route53:::change/*")],
            },
            {
                # The role may write bucket policies (the write fence), and in one account a bucket
                # policy alone grants what it names - the role could grant itself anything. An
                # explicit Deny here wins over any bucket policy's Allow: whatever a policy it
                # writes says, the role never destroys versions, turns versioning or Object Lock
                # off, shortens retention or deletes a bucket.
                "Sid": "NeverDestroyHistory",
                "Effect": "Deny",
                "Action": list(DESTRUCTIVE_ACTIONS),
                "Resource": [*targets.dataset_bucket_arns, *dataset_objects, *ops_arns, *ops_objects],
            },
        ]
        self.runbook_policy = aws.iam.RolePolicy(
            f"{self._name}-dr-operator-runbooks",
            role=self.role.id,
            policy=policy_document(statements),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return self.runbook_policy
