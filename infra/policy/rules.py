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
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
KMS_KEY = "aws:kms/key:Key"
KMS_KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
LOAD_BALANCER_TYPES = frozenset({"aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"})
LISTENER_TYPES = frozenset({"aws:lb/listener:Listener", "aws:alb/listener:Listener"})
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
    if target.type == ROLE or target.type in LOAD_BALANCER_TYPES:
        identities |= {v for v in (target.props.get("arn"),) if _known(v)}
    if target.type == KMS_KEY:
        identities |= {v for v in (target.props.get("arn"), target.props.get("keyId")) if _known(v)}
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


def _default_encryptions(
    bucket: Resource, resources: Sequence[Resource]
) -> list[tuple[Mapping[str, Any], Resource]]:
    """Each `applyServerSideEncryptionByDefault` of the bucket, with the resource declaring it."""
    declared: list[tuple[Any, Resource]] = []
    for e in _attached(bucket, resources, ENCRYPTION_TYPES):
        declared += [(rule, e) for rule in _as_list(e.props.get("rules"))]
    for inline in _as_list(bucket.props.get("serverSideEncryptionConfiguration")) + _as_list(
        bucket.props.get("serverSideEncryptionConfigurations")
    ):
        if isinstance(inline, Mapping):
            declared += [(rule, bucket) for rule in _as_list(inline.get("rules") or inline.get("rule"))]
    out = []
    for rule, owner in declared:
        default = rule.get("applyServerSideEncryptionByDefault") if isinstance(rule, Mapping) else None
        out += [(d, owner) for d in _as_list(default) if isinstance(d, Mapping)]
    return out


def _encrypted(bucket: Resource, resources: Sequence[Resource]) -> bool:
    return any(
        d.get("sseAlgorithm") in ENCRYPTION_ALGORITHMS for d, _ in _default_encryptions(bucket, resources)
    )


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


KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})
#: ELB security policies that refuse TLS below 1.2 (the default, ELBSecurityPolicy-2016-08, accepts 1.0).
MODERN_TLS = re.compile(r"^ELBSecurityPolicy-(TLS13-1-[23]|TLS-1-2|FS-1-2)")


def _is_star(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, Mapping) and "*" in _as_list(principal.get("AWS"))


def _condition_keys(statement: Mapping[str, Any]) -> set[str]:
    """Every context key a statement's Condition tests, lower-cased (IAM keys are case-insensitive)."""
    condition = statement.get("Condition")
    if not isinstance(condition, Mapping):
        return set()
    return {k.lower() for test in condition.values() if isinstance(test, Mapping) for k in test}


def _denies_plain_http(statement: Mapping[str, Any], bucket_arn: Any) -> bool:
    if statement.get("Effect") != "Deny" or not _is_star(statement.get("Principal")):
        return False
    if not {"s3:*", "*"} & set(_as_list(statement.get("Action"))):
        return False
    condition = statement.get("Condition")
    tests = condition.get("Bool") if isinstance(condition, Mapping) else None
    value = tests.get("aws:SecureTransport") if isinstance(tests, Mapping) else None
    if str(value).lower() != "false":
        return False
    if not _known(bucket_arn):
        return True  # preview: the bucket's ARN is not known yet, the statement's shape is right
    covered = set(_as_list(statement.get("Resource")))
    return {bucket_arn, f"{bucket_arn}/*"} <= covered or "*" in covered


def buckets_tls_only(resources: Sequence[Resource]) -> list[Violation]:
    """Every bucket's policy denies any request not made over TLS, to the bucket and its objects."""
    out = []
    for bucket in (r for r in resources if r.type in BUCKET_TYPES):
        documents = [p.props.get("policy") for p in _attached(bucket, resources, BUCKET_POLICY)]
        documents += [bucket.props["policy"]] if _known(bucket.props.get("policy")) else []
        if any(d == UNKNOWN for d in documents):
            continue  # preview: judged again with the document during `pulumi up`
        arn = bucket.props.get("arn")
        if not any(_denies_plain_http(st, arn) for d in documents for st in _policy_statements(d)):
            out.append(
                Violation(
                    bucket.urn,
                    "S3 bucket accepts requests without TLS: add an aws.s3.BucketPolicy statement "
                    'denying "s3:*" to Principal "*" on the bucket and its objects when '
                    '{"Bool": {"aws:SecureTransport": "false"}}',
                )
            )
    return out


