"""The topology document: the one contract between provisioning and the runbooks.

Pulumi exports it (stack output `topology`), the sandbox writes it to
`.sandbox/topology.json`, and the DAGs and the CLI read it from the Airflow Variable
`mldr_topology` or the file named by `MLDR_TOPOLOGY`. It is parsed once into frozen,
validated models; a malformed document raises `TopologyError` listing every problem by
field path (`datasets[1].buckets.us-west-2: missing`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mldr.errors import TopologyError, TopologyNotFound, UnknownDataset, UnknownRegion

TOPOLOGY_ENV = "MLDR_TOPOLOGY"
TOPOLOGY_VARIABLE = "mldr_topology"
#: 2 added each dataset's `replication` settings (and dropped `regions.<r>.replication_role_arn`).
SCHEMA_VERSION = 2

REGION_PATTERN = r"^[a-z]{2}(-gov)?-[a-z]+-\d+$"
# S3 bucket naming rules (general purpose buckets): 3-63 chars, lowercase, digits, dots, hyphens.
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
KMS_KEY_ARN_PATTERN = r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$"
ROLE_ARN_PATTERN = r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]+$"

RegionName = Annotated[str, Field(pattern=REGION_PATTERN, description="AWS region code, e.g. us-east-1")]
BucketName = Annotated[str, Field(pattern=BUCKET_PATTERN, description="S3 bucket name")]
Seconds = Annotated[int, Field(gt=0, description="a duration in seconds")]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatasetKind(StrEnum):
    TRAINING_DATA = "training_data"
    FEATURES = "features"
    MODEL_ARTIFACTS = "model_artifacts"


class ComputeKind(StrEnum):
    ECS = "ecs"
    ASG = "asg"


class Retention(_Model):
    """Point-in-time policy: how much version history the dataset keeps."""

    noncurrent_days: int = Field(default=30, ge=1, description="days noncurrent versions are kept")
    min_versions: int = Field(
        default=1, ge=1, description="versions per key that must be restorable (current included)"
    )
    object_lock_days: int | None = Field(
        default=None,
        ge=1,
        description="S3 Object Lock: the default retention (days) both buckets must have; none when unset",
    )


class ReplicationSide(_Model):
    """A dataset's replication settings in one region, as infra/ declares them.

    The region's bucket is the source of the rule `rule_id` (to the other region) and the
    destination of the other region's rule, whose replicas are encrypted with `kms_key_arn`.
    Without these the runbooks could not write infra's rule back after a failover: S3 skips
    every SSE-KMS object of a rule that names no replica key, silently.
    """

    kms_key_arn: str = Field(
        pattern=KMS_KEY_ARN_PATTERN, description="KMS key (ARN) the region's bucket encrypts with (SSE-KMS)"
    )
    role_arn: str = Field(
        pattern=ROLE_ARN_PATTERN, description="IAM role S3 assumes to replicate from this region's bucket"
    )
    rule_id: str = Field(
        min_length=1,
        max_length=255,
        description="id of the rule from this region's bucket (the RuleId infra's replication alarms watch)",
    )


class Dataset(_Model):
    name: str = Field(pattern=NAME_PATTERN, description="dataset name, e.g. training-data")
    kind: DatasetKind
    buckets: dict[RegionName, BucketName] = Field(description="bucket per region; both regions required")
    prefix: str = Field(default="", description="key prefix the dataset lives under ('' = whole bucket)")
    rpo_seconds: Seconds = Field(description="how far behind the secondary may fall before it is a breach")
    retention: Retention = Field(default_factory=Retention)
    replication: dict[RegionName, ReplicationSide] = Field(
        description="replication settings per region (key, role, rule id); both regions required"
    )


class Compute(_Model):
    """The inference compute in one region, scaled by failover."""

    kind: ComputeKind
    cluster: str | None = Field(default=None, description="ECS cluster (kind=ecs)")
    service: str | None = Field(default=None, description="ECS service (kind=ecs)")
    auto_scaling_group: str | None = Field(default=None, description="Auto Scaling group (kind=asg)")
    active_capacity: int = Field(ge=1, description="tasks/instances when the region is active")
    standby_capacity: int = Field(ge=0, description="tasks/instances when it is standby (0 = pilot light)")


class Region(_Model):
    connection_id: str = Field(min_length=1, description="Airflow AWS connection id for this region")
    ops_bucket: BucketName = Field(description="bucket for reports and audit events in this region")
    alert_topic_arn: str = Field(min_length=1, description="SNS topic for DR alerts in this region")
    endpoint_url: str = Field(
        pattern=r"^https?://", description="the region's inference endpoint (load balancer URL)"
    )
    health_check_id: str = Field(min_length=1, description="Route 53 health check of the endpoint")
    compute: Compute


class Inference(_Model):
    dns_name: str = Field(min_length=1, description="the name clients use, e.g. inference.example.com")
    hosted_zone_id: str = Field(min_length=1)
    record_name: str = Field(min_length=1, description="record name of the failover records (FQDN)")
    route53_connection_id: str = Field(
        min_length=1, description="Airflow AWS connection for Route 53 (a global service)"
    )
    health_path: str = Field(default="/healthz")
    url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="URL clients use to reach the DNS name (sandbox: the edge); default http://dns_name",
    )

    @property
    def client_url(self) -> str:
        return self.url or f"http://{self.dns_name}"


class ControlConsistency(StrEnum):
    """How the control-state table's replicas agree: it decides where a lease change may go."""

    #: DynamoDB multi-Region strong consistency (MRSC): a write is acknowledged only once a
    #: quorum of regions has it, so every replica is authoritative and any one may take it.
    STRONG = "strong"
    #: A last-writer-wins global table: two replicas can each accept a compare-and-set the other
    #: has not seen yet, so lease and record writes go to the one `write_region` replica only.
    EVENTUAL = "eventual"


