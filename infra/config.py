"""The stack's configuration: read, validated and typed before any resource is declared.

`load()` is pure (a mapping of config keys to values in, an `InfraConfig` out) so that a bad
stack config fails in a unit test and in `pulumi preview` the same way: with one
`ConfigError` listing every problem, before the program declares anything. `from_pulumi()`
is the thin adapter the Pulumi program uses. Every key here is described, with its default,
in `infra/Pulumi.yaml`; `tests/infra` checks the two agree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from mldr.topology import Autopilot

_AUTOPILOT = Autopilot()

NAMESPACE = "mldr"

# Same rule as mldr.topology.REGION_PATTERN. infra/ imports one module of the runbook library, the
# pure replication-rule builder (mldr.cloud.aws.replication_rule), so the rule has one author.
REGION_PATTERN = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d+$")
DATASET_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# Buckets are auto-named "<dataset>-<region>-<7 hex>" (regions have up to 14 characters) and S3
# allows 63, so longer dataset names would make `pulumi up` fail half-way.
DATASET_NAME_MAX = 40
DNS_NAME_PATTERN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$")
CIDR_PATTERN = re.compile(r"^\d{1,3}(\.\d{1,3}){3}/(1[6-9]|2[0-4])$")

DATASET_KINDS = ("training_data", "features", "model_artifacts")
COMPUTE_KINDS = ("ecs",)
# Kinds the topology document knows but this program does not provision (yet).
TOPOLOGY_ONLY_COMPUTE_KINDS = ("asg",)
# Route 53 accepts only these request intervals (seconds) and thresholds.
HEALTH_CHECK_INTERVALS = (10, 30)
FAILURE_THRESHOLD_RANGE = (1, 10)
# Fargate task sizes: cpu units -> allowed memory (MiB) range.
FARGATE_SIZES = {
    256: (512, 2048),
    512: (1024, 4096),
    1024: (2048, 8192),
    2048: (4096, 16384),
    4096: (8192, 30720),
}

DEFAULT_DATASETS: list[dict[str, Any]] = [
    {"name": "training-data", "kind": "training_data", "rpoSeconds": 900},
    {"name": "features", "kind": "features", "rpoSeconds": 900},
    {"name": "model-artifacts", "kind": "model_artifacts", "rpoSeconds": 900, "noncurrentDays": 90},
]

#: Every key the program reads (without the `mldr:` namespace) and its default; None = no default.
DEFAULTS: dict[str, Any] = {
    # "" = derived or unset. Pulumi refuses a stack that lacks a key declared with a type and no
    # default ("Stack 'dev' is missing configuration value ..."), so only dnsName has none;
    # image defaults to "" in Pulumi.yaml and load() requires it, with how to build it.
    "name": "",  # derived: <project>-<stack>
    "primaryRegion": "us-east-1",
    "secondaryRegion": "us-west-2",
    "primaryConnectionId": "",  # derived: aws_<primary region with underscores>
    "secondaryConnectionId": "",  # derived: aws_<secondary region with underscores>
    "route53ConnectionId": "aws_global",
    "controlWitnessRegion": "",  # derived: the third region of the pair's MRSC region set, if in one
    "dnsName": None,  # required
    "hostedZoneId": "",  # looked up by hostedZoneName when unset
    "hostedZoneName": "",  # derived: dnsName without its first label
    "healthCheckInterval": 30,
    "healthCheckFailureThreshold": 3,
    "healthPath": "/healthz",
    "computeKind": "ecs",
    "activeCapacity": 2,
    "standbyCapacity": 0,
    "image": "",  # required: built from docker/inference.Dockerfile and pushed (infra/README.md)
    "containerPort": 8080,
    "taskCpu": 512,
    "taskMemory": 1024,
    "logRetentionDays": 30,
    "datasets": DEFAULT_DATASETS,
    "rtoSeconds": 900,
    "rpoSeconds": 900,
    "alertEmail": "",  # unset: no email subscription
    "airflowPrincipalArns": [],  # empty: the deploying account's root, i.e. IAM decides who may assume
    "primaryVpcCidr": "10.10.0.0/16",
    "secondaryVpcCidr": "10.20.0.0/16",
    "continuousBackupDays": 35,  # 0: no independent copy (AWS Backup) of the datasets
    # Autopilot (README: Autopilot): the policy the topology seeds; defaults are the runbooks' own.
    "autopilotMode": _AUTOPILOT.mode.value,
    "autopilotObserversRequired": _AUTOPILOT.observers_required,
    "autopilotForSeconds": _AUTOPILOT.for_seconds,
    "autopilotBlockAfterSeconds": _AUTOPILOT.block_after_seconds,
    "autopilotMaxPerDay": _AUTOPILOT.max_per_day,
}

#: The topology's `autopilot` fields, by the config key that sets each.
_AUTOPILOT_KEYS = {
    "autopilotMode": "mode",
    "autopilotObserversRequired": "observers_required",
    "autopilotForSeconds": "for_seconds",
    "autopilotBlockAfterSeconds": "block_after_seconds",
    "autopilotMaxPerDay": "max_per_day",
}

_DATASET_FIELDS = {"name", "kind", "prefix", "rpoSeconds", "noncurrentDays", "minVersions", "objectLockDays"}


class ConfigError(ValueError):
    """The stack configuration is invalid; `problems` lists every problem by config key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"stack configuration is invalid ({len(problems)} problem{'s' if len(problems) != 1 else ''}); "
            f"nothing was deployed:\n{listing}\n"
            f"Fix with `pulumi config set {NAMESPACE}:<key> <value>`; "
            "every key is described in infra/Pulumi.yaml."
        )


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    kind: str
    prefix: str
    rpo_seconds: int
    noncurrent_days: int
    min_versions: int
    #: Object Lock retention (compliance mode) in days on both buckets; None = no Object Lock.
    object_lock_days: int | None


