"""Which way replication flows: from the active region to the other one.

After a failover the new active region's buckets replicate back to the old primary (data
written after the switch is protected as soon as the old region returns), and the old
primary's rule is disabled (kept, so infra's declaration of it still matches) so a resync cannot
ping-pong. The new active region refuses replicas (`refuse_replicas`) until replication
into it is wanted again. Failback restores the original direction. When a region cannot be
reached its part is reported as pending, for the next run (failback) to finish.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mldr.cloud import Cloud
from mldr.cloud.aws.replication_rule import build_replication_rule
from mldr.errors import RegionUnreachable
from mldr.topology import Dataset, Topology

log = logging.getLogger(__name__)


def dataset_configuration(dataset: Dataset, *, source: str, target: str) -> dict[str, Any]:
    """The dataset's replication configuration source -> target, as infra/ declares it.

    Everything comes from the topology's `datasets[].replication` (infra's export): the rule id
    its alarms watch, the role S3 assumes, and the destination region's key - with it the rule
    selects SSE-KMS objects and encrypts their replicas, without it S3 would silently replicate
    none of a dataset bucket's (SSE-KMS) objects.
    """
    here, there = dataset.replication[source], dataset.replication[target]
    rule = build_replication_rule(
        dataset=dataset.name,
        prefix=dataset.prefix,
        source_region=source,
        destination_region=target,
        destination_bucket=dataset.buckets[target],
        replica_kms_key_arn=there.kms_key_arn,
        rule_id=here.rule_id,
    )
    return {"Role": here.role_arn, "Rules": [rule]}


def _any_enabled(configuration: Mapping[str, Any]) -> bool:
    return any(rule.get("Status") == "Enabled" for rule in configuration.get("Rules", []))


def _disabled(dataset: Dataset, source: str, target: str) -> dict[str, Any]:
    """The other direction's configuration (target -> source), kept but disabled.

    Disabled, not deleted: infra declares that configuration (with `ignore_changes` on its rules),
    and a deleted one would be created again, enabled, by a `pulumi up --refresh` while failed
    over - replicating the old primary into the active region."""
    config = dataset_configuration(dataset, source=target, target=source)
    return {**config, "Rules": [{**rule, "Status": "Disabled"} for rule in config["Rules"]]}


def set_direction(cloud: Cloud, topology: Topology, *, source: str, target: str) -> dict[str, Any]:
    """Make every dataset replicate source -> target; returns what was done and what is pending."""
    from mldr.checks.health import s3_reachable

    done: list[str] = []
    pending: list[str] = []
    # One quick probe per region: a region that is down is skipped at once, not per bucket.
    reachable = {r: s3_reachable(cloud, topology, r, recheck=False) for r in (source, target)}
    for dataset in topology.datasets:
        src_bucket, dst_bucket = dataset.buckets[source], dataset.buckets[target]
        enable = f"enable {src_bucket} -> {dst_bucket}"
        pause = f"disable {dst_bucket} -> {src_bucket}"
        if reachable[source][0]:
            wanted = dataset_configuration(dataset, source=source, target=target)
            src_store = cloud.objects(source)
            try:
                if src_store.replication(src_bucket) != wanted:
                    src_store.set_replication(src_bucket, wanted)
                    done.append(enable)
            except RegionUnreachable as exc:
                pending.append(f"{enable}: {exc}")
        else:
            pending.append(f"{enable}: {source} unreachable ({reachable[source][1]})")
        if reachable[target][0]:
            dst_store = cloud.objects(target)
            try:
                # The region replicated into takes replicas again (a failover's guard comes off).
                if dst_store.accept_replicas(dst_bucket):
                    done.append(f"{dst_bucket} accepts replicas again")
                current = dst_store.replication(dst_bucket)
                if current is not None and _any_enabled(current):
                    dst_store.set_replication(dst_bucket, _disabled(dataset, source, target))
                    done.append(pause)
            except RegionUnreachable as exc:
                pending.append(f"{pause}: {exc}")
        else:
            pending.append(f"{pause}: {target} unreachable ({reachable[target][1]})")
    if done:
        log.info("replication now %s -> %s: %s", source, target, "; ".join(done))
    for item in pending:
        log.warning("replication change pending (region unreachable): %s", item)
    return {"direction": f"{source} -> {target}", "changed": done, "pending": pending}


def refuse_replicas(cloud: Cloud, topology: Topology, region: str) -> list[str]:
    """Make every dataset bucket of `region` (the active one) refuse replicated writes.

    After a failover the old primary can come back with its outgoing rule still enabled: what
    it held (or takes, until it is fenced) would replicate in and silently become the current
    version over what clients wrote here since. Refused at this end, that needs nothing from the
    old primary; what it had is reconciled by the failback's resync instead, where a conflict
    is seen. Lifted by `set_direction` when replication into `region` is wanted again."""
    store = cloud.objects(region)
    return [d.buckets[region] for d in topology.datasets if store.refuse_replicas(d.buckets[region])]


def direction_of(cloud: Cloud, topology: Topology, dataset_name: str) -> list[str]:
    """Read-only: the regions whose bucket of this dataset has an enabled rule."""
    dataset = topology.dataset(dataset_name)
    sources = []
    for region, bucket in dataset.buckets.items():
        config = cloud.objects(region).replication(bucket)
        if config and any(r.get("Status") == "Enabled" for r in config.get("Rules", [])):
            sources.append(region)
    return sources