def dataset_buckets_sse_kms(resources: Sequence[Resource]) -> list[Violation]:
    """Every dataset bucket (either side) encrypts by default with a customer KMS key."""
    out = []
    for bucket in (r for r in resources if r.type in BUCKET_TYPES and "mldr:dataset" in r.tags):
        kms = [
            (d, owner)
            for d, owner in _default_encryptions(bucket, resources)
            if d.get("sseAlgorithm") in KMS_ALGORITHMS
        ]
        with_key = [
            d
            for d, owner in kms
            if _known(d.get("kmsMasterKeyId")) or owner.property_dependencies.get("rules")
        ]
        if not with_key:
            out.append(
                Violation(
                    bucket.urn,
                    f"dataset bucket ({bucket.tags['mldr:dataset']}) is not SSE-KMS with its own key: "
                    "set sseAlgorithm aws:kms and kmsMasterKeyId (the dataset key of this region) in "
                    "its aws.s3.BucketServerSideEncryptionConfiguration",
                )
            )
    return out


def _replication_source(config: Resource, buckets: Sequence[Resource]) -> list[Resource]:
    deps = set(config.property_dependencies.get("bucket", ()))
    value = config.props.get("bucket")
    return [
        b
        for b in buckets
        if b.urn in deps or (_known(value) and value in (b.props.get("bucket"), b.props.get("id")))
    ]


def replication_versioned_both_sides(resources: Sequence[Resource]) -> list[Violation]:
    """Both ends of every replication rule are versioned buckets of this stack."""
    buckets = [r for r in resources if r.type in BUCKET_TYPES]
    out = []
    for config in (r for r in resources if r.type in REPLICATION_TYPES):
        sources = _replication_source(config, buckets)
        if not sources:
            out.append(
                Violation(config.urn, "replication source bucket is not in this stack: cannot check it")
            )
        for source in sources:
            if not _enabled_versioning(source, resources):
                out.append(
                    Violation(
                        config.urn, f"replication source {source.name} is not versioned (S3 refuses it)"
                    )
                )
            for rule in _as_list(config.props.get("rules")):
                if not isinstance(rule, Mapping):
                    continue
                destinations = _destinations(config, rule, [b for b in buckets if b.urn != source.urn])
                if not destinations:
                    out.append(
                        Violation(
                            config.urn,
                            f"rule {rule.get('id', '?')}: destination bucket is not in this stack, so "
                            "its versioning cannot be checked: declare the replica here",
                        )
                    )
                for target in destinations:
                    if not _enabled_versioning(target, resources):
                        out.append(
                            Violation(
                                config.urn,
                                f"rule {rule.get('id', '?')}: destination {target.name} is not versioned: "
                                "a replica without versions cannot be restored or failed back from",
                            )
                        )
    return out


def kms_keys_have_explicit_policies(resources: Sequence[Resource]) -> list[Violation]:
    """Every KMS key declares its key policy, and that policy opens the key to no one unconditionally."""
    out = []
    for key in (r for r in resources if r.type == KMS_KEY):
        if key.props.get("policy") == UNKNOWN:
            continue  # declared, not known until `pulumi up`: judged then
        documents = [key.props.get("policy")] if _known(key.props.get("policy")) else []
        documents += [p.props.get("policy") for p in _attached(key, resources, KMS_KEY_POLICY, "keyId")]
        if not documents:
            out.append(
                Violation(
                    key.urn,
                    "KMS key has no declared key policy (AWS would write its default one, invisible to "
                    "review and drift detection): set `policy` on the key",
                )
            )
        for document in documents:
            for statement in _policy_statements(document):
                if (
                    statement.get("Effect") == "Allow"
                    and _is_star(statement.get("Principal"))
                    and not statement.get("Condition")
                ):
                    out.append(
                        Violation(
                            key.urn,
                            f"key policy statement {statement.get('Sid', '(no Sid)')} allows "
                            'Principal "*" without a condition: name the principals',
                        )
                    )
    return out


def replication_trust_names_source_account(resources: Sequence[Resource]) -> list[Violation]:
    """A role S3 may assume trusts S3 only for this account's buckets (aws:SourceAccount)."""
    out = []
    for role in (r for r in resources if r.type == ROLE):
        for statement in _policy_statements(role.props.get("assumeRolePolicy")):
            principal = statement.get("Principal")
            services = _as_list(principal.get("Service")) if isinstance(principal, Mapping) else []
            if statement.get("Effect") != "Allow" or "s3.amazonaws.com" not in services:
                continue
            if "aws:sourceaccount" not in _condition_keys(statement):
                out.append(
                    Violation(
                        role.urn,
                        "role trusts s3.amazonaws.com without an aws:SourceAccount condition: any "
                        "account's bucket could have S3 act with it (confused deputy); add "
                        '{"StringEquals": {"aws:SourceAccount": "<this account>"}}',
                    )
                )
    return out