@dataclass(frozen=True)
class DnsConfig:
    name: str
    hosted_zone_id: str | None
    hosted_zone_name: str
    health_check_interval: int
    failure_threshold: int
    health_path: str


@dataclass(frozen=True)
class ComputeConfig:
    kind: str
    active_capacity: int
    standby_capacity: int
    image: str
    container_port: int
    cpu: int
    memory: int
    log_retention_days: int


@dataclass(frozen=True)
class InfraConfig:
    name: str
    primary_region: str
    secondary_region: str
    connection_ids: Mapping[str, str]
    route53_connection_id: str
    vpc_cidrs: Mapping[str, str]
    dns: DnsConfig
    compute: ComputeConfig
    datasets: tuple[DatasetConfig, ...]
    rto_seconds: int
    rpo_seconds: int
    alert_email: str | None
    airflow_principal_arns: tuple[str, ...]
    #: The control-state table's witness: with multi-Region strong consistency a write needs a
    #: quorum of the two replicas and the witness, so either data region alone can be lost.
    #: "" when the two regions are in no MRSC region set: then the table is last-writer-wins and
    #: every lease write goes to the secondary's replica (README: The control state).
    control_witness_region: str = ""
    #: AWS Backup continuous backup of every dataset, into a vault the DR role cannot delete
    #: from, kept this many days (1-35); 0 = none (infra/README.md: The independent copy).
    continuous_backup_days: int = 35
    #: The topology's `autopilot` section (snake_case, validated by the runbooks' own model);
    #: None when no autopilot key is set: then no section is exported and the runbooks' default
    #: (off) applies.
    autopilot: Mapping[str, Any] | None = None

    @property
    def control_strongly_consistent(self) -> bool:
        return bool(self.control_witness_region)

    @property
    def regions(self) -> tuple[str, str]:
        return (self.primary_region, self.secondary_region)

    def desired_count(self, region: str) -> int:
        """Tasks a region runs right after `pulumi up`: the primary is active, the other standby."""
        if region == self.primary_region:
            return self.compute.active_capacity
        return self.compute.standby_capacity


def default_connection_id(region: str) -> str:
    return "aws_" + region.replace("-", "_")


