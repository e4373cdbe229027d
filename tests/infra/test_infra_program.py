"""The Pulumi program under mocks, for the default and a warm-standby config.

Every assertion message names the resource's URN, so a failure points at what to fix.
"""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
from infra_cases import DEFAULT_RAW, IMAGE, Deployed
from infra_mocks import Declared, Deployment, deploy, run_program, start_mocks

from infra import config, program
from infra.components import short_region
from infra.policy import rules
from mldr.actions.replication import dataset_configuration
from mldr.cloud.aws.replication_rule import RTC_MINUTES, build_replication_rule, pulumi_rule_args
from mldr.topology import ControlConsistency, parse_topology

BUCKET = "aws:s3/bucket:Bucket"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
OBJECT_LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
KMS_KEY = "aws:kms/key:Key"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
RECORD = "aws:route53/record:Record"
SERVICE = "aws:ecs/service:Service"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
TABLE = "aws:dynamodb/table:Table"
TABLE_ITEM = "aws:dynamodb/tableItem:TableItem"
TOPIC = "aws:sns/topic:Topic"
#: Global services: their resources have no region.
GLOBAL_PREFIXES = ("aws:iam/", "aws:route53/")


# --- lookups ---------------------------------------------------------------------------


def dataset_buckets(d: Deployment, dataset: str) -> tuple[Declared, Declared]:
    """(primary, replica) buckets of a dataset, found through its ReplicatedBucket component."""
    component = d.one("mldr:index:ReplicatedBucket", dataset)
    buckets = [b for s in d.children(component, "mldr:index:SecureBucket") for b in d.children(s, BUCKET)]
    roles = {b.inputs.get("tags", {}).get("mldr:bucket-role"): b for b in buckets}
    assert set(roles) == {"primary", "replica"} and len(buckets) == 2, (
        f"{component}: expected one primary and one replica bucket, got {[b.urn for b in buckets]}"
    )
    return roles["primary"], roles["replica"]


def attached(d: Deployment, bucket: Declared, typ: str) -> Declared:
    found = d.referencing(bucket, typ)
    assert len(found) == 1, f"{bucket}: expected exactly one {typ} for this bucket, found {len(found)}"
    return found[0]


def key_of(d: Deployment, arn: str) -> Declared:
    found = [k for k in d.of_type(KMS_KEY) if k.outputs.get("arn") == arn]
    assert len(found) == 1, f"no KMS key of this stack has ARN {arn}"
    return found[0]


def failover_records(d: Deployment) -> list[Declared]:
    """The inference name's failover records (not, e.g., the certificates' validation records)."""
    return [r for r in d.of_type(RECORD) if r.inputs.get("failoverRoutingPolicies")]


def policy(resource: Declared, prop: str = "policy") -> dict[str, Any]:
    return json.loads(resource.inputs[prop])


