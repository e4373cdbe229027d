"""Provision the sandbox's resources through the AWS APIs, as `infra/` does in a real account.

What infra/ declares for the sandbox's stack is applied as declared
(`mldr.sandbox.declared_resources`): each dataset's KMS keys (a key per dataset and region),
every bucket setting (versioning, default SSE-KMS, public access block, lifecycle, object lock,
the replication rule primary -> secondary) and the replication roles with their policies - the
declared names mapped onto the sandbox's. The sandbox's own stand-ins, named here: the buckets'
and table's names, SNS topics, ECS compute records, the Route 53 zone with a health check per
region and PRIMARY/SECONDARY failover records, and the DR control-state table (README's sandbox
table says which are not the program's yet). Returns the topology document describing all of it.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from mldr.cloud.aws.replication_rule import replication_rule_id
from mldr.sandbox import declared_resources
from mldr.sandbox.capacity import SCALE_UP_TAG
from mldr.sandbox.declared import name_map, snapshot
from mldr.sandbox.declared_resources import BUCKET
from mldr.sandbox.iam import ADMIN_KEYS, OPERATOR, POLICY_NAME, Principal, replication_principal
from mldr.topology import SCHEMA_VERSION, Topology, parse_topology

ACCOUNT_ID = "123456789012"
#: The datasets infra/ declares for the sandbox's stack (`infra/Pulumi.sandbox.yaml`), by name.
DECLARED_DATASETS: dict[str, dict[str, Any]] = {d["name"]: d for d in snapshot()["topology"]["datasets"]}
#: name, kind, rpo_seconds
DATASETS: tuple[tuple[str, str, int], ...] = tuple(
    (d["name"], d["kind"], int(d["rpo_seconds"])) for d in DECLARED_DATASETS.values()
)
ZONE_NAME = "mldr.sandbox"
DNS_NAME = f"inference.{ZONE_NAME}"
CONTROL_TABLE = "mldr-control"
CLUSTER = "mldr-inference"
SERVICE = "inference"
GLOBAL_CONNECTION = "mldr_sandbox_global"
PROBE_INTERVAL_TAG = "mldr:probe-interval-seconds"


def replication_role_name(dataset: str) -> str:
    """infra/ makes one replication role per dataset (its policy names that dataset's buckets)."""
    return f"mldr-replication-{dataset}"


def replication_role_arn(dataset: str) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:role/{replication_role_name(dataset)}"


@dataclass(frozen=True)
class SandboxLayout:
    """Where the sandbox's processes listen; decided before provisioning."""

    primary: str
    secondary: str
    moto: dict[str, str]  # region (and "global") -> endpoint
    inference_ports: dict[str, int]
    edge_url: str
    replicator_url: str
    probe_interval_seconds: float = 1.0
    failure_threshold: int = 3
    active_capacity: int = 2
    #: 0 = pilot light: the standby answers nothing until a failover scales it up.
    standby_capacity: int = 1
    #: How long new tasks take to serve after a scale-up from 0 (the ECS service's tag).
    scale_up_seconds: float = 0.0

    @property
    def regions(self) -> list[str]:
        return [self.primary, self.secondary]

    def other(self, region: str) -> str:
        return self.secondary if region == self.primary else self.primary


def connection_id(region: str) -> str:
    return f"mldr_sandbox_{region.replace('-', '_')}"


def bucket_name(dataset: str, region: str) -> str:
    return f"mldr-{dataset}-{region}"


def ops_bucket_name(region: str) -> str:
    return f"mldr-ops-{region}"


def client(service: str, endpoint: str, region: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name=region,
        # the admin's: provisioning is what `pulumi up` does, not the runbooks
        aws_access_key_id=ADMIN_KEYS[0],
        aws_secret_access_key=ADMIN_KEYS[1],
        config=Config(
            connect_timeout=2, read_timeout=10, retries={"mode": "standard"}, s3={"addressing_style": "path"}
        ),
    )


def _declared_regions(layout: SandboxLayout) -> dict[str, str]:
    """The declared stack's regions -> the sandbox's (`mldr sandbox up` may choose others)."""
    declared = snapshot()["topology"]
    return {declared["primary_region"]: layout.primary, declared["secondary_region"]: layout.secondary}


def _declared_buckets(layout: SandboxLayout) -> dict[str, str]:
    """Each sandbox bucket's name -> the name infra/ declares for it."""
    declared = snapshot()["topology"]
    regions = {here: there for there, here in _declared_regions(layout).items()}
    names = {ops_bucket_name(r): declared["regions"][regions[r]]["ops_bucket"] for r in layout.regions}
    for dataset in declared["datasets"]:
        for region in layout.regions:
            names[bucket_name(dataset["name"], region)] = dataset["buckets"][regions[region]]
    return names


def _create_bucket(s3: Any, name: str, region: str, declared: dict[str, Any]) -> None:
    """The bucket alone (its settings follow, as declared): Object Lock is set at creation."""
    kwargs: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    if declared.get("objectLockEnabled"):
        kwargs["ObjectLockEnabledForBucket"] = True
    s3.create_bucket(**kwargs)


def _provision_region(layout: SandboxLayout, region: str) -> dict[str, Any]:
    endpoint = layout.moto[region]
    s3 = client("s3", endpoint, region)
    kms = client("kms", endpoint, region)
    declared_keys = declared_resources.dataset_keys(_declared_regions(layout))
    declared_buckets = {b.outputs.get("bucket"): b.inputs for b in declared_resources.resources(BUCKET)}
    names = _declared_buckets(layout)
    keys: dict[str, str] = {}
    for dataset, _, _ in DATASETS:
        # A key per dataset and region: a KMS key never leaves its region, and the replica must
        # stay readable when the other region (and its key) is gone.
        if (dataset, region) not in declared_keys:
            raise RuntimeError(
                f"infra/ declares no KMS key for dataset {dataset} in {region}: refresh the sandbox's "
                "declarations with `uv run python -m infra.under_mocks`"
            )
        keys[dataset] = declared_resources.create_key(kms, declared_keys[(dataset, region)])
    for bucket in [*(bucket_name(d, region) for d, _, _ in DATASETS), ops_bucket_name(region)]:
        _create_bucket(s3, bucket, region, declared_buckets.get(names[bucket], {}))
    topic_arn = client("sns", endpoint, region).create_topic(Name="mldr-alerts")["TopicArn"]
    ecs = client("ecs", endpoint, region)
    ecs.create_cluster(clusterName=CLUSTER)
    ecs.register_task_definition(
        family="mldr-inference",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "inference", "image": "mldr/inference:sandbox", "essential": True}],
    )
    active = region == layout.primary
    ecs.create_service(
        cluster=CLUSTER,
        serviceName=SERVICE,
        taskDefinition="mldr-inference",
        desiredCount=layout.active_capacity if active else layout.standby_capacity,
        launchType="FARGATE",
        tags=[{"key": SCALE_UP_TAG, "value": f"{layout.scale_up_seconds:g}"}],
    )
    return {"topic_arn": topic_arn, "kms_keys": keys}