class _Reader:
    """Reads raw values (native or the strings Pulumi config hands out), collecting problems."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.problems: list[str] = []

    def value(self, key: str) -> Any:
        value = self.raw.get(key)
        return DEFAULTS[key] if value is None or value == "" else value

    def string(self, key: str) -> str | None:
        value = self.value(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problems.append(f"{key}: expected a string, got {value!r}")
            return None
        return value.strip()

    def integer(self, key: str, *, low: int | None = None, high: int | None = None) -> int:
        value = self.value(key)
        return self.check_int(key, value, low=low, high=high)

    def check_int(self, where: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.append(f"{where}: expected a whole number, got {value!r}")
            return low if low is not None else 0
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"between {low} and {high}"
            self.problems.append(f"{where}: {value} is out of range (must be {bounds})")
        return value

    def structured(self, key: str, kind: type) -> Any:
        value = self.value(key)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                self.problems.append(f"{key}: not valid JSON/YAML structure: {exc}")
                return kind()
        if not isinstance(value, kind):
            self.problems.append(f"{key}: expected a {'list' if kind is list else 'mapping'}, got {value!r}")
            return kind()
        return value


#: DynamoDB multi-Region strong consistency (MRSC) works within one of these region sets: the two
#: replicas and the witness of the control-state table must all be in the same one.
MRSC_REGION_SETS: tuple[tuple[str, ...], ...] = (
    ("us-east-1", "us-east-2", "us-west-2"),
    ("eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1"),
    ("ap-northeast-1", "ap-northeast-2", "ap-northeast-3"),
)


def _witness(reader: _Reader, primary: str, secondary: str) -> str:
    """The control-state table's witness region: given, or the first other region of the set;
    "" when the pair is in no MRSC region set (the table is then last-writer-wins)."""
    given = reader.string("controlWitnessRegion")
    region_set = next((s for s in MRSC_REGION_SETS if primary in s and secondary in s), None)
    if region_set is None:
        if given:
            sets = "; ".join(", ".join(s) for s in MRSC_REGION_SETS)
            reader.problems.append(
                f"controlWitnessRegion: {primary} and {secondary} are not in one region set of DynamoDB "
                f"multi-Region strong consistency ({sets}), so the table cannot have a witness; unset it"
            )
        return ""
    witness = given or next(r for r in region_set if r not in (primary, secondary))
    if witness not in region_set or witness in (primary, secondary):
        reader.problems.append(
            f"controlWitnessRegion: {witness!r} must be a third region of the set {', '.join(region_set)}"
        )
    return witness


def _region(reader: _Reader, key: str) -> str:
    region = reader.string(key) or ""
    if not REGION_PATTERN.match(region):
        reader.problems.append(f"{key}: {region!r} is not an AWS region code (e.g. us-east-1)")
    return region


def _datasets(reader: _Reader, default_rpo: int) -> tuple[DatasetConfig, ...]:
    before = len(reader.problems)
    items = reader.structured("datasets", list)
    if not items and len(reader.problems) == before:
        reader.problems.append("datasets: at least one dataset is required")
    out: list[DatasetConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"datasets[{i}]"
        if not isinstance(item, Mapping):
            reader.problems.append(f"{where}: expected a mapping with name and kind, got {item!r}")
            continue
        for unknown in sorted(set(item) - _DATASET_FIELDS):
            reader.problems.append(
                f"{where}.{unknown}: unknown field (known: {', '.join(sorted(_DATASET_FIELDS))})"
            )
        name = item.get("name")
        if not isinstance(name, str) or not DATASET_NAME_PATTERN.match(name):
            reader.problems.append(f"{where}.name: {name!r} must be lowercase letters, digits and hyphens")
            name = f"dataset-{i}"
        elif len(name) > DATASET_NAME_MAX:
            reader.problems.append(
                f"{where}.name: {name!r} is longer than {DATASET_NAME_MAX} characters "
                "(its buckets' names would exceed S3's 63)"
            )
        if name in seen:
            reader.problems.append(f"{where}.name: duplicate dataset name {name!r}")
        seen.add(name)
        kind = item.get("kind")
        if kind not in DATASET_KINDS:
            reader.problems.append(f"{where}.kind: {kind!r} is not one of {', '.join(DATASET_KINDS)}")
        prefix = item.get("prefix", "")
        if not isinstance(prefix, str) or prefix.startswith("/"):
            reader.problems.append(f"{where}.prefix: {prefix!r} must be a key prefix without a leading '/'")
            prefix = ""
        lock = reader.check_int(f"{where}.objectLockDays", item.get("objectLockDays", 0), low=0, high=36500)
        out.append(
            DatasetConfig(
                name=name,
                kind=str(kind),
                prefix=prefix,
                rpo_seconds=reader.check_int(
                    f"{where}.rpoSeconds", item.get("rpoSeconds", default_rpo), low=1
                ),
                noncurrent_days=reader.check_int(
                    f"{where}.noncurrentDays", item.get("noncurrentDays", 30), low=1
                ),
                # S3 lifecycle keeps at most 100 newer noncurrent versions, plus the current one.
                min_versions=reader.check_int(
                    f"{where}.minVersions", item.get("minVersions", 1), low=1, high=101
                ),
                object_lock_days=lock or None,
            )
        )
    if out and not any(d.kind == "model_artifacts" for d in out):
        reader.problems.append("datasets: needs a dataset of kind model_artifacts (the models DR protects)")
    return tuple(out)


def _dns(reader: _Reader) -> DnsConfig:
    name = (reader.string("dnsName") or "").rstrip(".").lower()
    zone_name = (reader.string("hostedZoneName") or "").rstrip(".").lower()
    if not name:
        reader.problems.append(
            "dnsName: missing: the DNS name clients use for inference (e.g. inference.example.com), "
            "in a Route 53 hosted zone of this account"
        )
    elif not DNS_NAME_PATTERN.match(name):
        reader.problems.append(
            f"dnsName: {name!r} is not a fully qualified DNS name (e.g. inference.example.com)"
        )
    elif not zone_name:
        zone_name = name.split(".", 1)[1]
    if name and zone_name and not (name == zone_name or name.endswith("." + zone_name)):
        reader.problems.append(f"hostedZoneName: {zone_name!r} is not a parent of dnsName {name!r}")
    interval = reader.integer("healthCheckInterval")
    if interval not in HEALTH_CHECK_INTERVALS:
        reader.problems.append(
            f"healthCheckInterval: {interval} is not accepted by Route 53 (10 or 30 seconds)"
        )
    path = reader.string("healthPath") or "/"
    if not path.startswith("/"):
        reader.problems.append(f"healthPath: {path!r} must start with '/'")
    return DnsConfig(
        name=name,
        hosted_zone_id=reader.string("hostedZoneId") or None,
        hosted_zone_name=zone_name,
        health_check_interval=interval,
        failure_threshold=reader.integer("healthCheckFailureThreshold", low=1, high=10),
        health_path=path,
    )


def _compute(reader: _Reader) -> ComputeConfig:
    kind = reader.string("computeKind") or ""
    if kind in TOPOLOGY_ONLY_COMPUTE_KINDS:
        reader.problems.append(
            f"computeKind: {kind!r} is a compute kind the topology knows, but infra/ provisions only "
            f"{', '.join(COMPUTE_KINDS)}"
        )
    elif kind not in COMPUTE_KINDS:
        reader.problems.append(
            f"computeKind: {kind!r} is not a known compute kind (known: {', '.join(COMPUTE_KINDS)})"
        )
    active = reader.integer("activeCapacity", low=1)
    standby = reader.integer("standbyCapacity", low=0)
    if standby > active:
        reader.problems.append(
            f"standbyCapacity: {standby} is larger than activeCapacity ({active}); "
            "standby runs at most active"
        )
    cpu = reader.integer("taskCpu")
    memory = reader.integer("taskMemory")
    if cpu not in FARGATE_SIZES:
        reader.problems.append(f"taskCpu: {cpu} is not a Fargate size ({', '.join(map(str, FARGATE_SIZES))})")
    elif not FARGATE_SIZES[cpu][0] <= memory <= FARGATE_SIZES[cpu][1]:
        low, high = FARGATE_SIZES[cpu]
        reader.problems.append(f"taskMemory: {memory} MiB does not fit taskCpu {cpu} (Fargate: {low}-{high})")
    image = reader.string("image") or ""
    if not image:
        reader.problems.append(
            "image: missing: build docker/inference.Dockerfile, push it to a registry the account can "
            "pull from (e.g. ECR), and set its URI (infra/README.md, 'The inference image')"
        )
    return ComputeConfig(
        kind=kind,
        active_capacity=active,
        standby_capacity=standby,
        image=image,
        container_port=reader.integer("containerPort", low=1, high=65535),
        cpu=cpu,
        memory=memory,
        log_retention_days=reader.integer("logRetentionDays", low=1),
    )


def _autopilot(reader: _Reader) -> dict[str, Any] | None:
    """The `autopilot` section, checked by the model the runbooks read it with (one set of bounds);
    None when no autopilot key is set."""
    if not any(reader.raw.get(key) not in (None, "") for key in _AUTOPILOT_KEYS):
        return None
    fields: dict[str, Any] = {}
    for key, field in _AUTOPILOT_KEYS.items():
        value = reader.value(key)
        # Pulumi config hands numbers out as strings
        fields[field] = (
            int(value) if isinstance(value, str) and re.fullmatch(r"\d+", value.strip()) else value
        )
    try:
        return Autopilot.model_validate(fields).model_dump(mode="json")
    except ValidationError as exc:
        by_field = {field: key for key, field in _AUTOPILOT_KEYS.items()}
        for error in exc.errors():
            key = by_field.get(str(error["loc"][0]), "autopilot") if error["loc"] else "autopilot"
            reader.problems.append(f"{key}: {error['input']!r}: {error['msg']}")
        return None


def load(raw: Mapping[str, Any], *, default_name: str = "mldr") -> InfraConfig:
    """Validate raw config (keys without the `mldr:` namespace) into an `InfraConfig`.

    Values may be native (int, list, dict) or the strings Pulumi config hands out (`"30"`, JSON
    for lists). Raises `ConfigError` listing every problem; declares nothing.
    """
    reader = _Reader(raw)
    for key in sorted(set(raw) - set(DEFAULTS)):
        reader.problems.append(
            f"{key}: unknown config key (check its spelling; known keys are in Pulumi.yaml)"
        )
    primary = _region(reader, "primaryRegion")
    secondary = _region(reader, "secondaryRegion")
    if primary and primary == secondary:
        reader.problems.append(
            f"secondaryRegion: must differ from primaryRegion (both are {primary}); replicating within "
            "one region is not disaster recovery"
        )
    connection_ids = {
        primary: reader.string("primaryConnectionId") or default_connection_id(primary),
        secondary: reader.string("secondaryConnectionId") or default_connection_id(secondary),
    }
    cidrs = {}
    for region, key in ((primary, "primaryVpcCidr"), (secondary, "secondaryVpcCidr")):
        cidr = reader.string(key) or ""
        if not CIDR_PATTERN.match(cidr):
            reader.problems.append(f"{key}: {cidr!r} is not an IPv4 CIDR between /16 and /24")
        cidrs[region] = cidr
    rpo = reader.integer("rpoSeconds", low=1)
    principals = reader.structured("airflowPrincipalArns", list)
    for i, arn in enumerate(principals):
        if not isinstance(arn, str) or not arn.startswith("arn:"):
            reader.problems.append(f"airflowPrincipalArns[{i}]: {arn!r} is not an IAM principal ARN")
    email = reader.string("alertEmail")
    if email and "@" not in email:
        reader.problems.append(f"alertEmail: {email!r} is not an email address")
    config = InfraConfig(
        name=reader.string("name") or default_name,
        primary_region=primary,
        secondary_region=secondary,
        connection_ids=connection_ids,
        route53_connection_id=reader.string("route53ConnectionId") or "",
        vpc_cidrs=cidrs,
        dns=_dns(reader),
        compute=_compute(reader),
        datasets=_datasets(reader, rpo),
        rto_seconds=reader.integer("rtoSeconds", low=1),
        rpo_seconds=rpo,
        alert_email=email or None,
        airflow_principal_arns=tuple(str(p) for p in principals),
        control_witness_region=_witness(reader, primary, secondary),
        continuous_backup_days=reader.integer("continuousBackupDays", low=0, high=35),
        autopilot=_autopilot(reader),
    )
    if reader.problems:
        raise ConfigError(reader.problems)
    return config


def from_pulumi() -> InfraConfig:
    """Read the `mldr:` keys of the current stack and validate them with `load()`."""
    import pulumi
    from pulumi.runtime.config import CONFIG, get_config_env

    # pulumi.Config cannot list keys; the runtime's map can, and a misspelt optional key
    # (silently ignored otherwise) is exactly what this check is for.
    present = {**get_config_env(), **CONFIG.get()}
    prefix = f"{NAMESPACE}:"
    config = pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {key[len(prefix) :]: None for key in present if key.startswith(prefix)}
    for key in raw:
        raw[key] = config.get(key)
    return load(raw, default_name=f"{pulumi.get_project()}-{pulumi.get_stack()}")
