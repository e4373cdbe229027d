"""The `topology` stack output: the document the DR runbooks read, built from real resource outputs.

Its shape is `mldr.topology.Topology` (version `SCHEMA_VERSION`); `tests/infra` validates the exported value
with mldr's own loader. `topology_output()` wires the Outputs; `topology_document()` is the
pure assembly, once every value is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from infra.config import InfraConfig
from mldr.cloud.aws.replication_rule import replication_rule_id
from mldr.topology import SCHEMA_VERSION


@dataclass(frozen=True)
class RegionOutputs:
    """What one region contributes to the document (Outputs before resolution, strings after)."""

    ops_bucket: Any
    alert_topic_arn: Any
    endpoint_url: Any
    health_check_id: Any
    cluster: Any
    service: Any


@dataclass(frozen=True)
class StackOutputs:
    regions: Mapping[str, RegionOutputs]
    #: dataset name -> region -> bucket name
    dataset_buckets: Mapping[str, Mapping[str, Any]]
    #: dataset name -> region -> ARN of the KMS key the region's bucket encrypts with
    dataset_keys: Mapping[str, Mapping[str, Any]]
    #: dataset name -> ARN of its replication role (one per dataset, for both directions)
    dataset_roles: Mapping[str, Any]
    hosted_zone_id: Any
    record_name: Any
    control_table: Any


def topology_document(cfg: InfraConfig, resolved: StackOutputs) -> dict[str, Any]:
    """Assemble the document from resolved (plain) values."""
    primary, secondary = cfg.regions
    return {
        "version": SCHEMA_VERSION,
        "name": cfg.name,
        "primary_region": primary,
        "secondary_region": secondary,
        "regions": {
            region: {
                "connection_id": cfg.connection_ids[region],
                "ops_bucket": out.ops_bucket,
                "alert_topic_arn": out.alert_topic_arn,
                "endpoint_url": out.endpoint_url,
                "health_check_id": out.health_check_id,
                "compute": {
                    "kind": cfg.compute.kind,
                    "cluster": out.cluster,
                    "service": out.service,
                    "active_capacity": cfg.compute.active_capacity,
                    "standby_capacity": cfg.compute.standby_capacity,
                },
            }
            for region, out in resolved.regions.items()
        },
        "datasets": [
            {
                "name": d.name,
                "kind": d.kind,
                "buckets": dict(resolved.dataset_buckets[d.name]),
                "prefix": d.prefix,
                "rpo_seconds": d.rpo_seconds,
                "retention": {
                    "noncurrent_days": d.noncurrent_days,
                    "min_versions": d.min_versions,
                    "object_lock_days": d.object_lock_days,
                },
                # What the runbooks need to write infra's rule in either direction: the rule id
                # the alarms watch, the role, and each region's key (the other's replica key).
                "replication": {
                    region: {
                        "kms_key_arn": resolved.dataset_keys[d.name][region],
                        "role_arn": resolved.dataset_roles[d.name],
                        "rule_id": replication_rule_id(
                            dataset=d.name, destination_region=secondary if region == primary else primary
                        ),
                    }
                    for region in (primary, secondary)
                },
            }
            for d in cfg.datasets
        ],
        "inference": {
            "dns_name": cfg.dns.name,
            "hosted_zone_id": resolved.hosted_zone_id,
            # Route 53 hands record names back fully qualified; the runbooks compare them that way.
            "record_name": str(resolved.record_name).rstrip(".") + ".",
            "route53_connection_id": cfg.route53_connection_id,
            "health_path": cfg.dns.health_path,
        },
        "control_state": {
            "kind": "dynamodb",
            "table": resolved.control_table,
            # Primary first: the runbooks try replicas in order until one answers.
            "replicas": [{"region": r, "connection_id": cfg.connection_ids[r]} for r in (primary, secondary)],
            # Multi-Region strong consistency (components/control_plane.py): any replica takes
            # writes. Else last-writer-wins: one write replica, the secondary's - every lease
            # change needs the secondary anyway (a failover moves to it, a failback reads it).
            **(
                {"consistency": "strong"}
                if cfg.control_strongly_consistent
                else {"consistency": "eventual", "write_region": secondary}
            ),
        },
        "objectives": {"rto_seconds": cfg.rto_seconds, "rpo_seconds": cfg.rpo_seconds},
        # only when the stack sets it: the runbooks' default (off) needs no section
        **({"autopilot": dict(cfg.autopilot)} if cfg.autopilot is not None else {}),
    }


def topology_output(cfg: InfraConfig, outputs: StackOutputs) -> pulumi.Output[dict[str, Any]]:
    """The document as an Output, resolved once every resource it names exists."""
    flat: dict[str, Any] = {
        "hosted_zone_id": outputs.hosted_zone_id,
        "record_name": outputs.record_name,
        "control_table": outputs.control_table,
    }
    fields = ("ops_bucket", "alert_topic_arn", "endpoint_url", "health_check_id", "cluster", "service")
    for region, out in outputs.regions.items():
        for f in fields:
            flat[f"region/{region}/{f}"] = getattr(out, f)
    for dataset, buckets in outputs.dataset_buckets.items():
        for region, bucket in buckets.items():
            flat[f"bucket/{dataset}/{region}"] = bucket
            flat[f"key/{dataset}/{region}"] = outputs.dataset_keys[dataset][region]
        flat[f"role/{dataset}"] = outputs.dataset_roles[dataset]

    def assemble(values: dict[str, Any]) -> dict[str, Any]:
        resolved = StackOutputs(
            regions={
                region: RegionOutputs(**{f: values[f"region/{region}/{f}"] for f in fields})
                for region in outputs.regions
            },
            dataset_buckets={
                dataset: {region: values[f"bucket/{dataset}/{region}"] for region in buckets}
                for dataset, buckets in outputs.dataset_buckets.items()
            },
            dataset_keys={
                dataset: {region: values[f"key/{dataset}/{region}"] for region in buckets}
                for dataset, buckets in outputs.dataset_buckets.items()
            },
            dataset_roles={dataset: values[f"role/{dataset}"] for dataset in outputs.dataset_buckets},
            hosted_zone_id=values["hosted_zone_id"],
            record_name=values["record_name"],
            control_table=values["control_table"],
        )
        return topology_document(cfg, resolved)

    return pulumi.Output.all(**flat).apply(assemble)