def _apply_declared(layout: SandboxLayout, topology: Topology) -> None:
    """The replication roles with their policies, and every bucket setting, as infra/ declares
    them (names mapped onto the sandbox's): the replication rules are the program's, which the
    runbooks' builder also writes (`cloud/aws/replication_rule.py`)."""
    names = name_map(snapshot()["topology"], json.loads(topology.to_json()))
    iam = client("iam", layout.moto["global"], "us-east-1")
    for role_name, declared_name, role in declared_resources.replication_roles(names):
        iam.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument=json.dumps(role["assume"]),
            Description=f"infra/'s {declared_name}",
        )
        for policy_name, policy in role["policies"].items():
            iam.put_role_policy(RoleName=role_name, PolicyName=policy_name, PolicyDocument=json.dumps(policy))
    settings = declared_resources.bucket_settings(names, _declared_regions(layout))

    def apply(region: str) -> None:
        s3 = client("s3", layout.moto[region], region)
        for setting in settings:
            if setting.region == region:
                declared_resources.apply_bucket_setting(s3, setting)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for done in [pool.submit(apply, region) for region in layout.regions]:
            done.result()


def _provision_dns(layout: SandboxLayout) -> dict[str, Any]:
    r53 = client("route53", layout.moto["global"], "us-east-1")
    zone_id = r53.create_hosted_zone(Name=ZONE_NAME, CallerReference=f"mldr-{time.time()}")["HostedZone"][
        "Id"
    ]
    zone_id = zone_id.split("/")[-1]
    health_checks: dict[str, str] = {}
    changes = []
    for region in layout.regions:
        check = r53.create_health_check(
            CallerReference=f"mldr-{region}-{time.time()}",
            HealthCheckConfig={
                "IPAddress": "127.0.0.1",
                "Port": layout.inference_ports[region],
                "Type": "HTTP",
                "ResourcePath": "/healthz",
                # The API allows 10 or 30 s; the sandbox probes faster, per the tag below.
                "RequestInterval": 10,
                "FailureThreshold": layout.failure_threshold,
            },
        )["HealthCheck"]["Id"]
        r53.change_tags_for_resource(
            ResourceType="healthcheck",
            ResourceId=check,
            AddTags=[
                {"Key": PROBE_INTERVAL_TAG, "Value": str(layout.probe_interval_seconds)},
                {"Key": "Name", "Value": f"mldr-inference-{region}"},
            ],
        )
        health_checks[region] = check
        changes.append(
            {
                "Action": "UPSERT",
                "ResourceRecordSet": {
                    "Name": f"{DNS_NAME}.",
                    "Type": "A",
                    "SetIdentifier": region,
                    "Failover": "PRIMARY" if region == layout.primary else "SECONDARY",
                    "TTL": 1,
                    "HealthCheckId": check,
                    # Each region's stand-in load balancer address: what Route 53's TestDNSAnswer
                    # (the edge) answers, so the switch is confirmed against addresses as in AWS.
                    # Traffic goes to the health check's target; nothing connects here.
                    "ResourceRecords": [{"Value": load_balancer_address(layout.regions.index(region))}],
                },
            }
        )
    r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    return {"zone_id": zone_id, "health_checks": health_checks}


