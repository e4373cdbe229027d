"""Runs the Pulumi program under `pulumi.runtime.set_mocks` and records what it declared.

`deploy(cfg)` returns a `Deployment`: every registered resource (type, name, URN, parent,
inputs, mocked outputs, dependencies, ignore_changes) plus the resolved stack outputs, so tests
assert on plain data and every failure message can name the resource's URN.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor

ACCOUNT = "123456789012"
HOSTED_ZONE_ID = "Z0MLDRTESTZONE"
#: The canonical hosted zone of ALBs in a region (fake, but distinct per region like the real ones).
ALB_ZONE = {"us-east-1": "Z35SXDOTRQ7X7K", "us-west-2": "Z1H1FL5HABSF5", "eu-west-1": "Z32O12XQLNTSW2"}


def _suffix(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:7]


@dataclass
class Declared:
    type: str
    name: str
    urn: str
    #: The physical id the (mocked) provider returned; "" for components.
    id: str
    parent: str
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    ignore_changes: list[str] = field(default_factory=list)
    protect: bool = False

    @property
    def region(self) -> str | None:
        return self.inputs.get("region")

    def __str__(self) -> str:
        return self.urn


class Mocks(pulumi.runtime.Mocks):
    """Plausible AWS ids and ARNs derived from the inputs, as the provider would return."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        region = inputs.get("region", "us-east-1")
        name, typ = args.name, args.typ
        physical = f"{name}-{_suffix(typ + name)}"
        out: dict[str, Any] = {**inputs, "region": region} if "region" in inputs else dict(inputs)
        rid = physical
        if typ == "aws:s3/bucket:Bucket":
            bucket = inputs.get("bucket") or physical
            rid = bucket
            out.update(bucket=bucket, arn=f"arn:aws:s3:::{bucket}", bucketRegion=region)
        elif typ == "aws:kms/key:Key":
            rid = f"{_suffix(name)}-key"
            out.update(keyId=rid, arn=f"arn:aws:kms:{region}:{ACCOUNT}:key/{rid}")
        elif typ == "aws:iam/role:Role":
            out.update(name=inputs.get("name") or physical, arn=f"arn:aws:iam::{ACCOUNT}:role/{physical}")
        elif typ == "aws:sns/topic:Topic":
            out.update(name=physical, arn=f"arn:aws:sns:{region}:{ACCOUNT}:{physical}")
        elif typ == "aws:dynamodb/table:Table":
            table = inputs.get("name") or physical
            out.update(
                name=table,
                arn=f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{table}",
                replicas=[
                    {**r, "arn": f"arn:aws:dynamodb:{r['regionName']}:{ACCOUNT}:table/{table}"}
                    for r in inputs.get("replicas", [])
                ],
            )
            rid = table
        elif typ == "aws:lb/loadBalancer:LoadBalancer":
            out.update(
                arn=f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:loadbalancer/app/{physical}/1",
                dnsName=f"{physical}-1234567890.{region}.elb.amazonaws.com",
                zoneId=ALB_ZONE.get(region, "ZALB" + region.upper().replace("-", "")),
            )
        elif typ in ("aws:lb/targetGroup:TargetGroup", "aws:lb/listener:Listener"):
            out["arn"] = (
                f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:{typ.rsplit(':', 1)[1].lower()}/{physical}"
            )
        elif typ == "aws:ecs/cluster:Cluster":
            out.update(name=physical, arn=f"arn:aws:ecs:{region}:{ACCOUNT}:cluster/{physical}")
        elif typ == "aws:ecs/service:Service":
            rid = f"arn:aws:ecs:{region}:{ACCOUNT}:service/{physical}"
            out.update(name=physical, arn=rid)
        elif typ == "aws:ecs/taskDefinition:TaskDefinition":
            out["arn"] = f"arn:aws:ecs:{region}:{ACCOUNT}:task-definition/{inputs.get('family')}:1"
        elif typ == "aws:cloudwatch/logGroup:LogGroup":
            out.update(name=physical, arn=f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{physical}")
        elif typ == "aws:route53/healthCheck:HealthCheck":
            rid = f"hc-{_suffix(name)}"
            out["arn"] = f"arn:aws:route53:::healthcheck/{rid}"
        elif typ == "aws:route53/record:Record":
            out["fqdn"] = inputs.get("name")
        elif typ == "aws:acm/certificate:Certificate":
            out["arn"] = f"arn:aws:acm:{region}:{ACCOUNT}:certificate/{_suffix(name)}"
            out["domainValidationOptions"] = [
                {
                    "domainName": inputs.get("domainName"),
                    "resourceRecordName": f"_acme.{inputs.get('domainName')}.",
                    "resourceRecordType": "CNAME",
                    "resourceRecordValue": "_validation.acm-validations.aws.",
                }
            ]
        elif typ == "aws:backup/vault:Vault":
            rid = inputs.get("name") or physical
            out.update(name=rid, arn=f"arn:aws:backup:{region}:{ACCOUNT}:backup-vault:{rid}")
        elif typ == "aws:backup/plan:Plan":
            out["arn"] = f"arn:aws:backup:{region}:{ACCOUNT}:backup-plan:{physical}"
        return rid, out

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        token = args.token
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            region = args.args.get("region", "us-east-1")
            names = [f"{region}{z}" for z in "abc"]
            return {"id": region, "names": names, "zoneIds": [f"{region}-az{i}" for i in (1, 2, 3)]}, []
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "id": ACCOUNT,
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/ci",
                "userId": "AIDA",
            }, []
        if token == "aws:index/getPartition:getPartition":
            return {
                "id": "aws",
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsSuffix": "com.amazonaws",
            }, []
        if token == "aws:route53/getZone:getZone":
            zone_id = args.args.get("zoneId") or HOSTED_ZONE_ID
            name = args.args.get("name") or "example.com"
            return {
                "id": zone_id,
                "zoneId": zone_id,
                "name": name,
                "arn": f"arn:aws:route53:::hostedzone/{zone_id}",
                "privateZone": False,
            }, []
        raise NotImplementedError(f"no mock for invoke {token}: add it to infra/under_mocks.py")