def policy_resources(document: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for statement in document["Statement"]:
        resources = statement["Resource"]
        out |= {resources} if isinstance(resources, str) else set(resources)
    return out


def policy_actions(document: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for statement in document["Statement"]:
        actions = statement["Action"]
        out |= {actions} if isinstance(actions, str) else set(actions)
    return out


# --- buckets and replication -----------------------------------------------------------


def test_every_dataset_has_versioned_buckets_in_both_regions(deployed: Deployed) -> None:
    d, cfg = deployed.result, deployed.cfg
    for dataset in cfg.datasets:
        primary, replica = dataset_buckets(d, dataset.name)
        assert primary.region == cfg.primary_region, f"{primary}: region {primary.region}"
        assert replica.region == cfg.secondary_region, f"{replica}: region {replica.region}"
        for bucket in (primary, replica):
            versioning = attached(d, bucket, VERSIONING)
            assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled", f"{versioning}"
            assert versioning.region == bucket.region, f"{versioning}: versioning in another region"


def test_replication_rule_targets_replica_with_rtc_metrics_delete_markers_and_replica_key(
    deployed: Deployed,
) -> None:
    d, cfg = deployed.result, deployed.cfg
    for dataset in cfg.datasets:
        primary, replica = dataset_buckets(d, dataset.name)
        replication = attached(d, primary, REPLICATION)
        assert replication.region == cfg.primary_region, f"{replication}: must live with the source bucket"
        assert d.referencing(replica, REPLICATION) == [], f"{replica}: the replica must not replicate (yet)"
        (rule,) = replication.inputs["rules"]
        destination = rule["destination"]
        assert rule["status"] == "Enabled", f"{replication}: rule disabled"
        assert rule["filter"] == {"prefix": dataset.prefix}, f"{replication}: filter {rule['filter']}"
        assert destination["bucket"] == replica.outputs["arn"], (
            f"{replication}: destination is not the replica"
        )
        assert destination["replicationTime"] == {"status": "Enabled", "time": {"minutes": RTC_MINUTES}}, (
            f"{replication}: no Replication Time Control"
        )
        assert destination["metrics"] == {"status": "Enabled", "eventThreshold": {"minutes": RTC_MINUTES}}, (
            f"{replication}: no replication metrics"
        )
        assert rule["deleteMarkerReplication"] == {"status": "Enabled"}, f"{replication}: delete markers"
        assert rule["sourceSelectionCriteria"]["sseKmsEncryptedObjects"] == {"status": "Enabled"}, (
            f"{replication}: SSE-KMS objects would be skipped"
        )
        replica_key = key_of(d, destination["encryptionConfiguration"]["replicaKmsKeyId"])
        assert replica_key.region == cfg.secondary_region, (
            f"{replication}: replica key {replica_key} not in replica region"
        )
        versionings = {attached(d, b, VERSIONING).urn for b in (primary, replica)}
        assert versionings <= set(replication.dependencies), (
            f"{replication}: must depend on both versioning resources {sorted(versionings)}"
        )


def test_the_runbooks_write_infras_rule_in_both_directions(deployed: Deployed) -> None:
    """What failover's protect and failback write, from the exported topology alone, is infra's.

    primary -> secondary (failback's, and what failover disables) must be the declared rule and
    role exactly; secondary -> primary (failover's protect) the builder's rule over the declared
    primary bucket and the key that encrypts it, with the dataset's role. A rule without the
    replica key, or with another id, would stop SSE-KMS replication or orphan the alarms.
    """
    d, cfg = deployed.result, deployed.cfg
    topology = parse_topology(d.outputs["topology"], source=f"topology of {deployed.label}")
    primary_region, secondary_region = cfg.regions
    for dataset in cfg.datasets:
        primary, _ = dataset_buckets(d, dataset.name)
        declared = attached(d, primary, REPLICATION)
        exported = topology.dataset(dataset.name)

        forward = dataset_configuration(exported, source=primary_region, target=secondary_region)
        assert [_pulumi_wire(pulumi_rule_args(r)) for r in forward["Rules"]] == declared.inputs["rules"], (
            f"{declared}: the runbooks would write {forward['Rules']}, "
            f"infra declares {declared.inputs['rules']}"
        )
        assert forward["Role"] == declared.inputs["role"], f"{declared}: role {forward['Role']}"

        primary_key = attached(d, primary, ENCRYPTION).inputs["rules"][0][
            "applyServerSideEncryptionByDefault"
        ]["kmsMasterKeyId"]
        back = dataset_configuration(exported, source=secondary_region, target=primary_region)
        expected_back = build_replication_rule(
            dataset=dataset.name,
            prefix=dataset.prefix,
            source_region=secondary_region,
            destination_region=primary_region,
            destination_bucket=primary.outputs["bucket"],
            replica_kms_key_arn=primary_key,
        )
        assert back == {"Role": declared.inputs["role"], "Rules": [expected_back]}, (
            f"{declared}: after a failover the runbooks would write {back}, not {expected_back}"
        )


def _pulumi_wire(value: Any) -> Any:
    """Provider argument names as the engine records them: `replica_kms_key_id` -> `replicaKmsKeyId`."""
    if isinstance(value, dict):
        return {re.sub(r"_([a-z])", lambda m: m[1].upper(), k): _pulumi_wire(v) for k, v in value.items()}
    return value


def test_every_datasets_declared_rule_is_the_builders_rule(deployed: Deployed) -> None:
    """infra/ declares, for every dataset, exactly the rule the runbooks and the sandbox write.

    The builder's inputs come from the config and from the declared buckets (the replica and the
    key that encrypts it), not from the component's code, so a rule infra/ edits by hand shows.
    """
    d, cfg = deployed.result, deployed.cfg
    for dataset in cfg.datasets:
        primary, replica = dataset_buckets(d, dataset.name)
        replication = attached(d, primary, REPLICATION)
        replica_key = attached(d, replica, ENCRYPTION).inputs["rules"][0][
            "applyServerSideEncryptionByDefault"
        ]["kmsMasterKeyId"]
        expected = build_replication_rule(
            dataset=dataset.name,
            prefix=dataset.prefix,
            source_region=cfg.primary_region,
            destination_region=cfg.secondary_region,
            destination_bucket=replica.outputs["bucket"],
            replica_kms_key_arn=replica_key,
        )
        assert replication.inputs["rules"] == [_pulumi_wire(pulumi_rule_args(expected))], (
            f"{replication}: declared rules {replication.inputs['rules']} are not the builder's {expected}"
        )
        component = d.one("mldr:index:ReplicatedBucket", dataset.name)
        for alarm in d.children(component, ALARM):
            watched = alarm.inputs["dimensions"]["RuleId"]
            assert watched == expected["ID"], (
                f"{alarm}: watches rule {watched}, the bucket has {expected['ID']}"
            )


def test_replication_role_policy_names_exactly_the_buckets_and_keys(deployed: Deployed) -> None:
    d, cfg = deployed.result, deployed.cfg
    for dataset in cfg.datasets:
        primary, replica = dataset_buckets(d, dataset.name)
        replication = attached(d, primary, REPLICATION)
        (role,) = [r for r in d.of_type(ROLE) if r.outputs["arn"] == replication.inputs["role"]]
        (role_policy,) = d.referencing(role, ROLE_POLICY, "role")
        document = policy(role_policy)
        keys = {
            attached(d, b, ENCRYPTION).inputs["rules"][0]["applyServerSideEncryptionByDefault"][
                "kmsMasterKeyId"
            ]
            for b in (primary, replica)
        }
        expected = {
            primary.outputs["arn"],
            replica.outputs["arn"],
            *(f"{b.outputs['arn']}/*" for b in (primary, replica)),
            *keys,
        }
        assert policy_resources(document) == expected, (
            f"{role_policy}: resources {sorted(policy_resources(document))} != {sorted(expected)}"
        )
        actions = policy_actions(document)
        for needed in (
            "s3:GetReplicationConfiguration",
            "s3:GetObjectVersionForReplication",
            "s3:ReplicateObject",
            "s3:ReplicateDelete",
            "kms:Decrypt",
            "kms:Encrypt",
        ):
            assert needed in actions, f"{role_policy}: missing {needed}"
        if dataset.object_lock_days:
            assert {"s3:GetObjectRetention", "s3:GetObjectLegalHold"} <= actions, (
                f"{role_policy}: Object Lock reads"
            )
        assert role_policy.urn in replication.dependencies, f"{replication}: must wait for the role's policy"
        assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
            "Service": "s3.amazonaws.com"
        }


def test_every_bucket_is_tls_only_private_and_encrypted(deployed: Deployed) -> None:
    d, cfg = deployed.result, deployed.cfg
    buckets = d.of_type(BUCKET)
    assert len(buckets) == 2 * len(cfg.datasets) + 2, (
        f"expected dataset pairs and two ops buckets, got {len(buckets)}"
    )
    for bucket in buckets:
        block = attached(d, bucket, PUBLIC_ACCESS_BLOCK)
        for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
            assert block.inputs.get(flag) is True, f"{block}: {flag} is not true"
        (statement,) = policy(attached(d, bucket, BUCKET_POLICY))["Statement"]
        assert statement["Effect"] == "Deny" and statement["Principal"] == "*", f"{bucket}: TLS statement"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, f"{bucket}: not TLS-only"
        assert set(statement["Resource"]) == {bucket.outputs["arn"], bucket.outputs["arn"] + "/*"}, (
            f"{bucket}"
        )
        (rule,) = attached(d, bucket, ENCRYPTION).inputs["rules"]
        by_default = rule["applyServerSideEncryptionByDefault"]
        if bucket.inputs["tags"]["mldr:bucket-role"] == "ops":
            assert by_default == {"sseAlgorithm": "AES256"}, f"{bucket}: ops buckets use SSE-S3"
        else:
            assert by_default["sseAlgorithm"] == "aws:kms", f"{bucket}: datasets use SSE-KMS"
            key = key_of(d, by_default["kmsMasterKeyId"])
            assert key.region == bucket.region, f"{bucket}: encrypted with {key} from another region"
            assert key.inputs["enableKeyRotation"] is True, f"{key}: rotation off"


def test_lifecycle_keeps_noncurrent_versions_for_the_configured_retention(deployed: Deployed) -> None:
    d, cfg = deployed.result, deployed.cfg
    for dataset in cfg.datasets:
        for bucket in dataset_buckets(d, dataset.name):
            lifecycle = attached(d, bucket, LIFECYCLE)
            rules = {r["id"]: r for r in lifecycle.inputs["rules"]}
            assert set(rules) == {"noncurrent-versions", "mldr-scratch"}, f"{lifecycle}: {sorted(rules)}"
            expiration = rules["noncurrent-versions"]["noncurrentVersionExpiration"]
            assert expiration["noncurrentDays"] == dataset.noncurrent_days, f"{lifecycle}: {expiration}"
            assert expiration.get("newerNoncurrentVersions", 0) == dataset.min_versions - 1, f"{lifecycle}"
            # the canaries the DR role deletes with markers only (it may not destroy history)
            scratch = rules["mldr-scratch"]
            assert scratch["filter"]["prefix"] == f"{dataset.prefix}_mldr/", f"{lifecycle}: {scratch}"
            assert scratch["noncurrentVersionExpiration"]["noncurrentDays"] == 1, f"{lifecycle}: {scratch}"
            assert scratch["expiration"]["expiredObjectDeleteMarker"] is True, f"{lifecycle}: {scratch}"


def test_object_lock_only_where_configured(deployed: Deployed) -> None:
    d, cfg = deployed.result, deployed.cfg
    for dataset in cfg.datasets:
        for bucket in dataset_buckets(d, dataset.name):
            locks = d.referencing(bucket, OBJECT_LOCK)
            if not dataset.object_lock_days:
                assert not locks and not bucket.inputs.get("objectLockEnabled"), (
                    f"{bucket}: unexpected Object Lock"
                )
                continue
            assert bucket.inputs["objectLockEnabled"] is True, f"{bucket}: Object Lock must be on at creation"
            (lock,) = locks
            assert lock.inputs["rule"]["defaultRetention"] == {
                "mode": "COMPLIANCE",
                "days": dataset.object_lock_days,
            }


def test_replication_alarms_go_to_the_primary_regions_topic(deployed: Deployed) -> None:
    d, cfg = deployed.result, deployed.cfg
    (topic,) = [t for t in d.of_type(TOPIC) if t.region == cfg.primary_region]
    for dataset in cfg.datasets:
        component = d.one("mldr:index:ReplicatedBucket", dataset.name)
        alarms = {a.inputs["metricName"]: a for a in d.children(component, ALARM)}
        assert set(alarms) == {"OperationFailedReplication", "ReplicationLatency"}, (
            f"{component}: {sorted(alarms)}"
        )
        primary, replica = dataset_buckets(d, dataset.name)
        for alarm in alarms.values():
            assert alarm.region == cfg.primary_region, (
                f"{alarm}: S3 publishes replication metrics in the source region"
            )
            assert alarm.inputs["alarmActions"] == [topic.outputs["arn"]], f"{alarm}: actions"
            assert alarm.inputs["dimensions"]["SourceBucket"] == primary.outputs["bucket"], f"{alarm}"
            assert alarm.inputs["dimensions"]["DestinationBucket"] == replica.outputs["bucket"], f"{alarm}"
        assert alarms["ReplicationLatency"].inputs["threshold"] == dataset.rpo_seconds


# --- compute and DNS -------------------------------------------------------------------


def test_compute_in_both_regions_with_configured_capacity(deployed: Deployed) -> None:
    d, cfg = deployed.result, deployed.cfg
    services = {str(s.region): s for s in d.of_type(SERVICE)}
    assert set(services) == set(cfg.regions), f"ECS services in {sorted(services)}"
    expected = {
        cfg.primary_region: cfg.compute.active_capacity,
        cfg.secondary_region: cfg.compute.standby_capacity,
    }
    for region, service in services.items():
        assert service.inputs["desiredCount"] == expected[region], f"{service}: desiredCount"
        assert service.inputs["launchType"] == "FARGATE", f"{service}"
        assert "desiredCount" in service.ignore_changes, (
            f"{service}: `pulumi up` would undo a failover's scaling"
        )
        (balancer,) = service.inputs["loadBalancers"]
        (group,) = [g for g in d.of_type(TARGET_GROUP) if g.outputs["arn"] == balancer["targetGroupArn"]]
        assert group.region == region and group.inputs["healthCheck"]["path"] == cfg.dns.health_path, (
            f"{group}"
        )
    assert {lb.region for lb in d.of_type(LOAD_BALANCER)} == set(cfg.regions)


def test_task_role_reads_only_its_own_regions_buckets(deployed: Deployed) -> None:
    d, cfg = deployed.result, deployed.cfg
    for region in cfg.regions:
        component = d.one("mldr:index:RegionalInference", f"inference-{short_region(region)}")
        (task_policy,) = [p for p in d.children(component, ROLE_POLICY) if p.name.endswith("-task-policy")]
        here = [dataset_buckets(d, ds.name)[0 if region == cfg.primary_region else 1] for ds in cfg.datasets]
        arns = {b.outputs["arn"] for b in here}
        resources = policy_resources(policy(task_policy))
        buckets_named = {r.removesuffix("/*") for r in resources if r.startswith("arn:aws:s3")}
        assert buckets_named == arns, f"{task_policy}: reads {sorted(buckets_named)}, expected {sorted(arns)}"
        for key_arn in (r for r in resources if r.startswith("arn:aws:kms")):
            assert key_of(d, key_arn).region == region, f"{task_policy}: key from another region"
        assert "s3:PutObject" not in policy_actions(policy(task_policy)), f"{task_policy}: read only"


def test_health_checks_and_failover_records(deployed: Deployed) -> None:
    d, cfg = deployed.result, deployed.cfg
    balancers = {lb.region: lb for lb in d.of_type(LOAD_BALANCER)}
    checks = {c.inputs["tags"]["mldr:region"]: c for c in d.of_type(HEALTH_CHECK)}
    assert set(checks) == set(cfg.regions), f"health checks for {sorted(checks)}"
    for region, check in checks.items():
        assert check.inputs["requestInterval"] == cfg.dns.health_check_interval, f"{check}: interval"
        assert check.inputs["failureThreshold"] == cfg.dns.failure_threshold, f"{check}: threshold"
        assert check.inputs["resourcePath"] == cfg.dns.health_path, f"{check}: path"
        assert check.inputs["fqdn"] == balancers[region].outputs["dnsName"], (
            f"{check}: probes another endpoint"
        )
    records = {r.inputs["failoverRoutingPolicies"][0]["type"]: r for r in failover_records(d)}
    assert set(records) == {"PRIMARY", "SECONDARY"}, f"failover records: {sorted(records)}"
    zone = cfg.dns.hosted_zone_id or "Z0MLDRTESTZONE"
    for role, region in (("PRIMARY", cfg.primary_region), ("SECONDARY", cfg.secondary_region)):
        record = records[role]
        assert record.inputs["name"] == cfg.dns.name and record.inputs["type"] == "A", f"{record}"
        assert record.inputs["zoneId"] == zone, f"{record}: zone"
        assert record.inputs["setIdentifier"] == region, f"{record}: set identifier must be the region"
        assert record.inputs["healthCheckId"] == checks[region].id, f"{record}: not gated by {checks[region]}"
        assert "failoverRoutingPolicies" in record.ignore_changes, (
            f"{record}: `pulumi up` would undo a failover"
        )
        (alias,) = record.inputs["aliases"]
        assert alias["name"] == balancers[region].outputs["dnsName"], f"{record}: alias target"
        assert alias["zoneId"] == balancers[region].outputs["zoneId"], f"{record}: alias zone"


def test_clients_get_https_for_the_dns_name_in_each_region(deployed: Deployed) -> None:
    """Each ALB serves HTTPS (TLS 1.2+) with an ACM certificate for dnsName, validated in the zone."""
    d, cfg = deployed.result, deployed.cfg
    zone = cfg.dns.hosted_zone_id or "Z0MLDRTESTZONE"
    certificates = {c.region: c for c in d.of_type("aws:acm/certificate:Certificate")}
    assert set(certificates) == set(cfg.regions), "a certificate in each ALB's region (ACM is regional)"
    validations = [r for r in d.of_type(RECORD) if not r.inputs.get("failoverRoutingPolicies")]
    assert validations and all(r.inputs["zoneId"] == zone for r in validations), "validated in the zone"
    for lb in d.of_type(LOAD_BALANCER):
        listeners = {
            listener.inputs["port"]: listener
            for listener in d.of_type("aws:lb/listener:Listener")
            if listener.inputs["loadBalancerArn"] == lb.outputs["arn"]
        }
        https = listeners[443]
        assert https.inputs["protocol"] == "HTTPS" and "TLS13" in https.inputs["sslPolicy"], f"{https}"
        assert https.inputs["certificateArn"] == certificates[lb.region].outputs["arn"], f"{https}: cert"
        assert certificates[lb.region].inputs["domainName"] == cfg.dns.name
        forward = [a["targetGroupArn"] for a in https.inputs["defaultActions"]]
        assert forward == [a["targetGroupArn"] for a in listeners[80].inputs["defaultActions"]], (
            f"{https}: serves the same tasks as the health-checked HTTP listener"
        )


# --- control plane ---------------------------------------------------------------------


def test_control_state_table_survives_either_region(deployed: Deployed) -> None:
    d, cfg = deployed.result, deployed.cfg
    (table,) = d.of_type(TABLE)
    assert table.region == cfg.primary_region, f"{table}"
    assert [r["regionName"] for r in table.inputs["replicas"]] == [cfg.secondary_region], f"{table}: replica"
    assert table.inputs["billingMode"] == "PAY_PER_REQUEST", f"{table}"
    assert {t.region for t in d.of_type(TOPIC)} == set(cfg.regions)


def test_the_lease_table_is_strongly_consistent_or_written_through_one_replica(deployed: Deployed) -> None:
    """A last-writer-wins global table lets two replicas each accept a compare-and-set of the
    lease. Regions in an MRSC region set get multi-Region strong consistency (a write needs a
    quorum of replicas and witness); others a table the runbooks write through one replica."""
    d, cfg = deployed.result, deployed.cfg
    (table,) = d.of_type(TABLE)
    control = parse_topology(d.outputs["topology"]).control_state
    mrsc_set = [s for s in config.MRSC_REGION_SETS if set(cfg.regions) <= set(s)]
    witness = (table.inputs.get("globalTableWitness") or {}).get("regionName")
    if mrsc_set:
        assert [r.get("consistencyMode") for r in table.inputs["replicas"]] == ["STRONG"], (
            f"{table}: not MRSC"
        )
        assert witness in mrsc_set[0] and witness not in cfg.regions, f"{table}: witness {witness}"
        assert control.consistency is ControlConsistency.STRONG, "the runbooks must know the table is MRSC"
    else:
        assert witness is None and not [
            r.get("consistencyMode") for r in table.inputs["replicas"] if r.get("consistencyMode")
        ]
        assert (control.consistency, control.writer_region) == (
            ControlConsistency.EVENTUAL,
            cfg.secondary_region,
        )


def test_lease_is_seeded_once_in_the_format_the_runbooks_read(deployed: Deployed) -> None:
    d, cfg = deployed.result, deployed.cfg
    (table,) = d.of_type(TABLE)
    (lease,) = d.of_type(TABLE_ITEM)
    assert lease.inputs["tableName"] == table.outputs["name"] and lease.region == cfg.primary_region, (
        f"{lease}"
    )
    # The runbooks' own definition of the seed (a module written alongside this program).
    dynamodb = pytest.importorskip("mldr.cloud.aws.dynamodb")
    expected = dynamodb.initial_lease_item(cfg.primary_region)
    expected.pop("updated_at", None)  # informational; the runbooks tolerate its absence
    assert json.loads(lease.inputs["item"]) == expected, f"{lease}: not what mldr.cloud.aws.dynamodb reads"
    assert "item" in lease.ignore_changes, f"{lease}: `pulumi up` would reset the DR lease"


def test_dr_operator_role_names_only_this_stacks_resources(deployed: Deployed) -> None:
    d, cfg = deployed.result, deployed.cfg
    (role,) = [r for r in d.of_type(ROLE) if r.inputs["tags"].get("mldr:purpose") == "dr-operator"]
    (grant,) = d.referencing(role, ROLE_POLICY, "role")
    document = policy(grant)
    resources = policy_resources(document)
    broad = [r for statement in document["Statement"] for r in rules.broad_resources(statement)]
    assert not broad, f"{grant}: wildcard resources {broad}"
    star = [s for s in document["Statement"] if "*" in s["Resource"]]
    # "*" for exactly the actions that take no resource (the policy pack's list), and nothing else
    star_actions = sorted(a for s in star for a in s["Action"])
    assert star_actions == sorted(rules.STAR_ONLY_ACTIONS), f"{grant}: only what takes no resource"
    (table,) = d.of_type(TABLE)
    assert {table.outputs["arn"], *(r["arn"] for r in table.outputs["replicas"])} <= resources, (
        f"{grant}: table"
    )
    for service in d.of_type(SERVICE):
        assert service.outputs["arn"] in resources, f"{grant}: cannot scale {service}"
    for check in d.of_type(HEALTH_CHECK):
        assert check.outputs["arn"] in resources, f"{grant}: cannot read {check}"
    for bucket in d.of_type(BUCKET):
        assert bucket.outputs["arn"] in resources, f"{grant}: cannot reach {bucket}"
    trusted = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"]["AWS"]
    assert trusted == (list(cfg.airflow_principal_arns) or ["arn:aws:iam::123456789012:root"]), f"{role}"


def test_every_regional_resource_names_its_region(deployed: Deployed) -> None:
    """One provider, explicit `region` everywhere: nothing silently lands in the default region."""
    d, cfg = deployed.result, deployed.cfg
    for resource in d.resources:
        if not resource.type.startswith("aws:") or resource.type.startswith(GLOBAL_PREFIXES):
            continue
        assert resource.region in cfg.regions, f"{resource}: region {resource.region!r} not set explicitly"


# --- outputs and policy ----------------------------------------------------------------


def test_exported_topology_validates_and_names_the_real_resources(deployed: Deployed) -> None:
    d, cfg = deployed.result, deployed.cfg
    topology = parse_topology(d.outputs["topology"], source=f"topology of {deployed.label}")
    assert (topology.primary_region, topology.secondary_region) == cfg.regions
    for dataset in cfg.datasets:
        primary, replica = dataset_buckets(d, dataset.name)
        exported = topology.dataset(dataset.name)
        assert exported.buckets == {
            cfg.primary_region: primary.outputs["bucket"],
            cfg.secondary_region: replica.outputs["bucket"],
        }
        assert exported.rpo_seconds == dataset.rpo_seconds and exported.prefix == dataset.prefix
    checks = {c.inputs["tags"]["mldr:region"]: c for c in d.of_type(HEALTH_CHECK)}
    services = {s.region: s for s in d.of_type(SERVICE)}
    for region in cfg.regions:
        exported_region = topology.region(region)
        assert exported_region.connection_id == cfg.connection_ids[region]
        assert exported_region.health_check_id == checks[region].id
        assert exported_region.compute.service == services[region].outputs["name"]
        assert exported_region.compute.active_capacity == cfg.compute.active_capacity
        assert exported_region.compute.standby_capacity == cfg.compute.standby_capacity
        assert exported_region.endpoint_url.endswith(".elb.amazonaws.com")
    assert topology.inference.dns_name == cfg.dns.name
    assert topology.inference.record_name == cfg.dns.name + "."
    assert topology.control_state.table == d.of_type(TABLE)[0].outputs["name"]
    assert topology.objectives.rto_seconds == cfg.rto_seconds


def test_health_check_ids_in_topology_are_the_health_checks(deployed: Deployed) -> None:
    d, cfg = deployed.result, deployed.cfg
    topology = parse_topology(d.outputs["topology"])
    records = {r.inputs["setIdentifier"]: r for r in failover_records(d)}
    for region in cfg.regions:
        assert records[region].inputs["healthCheckId"] == topology.region(region).health_check_id, (
            f"{records[region]}"
        )


def test_the_stack_passes_its_own_policy_pack(deployed: Deployed) -> None:
    d = deployed.result
    resources = [
        rules.Resource(
            type=r.type, urn=r.urn, props=r.outputs or r.inputs, property_dependencies=r.property_dependencies
        )
        for r in d.resources
    ]
    violations = rules.check_all(resources)
    assert violations == [], "\n".join(map(str, violations))


# --- bad config ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"secondaryRegion": "us-east-1"}, "secondaryRegion: must differ from primaryRegion"),
        ({"computeKind": "lambda"}, "computeKind: 'lambda' is not a known compute kind"),
        ({"dnsName": None}, "dnsName: missing"),
    ],
    ids=["same-region-twice", "unknown-compute-kind", "missing-dns-name"],
)
def test_bad_config_fails_with_a_clear_message_before_any_resource(
    override: dict[str, Any], expected: str
) -> None:
    raw = {**DEFAULT_RAW, **override}
    monitor = start_mocks()
    pulumi.runtime.set_all_config({f"mldr:{k}": str(v) for k, v in raw.items() if v is not None})
    try:
        with pytest.raises(pulumi.RunError) as failure:
            run_program(program.main)
    finally:
        pulumi.runtime.set_all_config({})
    assert expected in str(failure.value)
    assert "nothing was deployed" in str(failure.value)
    assert monitor.declared == {}, f"declared before config was validated: {sorted(monitor.declared)}"