def load_balancer_address(index: int) -> str:
    """A documentation address (RFC 5737 TEST-NET-1) per region: distinct, never routed."""
    return f"192.0.2.{index + 1}"


def _provision_control_state(layout: SandboxLayout) -> None:
    """The table's two replicas: one per region on the global server (so they survive a region's
    outage), copied last-writer-wins by the replicator (`mldr.sandbox.control_replicas`); its
    schema and initial lease as infra/ declares them."""
    schema, lease = declared_resources.control_table(_declared_regions(layout))
    for region in layout.regions:
        ddb = client("dynamodb", layout.moto["global"], region)
        ddb.create_table(TableName=CONTROL_TABLE, **schema)
        ddb.put_item(TableName=CONTROL_TABLE, Item=lease)


def topology_document(layout: SandboxLayout, regions: dict[str, Any], dns: dict[str, Any]) -> dict[str, Any]:
    region_docs = {}
    for region in layout.regions:
        region_docs[region] = {
            "connection_id": connection_id(region),
            "ops_bucket": ops_bucket_name(region),
            "alert_topic_arn": regions[region]["topic_arn"],
            "endpoint_url": f"http://127.0.0.1:{layout.inference_ports[region]}",
            "health_check_id": dns["health_checks"][region],
            "compute": {
                "kind": "ecs",
                "cluster": CLUSTER,
                "service": SERVICE,
                "active_capacity": layout.active_capacity,
                "standby_capacity": layout.standby_capacity,
            },
        }
    return {
        "version": SCHEMA_VERSION,
        "name": "sandbox",
        "primary_region": layout.primary,
        "secondary_region": layout.secondary,
        "regions": region_docs,
        "datasets": [
            {
                "name": name,
                "kind": kind,
                "buckets": {r: bucket_name(name, r) for r in layout.regions},
                "prefix": DECLARED_DATASETS[name]["prefix"],
                "rpo_seconds": rpo,
                "retention": DECLARED_DATASETS[name]["retention"],
                "replication": {
                    r: {
                        "kms_key_arn": regions[r]["kms_keys"][name],
                        "role_arn": replication_role_arn(name),
                        "rule_id": replication_rule_id(dataset=name, destination_region=layout.other(r)),
                    }
                    for r in layout.regions
                },
            }
            for name, kind, rpo in DATASETS
        ],
        "inference": {
            "dns_name": DNS_NAME,
            "hosted_zone_id": dns["zone_id"],
            "record_name": f"{DNS_NAME}.",
            "route53_connection_id": GLOBAL_CONNECTION,
            "health_path": "/healthz",
            "url": layout.edge_url,
        },
        "control_state": {
            "table": CONTROL_TABLE,
            # The sandbox keeps control state on the global server, so it survives either
            # region's outage: a replica per region, copied last-writer-wins like a global table
            # without strong consistency, so lease writes go to one write replica only - the
            # secondary's, as infra/ chooses for such a table.
            "replicas": [{"region": r, "connection_id": GLOBAL_CONNECTION} for r in layout.regions],
            "consistency": "eventual",
            "write_region": layout.secondary,
        },
        "objectives": snapshot()["topology"]["objectives"],
        "sandbox": {"edge_url": layout.edge_url, "replicator_url": layout.replicator_url},
    }