class RecordingMonitor(MockMonitor):
    """The mock monitor, also keeping what MockResourceArgs leaves out: parent, deps, ignoreChanges,
    protect."""

    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.declared: dict[str, Declared] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        urn = self.make_urn(request.parent, request.type, request.name)
        if urn in self.declared:
            raise AssertionError(f"{urn} declared twice: resource names must be unique")
        registration = self.resources.get(urn)
        self.declared[urn] = Declared(
            type=request.type,
            name=request.name,
            urn=urn,
            id=registration.id if registration and request.custom else "",
            parent=request.parent,
            inputs=_plain(pulumi.runtime.rpc.deserialize_properties(request.object)),
            outputs=_plain(dict(registration.state)) if registration and request.custom else {},
            dependencies=list(request.dependencies),
            property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
            ignore_changes=list(request.ignoreChanges),
            protect=bool(request.protect),
        )
        return response


def _plain(value: Any) -> Any:
    """Inputs as plain JSON-like data (the mock hands back protobuf-friendly dicts already)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass
class Deployment:
    resources: list[Declared]
    outputs: dict[str, Any]

    def of_type(self, typ: str) -> list[Declared]:
        return [r for r in self.resources if r.type == typ]

    def by_urn(self, urn: str) -> Declared:
        for r in self.resources:
            if r.urn == urn:
                return r
        raise KeyError(urn)

    def one(self, typ: str, name: str) -> Declared:
        found = [r for r in self.of_type(typ) if r.name == name]
        names = sorted(r.name for r in self.of_type(typ))
        assert len(found) == 1, f"expected one {typ} named {name!r}, found {len(found)} (declared: {names})"
        return found[0]

    def children(self, parent: Declared, typ: str | None = None) -> Iterator[Declared]:
        return (r for r in self.resources if r.parent == parent.urn and (typ is None or r.type == typ))

    def referencing(self, target: Declared, typ: str, prop: str = "bucket") -> list[Declared]:
        """Resources of `typ` whose `prop` input was taken from `target` (by property dependency)."""
        return [r for r in self.of_type(typ) if target.urn in r.property_dependencies.get(prop, [])]


def start_mocks(*, stack: str = "test") -> RecordingMonitor:
    """Point the Pulumi runtime at fresh mocks; the returned monitor records what is declared."""
    # Pulumi's runtime takes the thread's current event loop: an `asyncio.run()` earlier in this
    # process (a test of async code) leaves none, and get_event_loop() then raises.
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    mocks = Mocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="mldr", stack=stack, preview=False, monitor=monitor)
    return monitor


def run_program(program: Callable[[], Any]) -> dict[str, Any]:
    """Run a program under the current mocks, wait for every registration, resolve the dict it returns."""
    resolved: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> pulumi.Output[Any]:
        outputs = program() or {}
        return pulumi.Output.all(**outputs).apply(resolved.update)

    run()
    return resolved


def deploy(build: Callable[[], dict[str, pulumi.Output[Any]]], *, stack: str = "test") -> Deployment:
    """Run `build` under fresh mocks and return what it declared and its resolved outputs."""
    monitor = start_mocks(stack=stack)
    outputs = run_program(build)
    return Deployment(resources=list(monitor.declared.values()), outputs=outputs)


# --- the sandbox's declarations ------------------------------------------------------------

INFRA = Path(__file__).resolve().parent
SANDBOX_STACK = INFRA / "Pulumi.sandbox.yaml"
#: What the sandbox reads at start-up: running the program takes ~20 s under the mocks, a sandbox
#: starts in a few; tests/infra/test_sandbox_declared.py holds the snapshot to the program.
SANDBOX_SNAPSHOT = INFRA.parent / "plugins" / "mldr" / "sandbox" / "declared.json"
OPERATOR_POLICY = "mldr-dr-operator-runbooks"
#: The resource types the sandbox has a stand-in for (moto's S3, KMS, IAM, SNS, Route 53,
#: DynamoDB): each one declared for the sandbox stack is in the snapshot, with its inputs and
#: the outputs the provider adds.
SANDBOX_TYPES = frozenset(
    {
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
        "aws:kms/key:Key",
        "aws:iam/role:Role",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:sns/topic:Topic",
        "aws:route53/healthCheck:HealthCheck",
        "aws:route53/record:Record",
        "aws:dynamodb/table:Table",
        "aws:dynamodb/tableItem:TableItem",
    }
)
REPLICATION_POLICY_SUFFIX = "-replication-policy"


def stack_config(path: Path = SANDBOX_STACK) -> dict[str, Any]:
    """A stack file's `mldr:` keys, without the namespace (what `config.load` takes)."""
    import yaml

    values = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    return {k.split(":", 1)[1]: v for k, v in values.items() if k.startswith("mldr:")}


