"""The independent copy: AWS Backup continuous backup of every dataset into a vault no principal
deletes a recovery point from and the DR operator role cannot unprotect (infra/README.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from infra_cases import Deployed
from infra_mocks import Declared, Deployment

from infra import config
from infra.components.continuous_backup import RECOVERY_POINT_DELETION, VAULT_UNPROTECTION

VAULT = "aws:backup/vault:Vault"
VAULT_POLICY = "aws:backup/vaultPolicy:VaultPolicy"
VAULT_LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
PLAN = "aws:backup/plan:Plan"
SELECTION = "aws:backup/selection:Selection"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def _one(d: Deployment, typ: str) -> Declared:
    found = d.of_type(typ)
    assert len(found) == 1, f"expected one {typ}, found {[r.urn for r in found]}"
    return found[0]


def _dr_role(d: Deployment) -> Declared:
    (role,) = [r for r in d.of_type(ROLE) if r.inputs["tags"].get("mldr:purpose") == "dr-operator"]
    return role


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def test_every_dataset_is_backed_up_continuously_into_the_vault(deployed: Deployed) -> None:
    d, cfg = deployed.result, deployed.cfg
    vault, plan, selection = _one(d, VAULT), _one(d, PLAN), _one(d, SELECTION)
    (rule,) = plan.inputs["rules"]
    assert rule["enableContinuousBackup"] is True, f"{plan}: not continuous (point in time)"
    assert rule["lifecycle"]["deleteAfter"] == cfg.continuous_backup_days, f"{plan}: retention"
    assert rule["targetVaultName"] == vault.outputs["name"], f"{plan}: another vault"
    primaries = {
        b.outputs["arn"]
        for b in d.of_type("aws:s3/bucket:Bucket")
        if b.inputs.get("tags", {}).get("mldr:bucket-role") == "primary"
    }
    assert len(primaries) == len(cfg.datasets)
    assert set(selection.inputs["resources"]) == primaries, f"{selection}: not every dataset's bucket"
    assert vault.region == cfg.primary_region and vault.protect, f"{vault}: holds backups, must be protected"
    assert vault.inputs["forceDestroy"] is False, f"{vault}: destroy would take the recovery points"
    assert _one(d, VAULT_LOCK).inputs["minRetentionDays"] == cfg.continuous_backup_days


def test_no_one_deletes_a_recovery_point_and_the_dr_role_cannot_unprotect_the_vault(
    deployed: Deployed,
) -> None:
    d = deployed.result
    dr_role = _dr_role(d)
    statements = json.loads(_one(d, VAULT_POLICY).inputs["policy"])["Statement"]
    denied_to_all = [s for s in statements if s["Effect"] == "Deny" and s["Principal"] == {"AWS": "*"}]
    assert {"backup:DeleteRecoveryPoint", "backup:UpdateRecoveryPointLifecycle"} <= set(
        RECOVERY_POINT_DELETION
    )
    assert set(RECOVERY_POINT_DELETION) <= {a for s in denied_to_all for a in _actions(s)}
    denied_to_dr = [
        s
        for s in statements
        if s["Effect"] == "Deny" and dr_role.outputs["arn"] in s["Principal"].get("AWS", [])
    ]
    assert {"backup:PutBackupVaultAccessPolicy", "backup:DeleteBackupVault"} <= set(VAULT_UNPROTECTION)
    assert set(VAULT_UNPROTECTION) <= {a for s in denied_to_dr for a in _actions(s)}
    # and the DR role is granted nothing on AWS Backup that the deny would have to hold back
    (grant,) = d.referencing(dr_role, ROLE_POLICY, "role")
    granted = {a for s in json.loads(grant.inputs["policy"])["Statement"] for a in _actions(s)}
    assert not {a for a in granted if a.startswith("backup:") or a == "*"}, f"{grant}: {granted}"
    # the vault's key is its own: none of the DR role's KMS grants names it
    vault_key = _one(d, VAULT).inputs["kmsKeyArn"]
    assert vault_key not in json.dumps(json.loads(grant.inputs["policy"])), f"{grant} reaches the vault key"


#: The keys without a default (an image is required since the image is built here).
BASE = {"dnsName": "inference.example.com", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mldr:1"}


def test_the_backup_window_is_what_aws_backup_keeps() -> None:
    assert config.load({**BASE, "continuousBackupDays": "0"}).continuous_backup_days == 0
    with pytest.raises(config.ConfigError) as failure:
        config.load({**BASE, "continuousBackupDays": 36})
    (problem,) = failure.value.problems
    assert problem.startswith("continuousBackupDays:") and "35" in problem


def test_object_lock_of_a_dataset_reaches_the_topology_verification_reads(deployed: Deployed) -> None:
    """A dataset under Object Lock (the warm config's models: 30 days) says so in the exported
    topology, so the nightly verification can check both buckets' default retention."""
    from mldr.topology import parse_topology

    d, cfg = deployed.result, deployed.cfg
    topology = parse_topology(d.outputs["topology"], source=f"topology of {deployed.label}")
    exported = {ds.name: ds.retention.object_lock_days for ds in topology.datasets}
    assert exported == {ds.name: ds.object_lock_days for ds in cfg.datasets}
    assert deployed.label == "default" or exported["models"] == 30
