"""Wires the components from an `InfraConfig` and returns the stack outputs.

Kept apart from `__main__.py` so tests run `build()` under Pulumi mocks with any config.
Region handling: one AWS provider, and every regional resource names its `region`
explicitly (pulumi-aws 7); see infra/README.md for why.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from infra import config
from infra.components import (
    ContinuousBackup,
    ContinuousBackupArgs,
    ControlPlane,
    ControlPlaneArgs,
    FailoverDns,
    FailoverDnsArgs,
    FailoverEndpoint,
    FailoverRole,
    RegionalInference,
    RegionalInferenceArgs,
    RegionalNetwork,
    RegionalNetworkArgs,
    ReplicatedBucket,
    ReplicatedBucketArgs,
    RunbookTargets,
    short_region,
)
from infra.topology_document import RegionOutputs, StackOutputs, topology_output


def _trusted_principals(cfg: config.InfraConfig) -> list[pulumi.Input[str]]:
    if cfg.airflow_principal_arns:
        return list(cfg.airflow_principal_arns)
    # The account itself: IAM policies in the account then decide who may assume the role.
    me = aws.get_caller_identity_output()
    return [
        pulumi.Output.concat("arn:", aws.get_partition_output().partition, ":iam::", me.account_id, ":root")
    ]


def _hosted_zone(cfg: config.InfraConfig) -> pulumi.Output[aws.route53.GetZoneResult]:
    # A lookup either way: it fails the preview early when the zone is not in this account.
    if cfg.dns.hosted_zone_id:
        return aws.route53.get_zone_output(zone_id=cfg.dns.hosted_zone_id)
    return aws.route53.get_zone_output(name=cfg.dns.hosted_zone_name, private_zone=False)


def build(cfg: config.InfraConfig) -> dict[str, pulumi.Output[Any]]:
    """Declare every resource for `cfg` and return the stack outputs by name."""
    primary, secondary = cfg.regions
    tags = {"mldr:stack": cfg.name}

    control = ControlPlane(
        "mldr",
        ControlPlaneArgs(
            primary_region=primary,
            secondary_region=secondary,
            witness_region=cfg.control_witness_region or None,
            trusted_principal_arns=_trusted_principals(cfg),
            alert_email=cfg.alert_email,
            tags=tags,
        ),
    )

    datasets = {
        d.name: ReplicatedBucket(
            d.name,
            ReplicatedBucketArgs(
                primary_region=primary,
                replica_region=secondary,
                prefix=d.prefix,
                rpo_seconds=d.rpo_seconds,
                noncurrent_days=d.noncurrent_days,
                min_versions=d.min_versions,
                object_lock_days=d.object_lock_days,
                alarm_topic_arn=control.topics[primary].arn,
                tags={**tags, "mldr:dataset-kind": d.kind},
            ),
        )
        for d in cfg.datasets
    }
    model = next(d for d in cfg.datasets if d.kind == "model_artifacts")

    zone = _hosted_zone(cfg)
    inference: dict[str, RegionalInference] = {}
    for region in cfg.regions:
        short = short_region(region)
        network = RegionalNetwork(
            f"network-{short}", RegionalNetworkArgs(region=region, cidr=cfg.vpc_cidrs[region], tags=tags)
        )
        here = {name: ds.primary if region == primary else ds.replica for name, ds in datasets.items()}
        keys_here = [
            ds.primary_key.arn if region == primary else ds.replica_key.arn for ds in datasets.values()
        ]
        inference[region] = RegionalInference(
            f"inference-{short}",
            RegionalInferenceArgs(
                region=region,
                vpc_id=network.vpc.id,
                subnet_ids=network.subnet_ids,
                image=cfg.compute.image,
                dns_name=cfg.dns.name,
                hosted_zone_id=zone.zone_id,
                container_port=cfg.compute.container_port,
                cpu=cfg.compute.cpu,
                memory=cfg.compute.memory,
                health_path=cfg.dns.health_path,
                desired_count=cfg.desired_count(region),
                log_retention_days=cfg.compute.log_retention_days,
                read_bucket_arns=[b.bucket.arn for b in here.values()],
                read_key_arns=keys_here,
                model_bucket=here[model.name].bucket.bucket,
                model_prefix=model.prefix,
                tags=tags,
            ),
        )

    dns = FailoverDns(
        "inference-dns",
        FailoverDnsArgs(
            dns_name=cfg.dns.name,
            hosted_zone_id=zone.zone_id,
            endpoints=[
                FailoverEndpoint(
                    region=region,
                    role=FailoverRole.PRIMARY if region == primary else FailoverRole.SECONDARY,
                    dns_name=inference[region].load_balancer.dns_name,
                    zone_id=inference[region].load_balancer.zone_id,
                )
                for region in cfg.regions
            ],
            health_path=cfg.dns.health_path,
            request_interval=cfg.dns.health_check_interval,
            failure_threshold=cfg.dns.failure_threshold,
            tags=tags,
        ),
    )

    if cfg.continuous_backup_days:
        ContinuousBackup(
            "datasets-backup",
            ContinuousBackupArgs(
                region=primary,
                bucket_arns=[ds.primary.bucket.arn for ds in datasets.values()],
                key_arns=[ds.primary_key.arn for ds in datasets.values()],
                operator_role_arn=control.role.arn,
                retention_days=cfg.continuous_backup_days,
                tags=tags,
            ),
        )

    control.grant_runbooks(
        RunbookTargets(
            dataset_bucket_arns=[b.bucket.arn for ds in datasets.values() for b in (ds.primary, ds.replica)],
            dataset_key_arns=[k.arn for ds in datasets.values() for k in (ds.primary_key, ds.replica_key)],
            replication_role_arns=[ds.role.arn for ds in datasets.values()],
            service_arns=[inf.service.id for inf in inference.values()],
            health_check_arns=[check.arn for check in dns.health_checks.values()],
            hosted_zone_arn=zone.arn,
        )
    )

    topology = topology_output(
        cfg,
        StackOutputs(
            regions={
                region: RegionOutputs(
                    ops_bucket=control.ops_buckets[region].bucket.bucket,
                    alert_topic_arn=control.topics[region].arn,
                    endpoint_url=inference[region].endpoint_url,
                    health_check_id=dns.health_checks[region].id,
                    cluster=inference[region].cluster.name,
                    service=inference[region].service.name,
                )
                for region in cfg.regions
            },
            dataset_buckets={
                name: {primary: ds.primary.bucket.bucket, secondary: ds.replica.bucket.bucket}
                for name, ds in datasets.items()
            },
            dataset_keys={
                name: {primary: ds.primary_key.arn, secondary: ds.replica_key.arn}
                for name, ds in datasets.items()
            },
            dataset_roles={name: ds.role.arn for name, ds in datasets.items()},
            hosted_zone_id=zone.zone_id,
            record_name=dns.records[primary].name,
            control_table=control.table.name,
        ),
    )
    return {
        "topology": topology,
        "drOperatorRoleArn": control.role.arn,
        "replicationRoleArns": pulumi.Output.from_input({n: ds.role.arn for n, ds in datasets.items()}),
        "endpoints": pulumi.Output.from_input({r: inf.endpoint_url for r, inf in inference.items()}),
    }


def main() -> None:
    """The Pulumi entrypoint: validate config first, then declare, then export."""
    try:
        cfg = config.from_pulumi()
    except config.ConfigError as exc:
        # RunError: Pulumi prints the message alone, without a Python traceback to dig through.
        raise pulumi.RunError(str(exc)) from None
    for name, value in build(cfg).items():
        pulumi.export(name, value)