class ControlState(_Model):
    """Where the DR lease lives: a table readable while either data region is down."""

    kind: Literal["dynamodb"] = "dynamodb"
    table: str = Field(min_length=3)
    replicas: list[ControlReplica] = Field(
        min_length=1, description="where to reach the table, tried in order until one answers"
    )
    consistency: ControlConsistency = Field(
        default=ControlConsistency.EVENTUAL,
        description="strong (MRSC: write to any replica) or eventual (write to write_region only)",
    )
    write_region: RegionName | None = Field(
        default=None,
        description="eventual consistency: the one replica every lease and record write goes to "
        "(default: the first replica)",
    )

    @property
    def writer_region(self) -> str:
        """The replica an eventually consistent table's writes go to."""
        return self.write_region or self.replicas[0].region


class ControlReplica(_Model):
    region: RegionName
    connection_id: str = Field(min_length=1)


class Objectives(_Model):
    rto_seconds: Seconds = Field(description="recovery time objective: client-observed downtime")
    rpo_seconds: Seconds = Field(description="recovery point objective: data loss window")


class Approval(_Model):
    """Whether a human must approve every failover, failback and restore, whatever its trigger
    params say."""

    required: bool = Field(
        default=False,
        description=(
            "true: the CLI needs a typed 'yes' at its prompt (--yes is refused) and the DAGs refuse "
            "require_approval=false; drills are exempt (starting a drill is the decision)"
        ),
    )
    response_window_seconds: Seconds = Field(
        default=3600,
        description=(
            "how long a DAG's await_approval task waits for an answer; then the run ends with "
            "nothing changed and the operation is recorded as not approved (timed out)"
        ),
    )
    approvers: tuple[str, ...] = Field(
        default=(),
        description=(
            "Airflow user ids who may answer a DAG's approval (HITL assigned users); empty: any "
            "user allowed to act on the DAG"
        ),
    )


class AutopilotMode(StrEnum):
    OFF = "off"
    #: alert with the exact command to run, change nothing
    RECOMMEND = "recommend"
    #: start the unplanned failover itself (through the same lease and engine as `mldr failover`)
    ACT = "act"


#: How many independent observers autopilot has (Route 53's checkers, a probe from the standby,
#: the replication heartbeat, inference through the DNS name): `observers_required` is out of these.
AUTOPILOT_OBSERVERS = 4


