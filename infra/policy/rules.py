"""The policy pack's rules as plain functions over resource-like inputs.

Each rule takes every resource of a stack (type, URN, props, and which resources each property
was taken from) and returns its violations. No Pulumi runtime is needed, so the rules are
unit-tested directly; `__main__.py` adapts them to pulumi-policy.

Property dependencies are how a rule links a `BucketVersioning` to its bucket during preview,
when the bucket's id is not known yet; matching on the `bucket` property is the fallback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Stands in for a value Pulumi does not know yet (preview of a resource that does not exist).
UNKNOWN = "<unknown>"

BUCKET_TYPES = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
VERSIONING_TYPES = frozenset(
    {"aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2"}
)
ENCRYPTION_TYPES = frozenset(
    {
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    }
)
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
REPLICATION_TYPES = frozenset(
    {
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
        "aws:s3/bucketReplicationConfiguration:BucketReplicationConfiguration",
    }
)
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
RECORD = "aws:route53/record:Record"

ENCRYPTION_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse", "AES256"})
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
#: Tag values (on `mldr:purpose`) of the roles whose policies must name their resources.
DR_ROLE_PURPOSES = frozenset({"replication", "dr-operator"})
#: Resource patterns that are the narrowest AWS offers for their action (GetChange: change ids
#: exist only after the change), so they are not "*" in disguise.
NARROWEST_WILDCARDS = {"route53": frozenset({"change/*"})}
#: Actions IAM authorises only on `Resource: "*"` (no resource type in the Service Authorization
#: Reference): a statement of these alone may say "*"; mixed with any other action it may not.
STAR_ONLY_ACTIONS = frozenset(
    {
        "route53:TestDNSAnswer",  # the traffic switch confirms the DNS answer
        "cloudwatch:PutMetricData",
        "cloudwatch:GetMetricData",
    }
)


@dataclass(frozen=True)
class Resource:
    """A resource as a policy sees it: props are the engine's (camelCase) property names."""

    type: str
    urn: str
    props: Mapping[str, Any]
    #: property name -> URNs of the resources that property's value came from
    property_dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]

    @property
    def tags(self) -> Mapping[str, str]:
        tags = self.props.get("tags")
        return tags if isinstance(tags, Mapping) else {}


@dataclass(frozen=True)
class Violation:
    urn: str
    message: str

    def __str__(self) -> str:
        return f"{self.urn}: {self.message}"


Rule = Callable[[Sequence[Resource]], list[Violation]]


def _known(value: Any) -> bool:
    return value is not None and value != UNKNOWN and value != ""


def _attached(
    target: Resource, resources: Iterable[Resource], types: frozenset[str] | str, prop: str = "bucket"
) -> list[Resource]:
    """Resources of `types` whose `prop` refers to `target` (by dependency, else by value)."""
    kinds = {types} if isinstance(types, str) else types
    identities = {
        v for v in (target.props.get("bucket"), target.props.get("id"), target.props.get("name")) if _known(v)
    }
    if target.type == ROLE:
        identities |= {v for v in (target.props.get("arn"),) if _known(v)}
    found = []
    for r in resources:
        if r.type not in kinds:
            continue
        if target.urn in r.property_dependencies.get(prop, ()) or r.props.get(prop) in identities:
            found.append(r)
    return found


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    return [] if value is None else [value]


def _enabled_versioning(bucket: Resource, resources: Sequence[Resource]) -> bool:
    for v in _attached(bucket, resources, VERSIONING_TYPES):
        config = v.props.get("versioningConfiguration") or {}
        if isinstance(config, Mapping) and config.get("status") == "Enabled":
            return True
    # Inline (deprecated) forms: `versioning` on Bucket, `versionings` on BucketV2.
    inline = _as_list(bucket.props.get("versioning")) + _as_list(bucket.props.get("versionings"))
    return any(isinstance(i, Mapping) and i.get("enabled") is True for i in inline)


def _encrypted(bucket: Resource, resources: Sequence[Resource]) -> bool:
    rules: list[Any] = []
    for e in _attached(bucket, resources, ENCRYPTION_TYPES):
        rules += _as_list(e.props.get("rules"))
    for inline in _as_list(bucket.props.get("serverSideEncryptionConfiguration")) + _as_list(
        bucket.props.get("serverSideEncryptionConfigurations")
    ):
        if isinstance(inline, Mapping):
            rules += _as_list(inline.get("rules") or inline.get("rule"))
    for rule in rules:
        default = rule.get("applyServerSideEncryptionByDefault") if isinstance(rule, Mapping) else None
        for d in _as_list(default):
            if isinstance(d, Mapping) and d.get("sseAlgorithm") in ENCRYPTION_ALGORITHMS:
                return True
    return False