def _role_policies(role: Resource, resources: Sequence[Resource]) -> list[tuple[str, Any]]:
    policies: list[tuple[str, Any]] = [
        (p.urn, p.props.get("policy")) for p in _attached(role, resources, ROLE_POLICY, "role")
    ]
    for inline in _as_list(role.props.get("inlinePolicies")):
        if isinstance(inline, Mapping):
            policies.append((role.urn, inline.get("policy")))
    return policies


def dr_key_grants_via_service(resources: Sequence[Resource]) -> list[Violation]:
    """The DR roles may use dataset keys only through S3 (`kms:ViaService`), never directly."""
    out = []
    for role in (r for r in resources if r.type == ROLE and _is_dr_role(r)):
        for urn, policy in _role_policies(role, resources):
            for statement in _policy_statements(policy):
                actions = [a for a in _as_list(statement.get("Action")) if isinstance(a, str)]
                uses_keys = any(a == "*" or a.lower().startswith("kms:") for a in actions)
                if statement.get("Effect") != "Allow" or not uses_keys:
                    continue
                if "kms:viaservice" not in _condition_keys(statement):
                    out.append(
                        Violation(
                            urn,
                            f"statement {statement.get('Sid', '(no Sid)')} grants {actions} without a "
                            "kms:ViaService condition: the role could decrypt with the dataset keys "
                            'directly; add {"StringEquals": {"kms:ViaService": '
                            '["s3.<region>.amazonaws.com", ...]}}',
                        )
                    )
    return out


def inference_served_over_https(resources: Sequence[Resource]) -> list[Violation]:
    """Every application load balancer has an HTTPS listener with a certificate and TLS >= 1.2."""
    out = []
    for lb in (r for r in resources if r.type in LOAD_BALANCER_TYPES):
        if lb.props.get("loadBalancerType", "application") not in ("application", None):
            continue
        listeners = _attached(lb, resources, LISTENER_TYPES, "loadBalancerArn")
        https = [
            listener
            for listener in listeners
            if listener.props.get("protocol") == "HTTPS"
            and (
                _known(listener.props.get("certificateArn"))
                or listener.property_dependencies.get("certificateArn")
            )
        ]
        if not https:
            out.append(
                Violation(
                    lb.urn,
                    "load balancer has no HTTPS listener with a certificate: clients' requests and "
                    "predictions would cross the internet in clear; add an aws.lb.Listener with "
                    "protocol HTTPS, certificateArn (ACM) and a TLS 1.2+ sslPolicy",
                )
            )
        for listener in https:
            policy = listener.props.get("sslPolicy")
            if policy != UNKNOWN and not (isinstance(policy, str) and MODERN_TLS.match(policy)):
                out.append(
                    Violation(
                        listener.urn,
                        f"HTTPS listener's sslPolicy {policy!r} accepts TLS below 1.2 (or is unset, "
                        "whose default does): use e.g. ELBSecurityPolicy-TLS13-1-2-2021-06",
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
    "s3-buckets-tls-only": (
        "Every S3 bucket's policy denies requests made without TLS.",
        buckets_tls_only,
    ),
    "dataset-buckets-sse-kms": (
        "Every dataset bucket is SSE-KMS with a customer key by default.",
        dataset_buckets_sse_kms,
    ),
    "replication-versioned-both-sides": (
        "Source and destination of every replication rule are versioned buckets of the stack.",
        replication_versioned_both_sides,
    ),
    "kms-keys-explicit-policies": (
        "Every KMS key declares its key policy, open to no one unconditionally.",
        kms_keys_have_explicit_policies,
    ),
    "replication-trust-source-account": (
        "Roles S3 assumes trust it only for this account's buckets (aws:SourceAccount).",
        replication_trust_names_source_account,
    ),
    "dr-key-grants-via-service": (
        "DR roles use KMS keys only through S3 (kms:ViaService).",
        dr_key_grants_via_service,
    ),
    "inference-https-listener": (
        "Every application load balancer serves HTTPS with a certificate and TLS 1.2+.",
        inference_served_over_https,
    ),
}


def check_all(resources: Sequence[Resource]) -> list[Violation]:
    return [v for _, rule in RULES.values() for v in rule(resources)]