class Autopilot(_Model):
    """Automated failover: the policy a topology starts with. The policy in force lives in the
    control store (`mldr autopilot enable|disable` change it without a deploy); this seeds it."""

    mode: AutopilotMode = Field(
        default=AutopilotMode.OFF, description="off | recommend (alert with the command) | act (fail over)"
    )
    observers_required: int = Field(
        default=3,
        ge=2,
        le=AUTOPILOT_OBSERVERS,
        description=f"how many of the {AUTOPILOT_OBSERVERS} observers must see the primary failing "
        "(at least 2: one probe alone never fails a region over)",
    )
    for_seconds: int = Field(
        default=60,
        ge=1,
        le=3600,
        description="for how long they must agree before the primary is declared dead",
    )
    block_after_seconds: int = Field(
        default=3600,
        ge=0,
        le=7 * 86_400,
        description="no automatic failover within this long of the last failover or failback (anti-flapping)",
    )
    max_per_day: int = Field(
        default=1, ge=1, le=24, description="at most this many automatic failovers in any 24 hours"
    )


class SandboxInfo(_Model):
    """Present only in the sandbox's document: where its stand-ins for AWS data planes listen."""

    edge_url: str
    replicator_url: str


class Topology(_Model):
    version: Literal[2] = Field(description="schema version of this document")
    name: str = Field(min_length=1, description="name of this DR topology (stack or sandbox)")
    primary_region: RegionName
    secondary_region: RegionName
    regions: dict[RegionName, Region]
    datasets: list[Dataset] = Field(min_length=1)
    inference: Inference
    control_state: ControlState
    objectives: Objectives
    approval: Approval = Field(default_factory=Approval)
    autopilot: Autopilot = Field(default_factory=Autopilot)
    sandbox: SandboxInfo | None = None

    @property
    def region_names(self) -> list[str]:
        return [self.primary_region, self.secondary_region]

    def region(self, name: str) -> Region:
        if name not in self.regions:
            raise UnknownRegion(name, self.region_names)
        return self.regions[name]

    def require_region(self, name: str) -> str:
        self.region(name)
        return name

    def other_region(self, name: str) -> str:
        self.require_region(name)
        return self.secondary_region if name == self.primary_region else self.primary_region

    def dataset(self, name: str) -> Dataset:
        for dataset in self.datasets:
            if dataset.name == name:
                return dataset
        raise UnknownDataset(name, [d.name for d in self.datasets])

    def datasets_named(self, names: list[str] | None) -> list[Dataset]:
        """The datasets with these names (all when None or empty), in topology order."""
        if not names:
            return list(self.datasets)
        return [self.dataset(n) for n in names]

    def datasets_of_kind(self, kind: DatasetKind) -> list[Dataset]:
        return [d for d in self.datasets if d.kind == kind]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_none=True)


Topology.model_rebuild()
ControlState.model_rebuild()


# --- validation ------------------------------------------------------------------------


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