def _public_access_blocked(bucket: Resource, resources: Sequence[Resource]) -> bool:
    return any(
        all(block.props.get(flag) is True for flag in PUBLIC_ACCESS_FLAGS)
        for block in _attached(bucket, resources, PUBLIC_ACCESS_BLOCK)
    )


def buckets_versioned_encrypted_private(resources: Sequence[Resource]) -> list[Violation]:
    """Every S3 bucket is versioned, encrypted by default, and has all public access blocked."""
    out = []
    for bucket in (r for r in resources if r.type in BUCKET_TYPES):
        if not _enabled_versioning(bucket, resources):
            out.append(
                Violation(
                    bucket.urn,
                    "S3 bucket is not versioned: add an aws.s3.BucketVersioning with status Enabled "
                    "(replication and point-in-time restore both need it)",
                )
            )
        if not _encrypted(bucket, resources):
            out.append(
                Violation(
                    bucket.urn,
                    "S3 bucket has no default encryption: add an "
                    "aws.s3.BucketServerSideEncryptionConfiguration "
                    "(aws:kms for datasets)",
                )
            )
        if not _public_access_blocked(bucket, resources):
            out.append(
                Violation(
                    bucket.urn,
                    "S3 bucket does not block public access: add an aws.s3.BucketPublicAccessBlock "
                    "with all four "
                    f"flags true ({', '.join(PUBLIC_ACCESS_FLAGS)})",
                )
            )
    return out


def _region(bucket: Resource) -> str | None:
    for key in ("region", "bucketRegion"):
        value = bucket.props.get(key)
        if _known(value):
            return str(value)
    return None


def _destinations(config: Resource, rule: Mapping[str, Any], buckets: Sequence[Resource]) -> list[Resource]:
    destination = rule.get("destination")
    arn = destination.get("bucket") if isinstance(destination, Mapping) else None
    if _known(arn):
        return [b for b in buckets if b.props.get("arn") == arn]
    # Not known yet (preview): the buckets the rules were built from, other than the source.
    deps = set(config.property_dependencies.get("rules", ()))
    return [b for b in buckets if b.urn in deps]


def dataset_buckets_replicated(resources: Sequence[Resource]) -> list[Violation]:
    """Every protected dataset bucket replicates to a bucket in another region.

    Protected: tagged `mldr:dataset`, unless tagged `mldr:bucket-role=replica` (the copy itself).
    """
    buckets = [r for r in resources if r.type in BUCKET_TYPES]
    out = []
    for bucket in buckets:
        tags = bucket.tags
        if "mldr:dataset" not in tags or tags.get("mldr:bucket-role") == "replica":
            continue
        configs = _attached(bucket, resources, REPLICATION_TYPES)
        if not configs:
            out.append(
                Violation(
                    bucket.urn,
                    f"dataset bucket ({tags['mldr:dataset']}) is not replicated: add an "
                    "aws.s3.BucketReplicationConfig to a bucket in the other region",
                )
            )
            continue
        source_region = _region(bucket)
        others = [b for b in buckets if b.urn != bucket.urn]
        replicated_elsewhere = False
        for config in configs:
            for rule in _as_list(config.props.get("rules")):
                if not isinstance(rule, Mapping) or rule.get("status") != "Enabled":
                    continue
                for target in _destinations(config, rule, others):
                    target_region = _region(target)
                    if source_region and target_region and target_region != source_region:
                        replicated_elsewhere = True
        if not replicated_elsewhere:
            out.append(
                Violation(
                    bucket.urn,
                    f"dataset bucket ({tags['mldr:dataset']}, region {source_region or 'not set'}) "
                    "has no enabled "
                    "replication rule to a bucket of this stack in another region (same-region replication "
                    "is not DR; set `region` explicitly on both buckets)",
                )
            )
    return out


def _policy_statements(policy: Any) -> list[Mapping[str, Any]]:
    if isinstance(policy, str):
        if policy == UNKNOWN:
            return []
        try:
            policy = json.loads(policy)
        except json.JSONDecodeError:
            return []
    if not isinstance(policy, Mapping):
        return []
    return [s for s in _as_list(policy.get("Statement")) if isinstance(s, Mapping)]


def too_broad(resource: str) -> bool:
    """Whether an IAM Resource matches every resource of a kind (`*`, `arn:aws:s3:::*`, `key/*`)."""
    if resource == "*":
        return True
    parts = resource.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return False
    service, name = parts[2], parts[5]
    if service == "s3":
        # `bucket/*` means "the objects of bucket": fine. A wildcard in the bucket part is not.
        return "*" in name.split("/", 1)[0]
    if name in NARROWEST_WILDCARDS.get(service, ()):
        return False
    return name.startswith("*") or bool(re.fullmatch(r"[A-Za-z-]+[/:]\*", name))


