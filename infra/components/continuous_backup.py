"""An independent copy of the datasets that the DR operator role cannot delete: AWS Backup
continuous backup for S3 (restore to any second of the retention, up to 35 days) into a vault
whose access policy denies deleting a recovery point to every principal, and denies the DR
operator role any change to the vault, its policy or its lock.

Why this and not a replica in another account: see infra/README.md ("The independent copy").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.components._iam import key_policy, policy_document, service_trust_policy

#: AWS Backup keeps continuous backups of S3 for at most 35 days.
MAX_CONTINUOUS_DAYS = 35
#: What would end the copy's independence: no principal may delete or shorten a recovery point.
RECOVERY_POINT_DELETION = (
    "backup:DeleteRecoveryPoint",
    "backup:UpdateRecoveryPointLifecycle",
    "backup:DisassociateRecoveryPoint",
)
#: What would let the DR operator lift that rule: the vault, its access policy and its lock.
VAULT_UNPROTECTION = (
    "backup:DeleteBackupVault",
    "backup:DeleteBackupVaultAccessPolicy",
    "backup:PutBackupVaultAccessPolicy",
    "backup:DeleteBackupVaultLockConfiguration",
    "backup:PutBackupVaultLockConfiguration",
)
_S3_BACKUP_POLICIES = ("AWSBackupServiceRolePolicyForS3Backup", "AWSBackupServiceRolePolicyForS3Restore")


@dataclass(frozen=True)
class ContinuousBackupArgs:
    region: str
    #: the dataset buckets backed up (the primary region's: the replica holds the same data)
    bucket_arns: Sequence[pulumi.Input[str]]
    #: the KMS keys of those buckets (SSE-KMS): AWS Backup reads the objects through them
    key_arns: Sequence[pulumi.Input[str]]
    #: the DR operator role: denied every change to the vault
    operator_role_arn: pulumi.Input[str]
    retention_days: int
    tags: Mapping[str, str] = field(default_factory=dict)


class ContinuousBackup(pulumi.ComponentResource):
    """Vault (own KMS key, access policy, governance lock), backup role, plan and selection."""

    def __init__(
        self, name: str, args: ContinuousBackupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mldr:index:ContinuousBackup", name, None, opts)
        if not 1 <= args.retention_days <= MAX_CONTINUOUS_DAYS:
            raise ValueError(
                f"{name}: continuous backup keeps 1 to {MAX_CONTINUOUS_DAYS} days, not {args.retention_days}"
            )
        child = pulumi.ResourceOptions(parent=self)
        # Data: protected like the buckets, a `pulumi destroy` does not take the backups with it.
        kept = pulumi.ResourceOptions(parent=self, protect=True)
        tags = {**args.tags, "mldr:purpose": "backup"}
        region = args.region

        # A key of its own: the DR operator role's KMS grants (the dataset keys) do not reach it.
        # Its policy declared (the policy pack's rule), as the dataset keys': IAM decides who uses it.
        me = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition
        account_root = pulumi.Output.concat("arn:", partition, ":iam::", me.account_id, ":root")
        self.key = aws.kms.Key(
            f"{name}-vault-key",
            region=region,
            policy=key_policy(account_root),
            description=f"AWS Backup vault {name}: the independent copy of the datasets",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=tags,
            opts=kept,
        )
        self.vault = aws.backup.Vault(
            f"{name}-vault",
            region=region,
            kms_key_arn=self.key.arn,
            force_destroy=False,
            tags=tags,
            opts=kept,
        )
        self.vault_policy = aws.backup.VaultPolicy(
            f"{name}-vault-policy",
            region=region,
            backup_vault_name=self.vault.name,
            policy=policy_document(
                [
                    {
                        "Sid": "NoPrincipalDeletesARecoveryPoint",
                        "Effect": "Deny",
                        "Principal": {"AWS": "*"},
                        "Action": list(RECOVERY_POINT_DELETION),
                        "Resource": "*",
                    },
                    {
                        "Sid": "TheDrOperatorCannotUnprotectTheVault",
                        "Effect": "Deny",
                        "Principal": {"AWS": [args.operator_role_arn]},
                        "Action": list(VAULT_UNPROTECTION),
                        "Resource": "*",
                    },
                ]
            ),
            opts=child,
        )
        # Governance mode (no changeable_for_days): recovery points cannot be deleted before their
        # retention ends; an account administrator (never the DR role, denied above) may lift it.
        self.lock = aws.backup.VaultLockConfiguration(
            f"{name}-vault-lock",
            region=region,
            backup_vault_name=self.vault.name,
            min_retention_days=args.retention_days,
            opts=child,
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            description=f"AWS Backup: continuous backup of the datasets into vault {name}",
            assume_role_policy=service_trust_policy("backup.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        self.attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-{policy_name}",
                role=self.role.name,
                policy_arn=pulumi.Output.concat(
                    "arn:", aws.get_partition_output().partition, ":iam::aws:policy/", policy_name
                ),
                opts=child,
            )
            for policy_name in _S3_BACKUP_POLICIES
        ]
        self.key_grant = aws.iam.RolePolicy(
            f"{name}-dataset-keys",
            role=self.role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "ReadTheDatasetsEncryptedObjects",
                        "Effect": "Allow",
                        "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"],
                        "Resource": list(args.key_arns),
                    }
                ]
            ),
            opts=child,
        )
        self.plan = aws.backup.Plan(
            f"{name}-plan",
            region=region,
            rules=[
                aws.backup.PlanRuleArgs(
                    rule_name="continuous",
                    target_vault_name=self.vault.name,
                    # continuous backups need a rule with a schedule too: the daily snapshot of the
                    # continuous recovery point AWS Backup takes
                    schedule="cron(0 5 ? * * *)",
                    enable_continuous_backup=True,
                    lifecycle=aws.backup.PlanRuleLifecycleArgs(delete_after=args.retention_days),
                )
            ],
            tags=tags,
            opts=child,
        )
        self.selection = aws.backup.Selection(
            f"{name}-datasets",
            region=region,
            iam_role_arn=self.role.arn,
            plan_id=self.plan.id,
            resources=list(args.bucket_arns),
            opts=child,
        )
        self.register_outputs({"vault_arn": self.vault.arn, "plan_id": self.plan.id})
