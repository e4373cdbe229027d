"""One S3 bucket with the hardening every mldr bucket gets, dataset replica or ops bucket alike."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.components._iam import objects, policy_document

#: Days the history of mldr's own scratch objects (canaries) is kept.
SCRATCH_DAYS = 1


@dataclass(frozen=True)
class SecureBucketArgs:
    region: str
    #: SSE-KMS with this key; None = SSE-S3 (AES256), for buckets whose writers should need no KMS grant.
    kms_key_arn: pulumi.Input[str] | None
    #: Days a noncurrent version is kept before lifecycle expires it.
    noncurrent_days: int
    #: Versions per key that stay restorable (current included) however old they are.
    min_versions: int = 1
    #: Object Lock retention in COMPLIANCE mode; None = no Object Lock.
    object_lock_days: int | None = None
    #: Where mldr writes its own short-lived objects (replication canaries, drill data) - a
    #: dataset's `<prefix>_mldr/`: their history expires after SCRATCH_DAYS. None = no such rule.
    scratch_prefix: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


class SecureBucket(pulumi.ComponentResource):
    """Versioned, encrypted, private, TLS-only bucket with noncurrent-version lifecycle.

    Exposes `bucket` and `versioning`: replication must wait for versioning on both ends, so
    the caller needs that resource, not just the bucket.
    """

    bucket: aws.s3.Bucket
    versioning: aws.s3.BucketVersioning

    def __init__(self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mldr:index:SecureBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        region = args.region

        # The bucket takes the component's own name: it becomes the physical (auto-)name an
        # operator sees in the console at 3 a.m., so it says dataset and region, nothing else.
        self.bucket = aws.s3.Bucket(
            name,
            region=region,
            # Object Lock can only be switched on when the bucket is created.
            object_lock_enabled=bool(args.object_lock_days),
            tags={**args.tags, "mldr:region": region},
            # Holds the data: `pulumi destroy` or a rename must never delete it (see infra/README.md).
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=self.bucket.id,
            region=region,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        if args.kms_key_arn is not None:
            by_default = (
                aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=args.kms_key_arn
                )
            )
        else:
            by_default = (
                aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256"
                )
            )
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            region=region,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=by_default,
                    # One data key per bucket instead of one KMS call per object: cheaper, same protection.
                    bucket_key_enabled=args.kms_key_arn is not None,
                )
            ],
            opts=child,
        )
        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=self.bucket.id,
            region=region,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        self.policy = aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=self.bucket.id,
            region=region,
            policy=policy_document(
                [
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [self.bucket.arn, objects(self.bucket.arn)],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ]
            ),
            # S3 rejects a policy change while the public access block is being written
            # ("conflicting conditional operation"), so write them one after the other.
            # The runbooks add and lift the write fence (a statement of this policy) at run time: a
            # `pulumi up --refresh` mid-failover must not take the fence away (infra/README.md).
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.public_access_block], ignore_changes=["policy"]
            ),
        )
        rule = aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="noncurrent-versions",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=args.noncurrent_days,
                # Keep this many noncurrent versions whatever their age: the restore floor.
                newer_noncurrent_versions=(args.min_versions - 1) or None,
            ),
            # Failed multipart uploads are invisible and billed; a week is ample to resume one.
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=7
            ),
        )
        rules = [rule]
        if args.scratch_prefix is not None:
            # The DR operator role deletes its canaries with delete markers only (it may not
            # destroy history): their versions and the markers left alone expire here, so a lag
            # check every few minutes does not grow the bucket's history for ever.
            rules.append(
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="mldr-scratch",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=args.scratch_prefix),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=SCRATCH_DAYS
                    ),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        expired_object_delete_marker=True
                    ),
                )
            )
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.id,
            region=region,
            rules=rules,
            # Noncurrent-version rules mean nothing until versioning is on.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]),
        )
        self.object_lock: aws.s3.BucketObjectLockConfiguration | None = None
        if args.object_lock_days:
            self.object_lock = aws.s3.BucketObjectLockConfiguration(
                f"{name}-object-lock",
                bucket=self.bucket.id,
                region=region,
                object_lock_enabled="Enabled",
                rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                    default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                        # COMPLIANCE: not even the root user can shorten it: an immutable backup.
                        mode="COMPLIANCE",
                        days=args.object_lock_days,
                    )
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]),
            )
        self.register_outputs({"bucket": self.bucket.bucket, "arn": self.bucket.arn, "region": region})