def broad_resources(statement: Mapping[str, Any]) -> list[str]:
    """The statement's every-resource Resources, except `*` for actions that take nothing else."""
    actions = {a for a in _as_list(statement.get("Action")) if isinstance(a, str)}
    star_only = bool(actions) and actions <= STAR_ONLY_ACTIONS
    return [
        r
        for r in _as_list(statement.get("Resource"))
        if isinstance(r, str) and too_broad(r) and not (star_only and r == "*")
    ]


def _is_dr_role(role: Resource) -> bool:
    if role.tags.get("mldr:purpose") in DR_ROLE_PURPOSES:
        return True
    # A role S3 assumes is a replication role, tagged or not.
    for statement in _policy_statements(role.props.get("assumeRolePolicy")):
        principal = statement.get("Principal")
        services = _as_list(principal.get("Service")) if isinstance(principal, Mapping) else []
        if "s3.amazonaws.com" in services:
            return True
    return False


def dr_roles_name_their_resources(resources: Sequence[Resource]) -> list[Violation]:
    """Replication and DR operator roles: no `*` (or every-resource) Resource, no NotResource."""
    out = []
    for role in (r for r in resources if r.type == ROLE and _is_dr_role(r)):
        policies: list[tuple[str, Any]] = [
            (p.urn, p.props.get("policy")) for p in _attached(role, resources, ROLE_POLICY, "role")
        ]
        for inline in _as_list(role.props.get("inlinePolicies")):
            if isinstance(inline, Mapping):
                policies.append((role.urn, inline.get("policy")))
        for urn, policy in policies:
            for statement in _policy_statements(policy):
                sid = statement.get("Sid", "(no Sid)")
                if "NotResource" in statement:
                    out.append(
                        Violation(urn, f"statement {sid} uses NotResource: name the resources instead")
                    )
                for resource in broad_resources(statement):
                    out.append(
                        Violation(
                            urn,
                            f"statement {sid} grants {statement.get('Action')} on {resource!r}: "
                            "a replication or DR role must name its resources (use the resources' "
                            f"ARNs; only {', '.join(sorted(STAR_ONLY_ACTIONS))}, which take no "
                            'resource, may be granted on "*", alone in their statement)',
                        )
                    )
        managed = _attached(role, resources, ROLE_POLICY_ATTACHMENT, "role")
        for attachment in managed:
            out.append(
                Violation(
                    attachment.urn,
                    f"managed policy {attachment.props.get('policyArn')} attached to a DR role: "
                    "its resources "
                    "cannot be checked; use an inline policy naming the resources",
                )
            )
        for arn in _as_list(role.props.get("managedPolicyArns")):
            out.append(
                Violation(
                    role.urn, f"managed policy {arn} on a DR role: use an inline policy naming the resources"
                )
            )
    return out


def failover_records_have_health_checks(resources: Sequence[Resource]) -> list[Violation]:
    """Every failover record is gated by a health check, or Route 53 can never fail over."""
    out = []
    for record in (r for r in resources if r.type == RECORD):
        if not _as_list(record.props.get("failoverRoutingPolicies")):
            continue
        check = record.props.get("healthCheckId")
        if _known(check) or record.property_dependencies.get("healthCheckId"):
            continue
        policy = _as_list(record.props.get("failoverRoutingPolicies"))[0]
        role = policy.get("type") if isinstance(policy, Mapping) else "?"
        out.append(
            Violation(
                record.urn,
                f"{role} failover record for {record.props.get('name')} has no health check: Route 53 would "
                "treat it as always healthy and never fail over",
            )
        )
    return out


#: name -> (description, rule); all mandatory.
RULES: dict[str, tuple[str, Rule]] = {
    "s3-buckets-versioned-encrypted-private": (
        "Every S3 bucket is versioned, encrypted by default and blocks all public access.",
        buckets_versioned_encrypted_private,
    ),
    "dataset-buckets-replicated-cross-region": (
        "Every protected dataset bucket replicates to a bucket in another region.",
        dataset_buckets_replicated,
    ),
    "dr-roles-no-wildcard-resources": (
        "Replication and DR operator roles name their resources: no '*' Resource.",
        dr_roles_name_their_resources,
    ),
    "failover-records-have-health-checks": (
        "Every Route 53 failover record has a health check.",
        failover_records_have_health_checks,
    ),
}


def check_all(resources: Sequence[Resource]) -> list[Violation]:
    return [v for _, rule in RULES.values() for v in rule(resources)]