def provision(layout: SandboxLayout) -> Topology:
    # Each moto server loads a service's backend on first use (about a second each), so the
    # regions and the global server are provisioned side by side.
    with ThreadPoolExecutor(max_workers=3) as pool:
        region_jobs = {region: pool.submit(_provision_region, layout, region) for region in layout.regions}

        def global_services() -> dict[str, Any]:
            dns = _provision_dns(layout)
            _provision_control_state(layout)
            return dns

        dns_job = pool.submit(global_services)
        regions = {region: job.result() for region, job in region_jobs.items()}
        dns = dns_job.result()
    topology = parse_topology(topology_document(layout, regions, dns), source="sandbox topology")
    _apply_declared(layout, topology)
    return topology


def grant_principals(layout: SandboxLayout, topology: Topology, principals: dict[str, Principal]) -> None:
    """Give the DR operator and each replication role's principal their policies as infra/
    declares them, on every moto server (each has its own IAM), now that what they name exists."""
    from mldr.sandbox.declared import operator_policy, replication_policy

    document = json.loads(topology.to_json())
    policies = {principals[OPERATOR].name: operator_policy(document)}
    for dataset in topology.datasets:
        policies[principals[replication_principal(dataset.name)].name] = replication_policy(
            document, dataset.name
        )
    for endpoint in layout.moto.values():
        iam = client("iam", endpoint, "us-east-1")
        for user, policy in policies.items():
            iam.put_user_policy(UserName=user, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy))


def airflow_env(layout: SandboxLayout, topology_path: str, operator: Principal) -> dict[str, str]:
    """`AIRFLOW_CONN_*` for every sandbox connection, with the DR operator's keys (what the CLI
    and the DAG tasks run as), plus `MLDR_TOPOLOGY`."""

    def conn(endpoint: str, region: str) -> str:
        return json.dumps(
            {
                "conn_type": "aws",
                "login": operator.access_key_id,
                "password": operator.secret_access_key,
                "extra": {"endpoint_url": endpoint, "region_name": region},
            }
        )

    env = {f"AIRFLOW_CONN_{connection_id(r).upper()}": conn(layout.moto[r], r) for r in layout.regions}
    env[f"AIRFLOW_CONN_{GLOBAL_CONNECTION.upper()}"] = conn(layout.moto["global"], "us-east-1")
    env["MLDR_TOPOLOGY"] = topology_path
    return env