def test_stack_config_strings_reach_the_program() -> None:
    """`pulumi config` hands every value over as a string; the program reads them like `load()`."""
    pulumi.runtime.set_all_config(
        {
            "mldr:dnsName": "inference.example.com",
            "mldr:image": IMAGE,
            "mldr:standbyCapacity": "1",
            "mldr:datasets": json.dumps([{"name": "models", "kind": "model_artifacts", "rpoSeconds": 60}]),
        }
    )
    try:
        deployment = deploy(lambda: program.build(config.from_pulumi()))
    finally:
        pulumi.runtime.set_all_config({})
    topology = parse_topology(deployment.outputs["topology"])
    assert topology.name == "mldr-test"
    assert topology.region("us-west-2").compute.standby_capacity == 1
    assert [d.name for d in topology.datasets] == ["models"] and topology.datasets[0].rpo_seconds == 60


def test_misspelt_config_key_is_refused() -> None:
    start_mocks()
    pulumi.runtime.set_all_config({"mldr:dnsName": "inference.example.com", "mldr:standbyCapcity": "1"})
    try:
        with pytest.raises(pulumi.RunError, match="standbyCapcity: unknown config key"):
            run_program(program.main)
    finally:
        pulumi.runtime.set_all_config({})


def test_entrypoint_runs_as_pulumi_runs_it() -> None:
    """`pulumi up` executes infra/ as a directory (runpy), not as the `infra` package."""
    infra_dir = Path(program.__file__).resolve().parent
    monitor = start_mocks()
    pulumi.runtime.set_all_config({"mldr:dnsName": "inference.example.com", "mldr:image": IMAGE})
    try:

        def entrypoint() -> None:
            runpy.run_path(str(infra_dir), run_name="__main__")

        run_program(entrypoint)
    finally:
        pulumi.runtime.set_all_config({})
    types = {r.type for r in monitor.declared.values()}
    assert {"mldr:index:ReplicatedBucket", "mldr:index:FailoverDns", "mldr:index:ControlPlane"} <= types