def _describe(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "missing"
    if kind == "extra_forbidden":
        return "unknown field (remove it or check its spelling)"
    if kind == "string_pattern_mismatch":
        return f"{error['input']!r} is not valid (must match {error['ctx']['pattern']})"
    if kind == "literal_error":
        return f"{error['input']!r} is not allowed: expected {error['ctx']['expected']}"
    if kind == "enum":
        return f"{error['input']!r} is not one of {error['ctx']['expected']}"
    return f"{error['msg']} (got {error['input']!r})" if "input" in error else str(error["msg"])


def _structural_problems(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        # pydantic names the key itself in dict-key errors; drop its "[key]" suffix
        if error["type"] in ("string_pattern_mismatch",) and len(loc) >= 2 and loc[-1] == "[key]":
            loc = loc[:-1]
        problems.append(f"{_path(loc)}: {_describe(error)}")
    return problems


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _replication_problems(i: int, dataset: dict[str, Any], pair: list[str]) -> list[str]:
    """A dataset's replication settings: one per region, each key in its own region (a KMS key
    never leaves its region, and S3 needs the replica key where the replica is written)."""
    problems: list[str] = []
    settings = _as_dict(dataset.get("replication"))
    where = f"datasets[{i}].replication"
    for region in dict.fromkeys(pair):
        if "replication" in dataset and region not in settings:
            problems.append(f"{where}.{region}: missing (kms_key_arn, role_arn and rule_id of {region})")
    for region, side in settings.items():
        if pair and region not in pair:
            problems.append(f"{where}.{region}: not a region of this topology")
            continue
        key = _as_dict(side).get("kms_key_arn")
        if isinstance(key, str) and re.match(KMS_KEY_ARN_PATTERN, key) and key.split(":")[3] != region:
            problems.append(
                f"{where}.{region}.kms_key_arn: the key is in {key.split(':')[3]}, not {region} "
                "(the bucket's key and the replica key must be the region's own)"
            )
    return problems


def _version_problems(doc: dict[str, Any]) -> list[str]:
    """An older document: say what changed and how to get a current one, not only "missing"."""
    if doc.get("version") != 1:
        return []
    return [
        f"version: 1 is an earlier schema; this mldr reads version {SCHEMA_VERSION}, which adds each "
        "dataset's replication settings (datasets[].replication.<region>: kms_key_arn, role_arn, "
        "rule_id) and drops regions.<region>.replication_role_arn. Export it again from infra/ "
        "(`pulumi up`, then `mldr topology import --from-pulumi-json` of `pulumi stack output --json`), "
        "or restart the sandbox (`mldr sandbox down && mldr sandbox up`)"
    ]


def _cross_field_problems(doc: dict[str, Any]) -> list[str]:
    """Rules that span fields. Works on the raw document, defensively, so that it can run
    even when the structure is broken and the user sees every problem in one pass."""
    problems: list[str] = []
    primary, secondary = doc.get("primary_region"), doc.get("secondary_region")
    pair = [r for r in (primary, secondary) if isinstance(r, str)]
    regions = _as_dict(doc.get("regions"))
    if primary is not None and primary == secondary:
        problems.append(
            f"secondary_region: must differ from primary_region (both are {primary}); "
            "a DR topology needs two regions"
        )
    for name in dict.fromkeys(pair):
        if "regions" in doc and name not in regions:
            problems.append(f"regions.{name}: missing (every region needs a connection id and endpoint)")
    for name in regions:
        if pair and name not in pair:
            problems.append(f"regions.{name}: not one of primary_region/secondary_region ({', '.join(pair)})")
    seen: set[str] = set()
    buckets_seen: dict[str, str] = {}
    has_models = False
    for i, raw in enumerate(_as_list(doc.get("datasets"))):
        dataset = _as_dict(raw)
        dataset_name = dataset.get("name")
        if isinstance(dataset_name, str):
            if dataset_name in seen:
                problems.append(f"datasets[{i}].name: duplicate dataset name {dataset_name!r}")
            seen.add(dataset_name)
        has_models = has_models or dataset.get("kind") == DatasetKind.MODEL_ARTIFACTS.value
        buckets = _as_dict(dataset.get("buckets"))
        for region in dict.fromkeys(pair):
            if "buckets" in dataset and region not in buckets:
                problems.append(f"datasets[{i}].buckets.{region}: missing")
        problems.extend(_replication_problems(i, dataset, pair))
        for region, bucket in buckets.items():
            if pair and region not in pair:
                problems.append(f"datasets[{i}].buckets.{region}: not a region of this topology")
            if not isinstance(bucket, str):
                continue
            if bucket in buckets_seen:
                problems.append(
                    f"datasets[{i}].buckets.{region}: bucket {bucket!r} is already used by "
                    f"{buckets_seen[bucket]} (the replica must be a different bucket)"
                )
            buckets_seen[bucket] = f"datasets[{i}].buckets.{region}"
    if "datasets" in doc and not has_models:
        problems.append("datasets: needs a dataset of kind model_artifacts (the models DR protects)")
    for name, region in regions.items():
        compute = _as_dict(_as_dict(region).get("compute"))
        where = f"regions.{name}.compute"
        if compute.get("kind") == ComputeKind.ECS.value:
            for field in ("cluster", "service"):
                if not compute.get(field):
                    problems.append(f"{where}.{field}: missing (required for kind ecs)")
        if compute.get("kind") == ComputeKind.ASG.value and not compute.get("auto_scaling_group"):
            problems.append(f"{where}.auto_scaling_group: missing (required for kind asg)")
        active, standby = compute.get("active_capacity"), compute.get("standby_capacity")
        if isinstance(active, int) and isinstance(standby, int) and standby > active:
            problems.append(f"{where}.standby_capacity: larger than active_capacity ({active})")
    control = _as_dict(doc.get("control_state"))
    replica_regions = [_as_dict(r).get("region") for r in _as_list(control.get("replicas"))]
    for i, replica_region in enumerate(replica_regions):
        if pair and isinstance(replica_region, str) and replica_region not in pair:
            problems.append(
                f"control_state.replicas[{i}].region: {replica_region} is not a region of this topology"
            )
    write_region = control.get("write_region")
    if isinstance(write_region, str) and replica_regions and write_region not in replica_regions:
        problems.append(
            f"control_state.write_region: {write_region} is not one of the table's replicas "
            f"({', '.join(str(r) for r in replica_regions)})"
        )
    return problems


def parse_topology(document: dict[str, Any] | str, *, source: str = "topology") -> Topology:
    """Validate a topology document (a dict or JSON text) into a `Topology`.

    Raises `TopologyError` listing every problem by field path.
    """
    if isinstance(document, str):
        duplicates: list[str] = []
        try:
            document = json.loads(document, object_pairs_hook=_keeping_duplicates(duplicates))
        except json.JSONDecodeError as exc:
            raise TopologyError([f"(document): not valid JSON: {exc}"], source=source) from None
        if duplicates:
            # json.loads keeps the last of two equal keys: a region or dataset written twice
            # would silently lose its first definition.
            raise TopologyError(duplicates, source=source)
    if not isinstance(document, dict):
        raise TopologyError(
            [f"(document): expected a JSON object, got {type(document).__name__}"], source=source
        )
    problems: list[str] = []
    topology: Topology | None = None
    problems.extend(_version_problems(document))
    try:
        topology = Topology.model_validate(document)
    except ValidationError as exc:
        problems.extend(p for p in _structural_problems(exc) if not (problems and p.startswith("version:")))
    problems.extend(p for p in _cross_field_problems(document) if p not in problems)
    if problems or topology is None:
        raise TopologyError(problems, source=source)
    return topology


def _keeping_duplicates(problems: list[str]) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """An `object_pairs_hook` that builds each object and notes every key it meets twice."""

    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                problems.append(f"{key}: given twice in one object (JSON keeps only the last); remove one")
            seen[key] = value
        return seen

    return build


def load_topology_file(path: str | Path) -> Topology:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise TopologyNotFound(f"topology file {path} does not exist") from None
    except IsADirectoryError:
        raise TopologyNotFound(
            f"topology file {path} is a directory: name the JSON file in it (e.g. {path / 'topology.json'})"
        ) from None
    except (PermissionError, UnicodeDecodeError) as exc:
        raise TopologyNotFound(f"topology file {path} cannot be read: {exc}") from None
    return parse_topology(text, source=str(path))


def _airflow_variable() -> str | None:
    """The Airflow Variable `mldr_topology`, or None outside Airflow or when unset."""
    try:
        from airflow.sdk import Variable
    except ImportError:
        return None
    try:
        value = Variable.get(TOPOLOGY_VARIABLE, default=None)
    except Exception:
        return None
    return value if isinstance(value, str) else (json.dumps(value) if value is not None else None)


def load_topology(
    document: dict[str, Any] | str | Topology | None = None, *, use_airflow: bool = True
) -> Topology:
    """Load the topology: passed in, else `$MLDR_TOPOLOGY` (a file), else the Airflow Variable.

    The file wins over the Variable so that a sandbox or a test can point one process at its
    own document without touching the Airflow metadata database.
    """
    if isinstance(document, Topology):
        return document
    if document is not None:
        return parse_topology(document)
    path = os.environ.get(TOPOLOGY_ENV)
    if path:
        return load_topology_file(path)
    if use_airflow:
        value = _airflow_variable()
        if value:
            return parse_topology(value, source=f"Airflow Variable {TOPOLOGY_VARIABLE}")
    raise TopologyNotFound(
        f"no topology: set {TOPOLOGY_ENV} to a topology file (the sandbox writes .sandbox/topology.json), "
        f"or set the Airflow Variable {TOPOLOGY_VARIABLE}"
    )


def json_schema() -> dict[str, Any]:
    schema = Topology.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mldr topology document"
    return schema


def is_valid_region_name(name: str) -> bool:
    return re.match(REGION_PATTERN, name) is not None