def sandbox_declarations(path: Path = SANDBOX_STACK) -> dict[str, Any]:
    """What the program declares for the sandbox's stack that the sandbox applies: the DR
    operator role's policy, each dataset's replication role policy, the topology export
    (whose names the sandbox maps its own resources onto) and every declared resource of a type
    the sandbox has a stand-in for (`SANDBOX_TYPES`)."""
    from infra import config, program

    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    cfg = config.load(stack_config(path), default_name=f"mldr-{stack}")
    declared = deploy(lambda: program.build(cfg), stack=stack)
    policies = {
        r.name: json.loads(r.inputs["policy"]) for r in declared.of_type("aws:iam/rolePolicy:RolePolicy")
    }
    return {
        "stack": stack,
        "operator_policy": policies[OPERATOR_POLICY],
        "replication_policies": {
            name.removesuffix(REPLICATION_POLICY_SUFFIX): policy
            for name, policy in sorted(policies.items())
            if name.endswith(REPLICATION_POLICY_SUFFIX)
        },
        "topology": declared.outputs["topology"],
        "resources": sorted(
            (
                {
                    "type": r.type,
                    "name": r.name,
                    "inputs": r.inputs,
                    "outputs": {k: v for k, v in r.outputs.items() if r.inputs.get(k) != v},
                }
                for r in declared.resources
                if r.type in SANDBOX_TYPES
            ),
            key=lambda r: (r["type"], r["name"]),
        ),
    }


def main() -> None:
    """`python -m infra.under_mocks`: refresh the sandbox's snapshot of the declarations."""
    import asyncio

    asyncio.set_event_loop(asyncio.new_event_loop())
    SANDBOX_SNAPSHOT.write_text(json.dumps(sandbox_declarations(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {SANDBOX_SNAPSHOT}")


if __name__ == "__main__":
    main()