def test_tasks_run_the_configured_image_with_what_its_entrypoint_reads(deployed: Deployed) -> None:
    """The image from docker/inference.Dockerfile reads these variables; the task sets each."""
    from mldr.sandbox import inference_container as container

    for task in deployed.result.of_type("aws:ecs/taskDefinition:TaskDefinition"):
        (definition,) = json.loads(task.inputs["containerDefinitions"])
        assert definition["image"] == deployed.cfg.compute.image == IMAGE
        env = {e["name"]: e["value"] for e in definition["environment"]}
        assert {container.REGION, container.MODEL_BUCKET, container.MODEL_PREFIX, container.PORT} <= set(env)
        assert env[container.PORT] == str(definition["portMappings"][0]["containerPort"])


def test_what_holds_data_is_protected_and_what_runbooks_change_is_theirs(deployed: Deployed) -> None:
    """`pulumi destroy` or a rename must not delete a dataset bucket, its keys or the control table;
    a `pulumi up --refresh` mid-incident must not lift a write fence or turn replication back."""
    d = deployed.result
    for resource in [*d.of_type(BUCKET), *d.of_type(KMS_KEY), *d.of_type(TABLE)]:
        assert resource.protect, f"{resource}: holds data (or the key to it) but is not protected"
    for policy in d.of_type(BUCKET_POLICY):
        assert "policy" in policy.ignore_changes, (
            f"{policy}: `pulumi up` would lift the runbooks' write fence"
        )
    for replication in d.of_type(REPLICATION):
        assert {"rules", "role"} <= set(replication.ignore_changes), (
            f"{replication}: `pulumi up` would rewrite the replication direction the runbooks set"
        )
