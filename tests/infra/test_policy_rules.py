"""infra/policy/rules.py on hand-built, resource-like inputs: passing and failing stacks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.policy import rules
from infra.policy.rules import UNKNOWN, Resource

STACK = "urn:pulumi:dev::mldr::"


def urn(typ: str, name: str) -> str:
    return f"{STACK}{typ}::{name}"


def bucket(name: str, region: str, **tags: str) -> Resource:
    return Resource(
        type="aws:s3/bucket:Bucket",
        urn=urn("aws:s3/bucket:Bucket", name),
        props={
            "bucket": f"{name}-1234567",
            "arn": f"arn:aws:s3:::{name}-1234567",
            "region": region,
            "tags": tags,
        },
    )


def on(target: Resource, typ: str, name: str, **props: Any) -> Resource:
    """A resource whose `bucket` property was taken from `target` (as Pulumi records it)."""
    return Resource(
        type=typ,
        urn=urn(typ, name),
        props={"bucket": target.props["bucket"], **props},
        property_dependencies={"bucket": [target.urn]},
    )


def hardening(
    target: Resource, *, versioning: str = "Enabled", algorithm: str = "aws:kms", public: bool = False
) -> list[Resource]:
    name = target.name
    return [
        on(
            target,
            "aws:s3/bucketVersioning:BucketVersioning",
            f"{name}-v",
            versioningConfiguration={"status": versioning},
        ),
        on(
            target,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            f"{name}-sse",
            rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": algorithm}}],
        ),
        on(
            target,
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            f"{name}-pab",
            blockPublicAcls=True,
            blockPublicPolicy=not public,
            ignorePublicAcls=True,
            restrictPublicBuckets=True,
        ),
    ]


def replication(
    source: Resource, destination: Resource, *, status: str = "Enabled", known: bool = True
) -> Resource:
    rule = {
        "id": "r",
        "status": status,
        "destination": {"bucket": destination.props["arn"] if known else UNKNOWN},
    }
    return Resource(
        type="aws:s3/bucketReplicationConfig:BucketReplicationConfig",
        urn=urn("aws:s3/bucketReplicationConfig:BucketReplicationConfig", f"{source.name}-replication"),
        props={"bucket": source.props["bucket"] if known else UNKNOWN, "rules": [rule]},
        property_dependencies={"bucket": [source.urn], "rules": [destination.urn]},
    )


# --- every bucket versioned, encrypted, private ------------------------------------------


def test_hardened_bucket_passes() -> None:
    b = bucket("ops", "us-east-1")
    assert rules.buckets_versioned_encrypted_private([b, *hardening(b, algorithm="AES256")]) == []


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"versioning": "Suspended"}, "is not versioned"),
        ({"algorithm": "none"}, "has no default encryption"),
        ({"public": True}, "does not block public access"),
    ],
)
def test_each_missing_hardening_is_reported_on_the_bucket(kwargs: dict[str, Any], expected: str) -> None:
    b = bucket("data", "us-east-1")
    (violation,) = rules.buckets_versioned_encrypted_private([b, *hardening(b, **kwargs)])
    assert violation.urn == b.urn and expected in violation.message


def test_bare_bucket_gets_all_three_violations() -> None:
    b = bucket("bare", "us-east-1")
    assert len(rules.buckets_versioned_encrypted_private([b])) == 3


def test_hardening_of_another_bucket_does_not_count() -> None:
    a, b = bucket("a", "us-east-1"), bucket("b", "us-east-1")
    violations = rules.buckets_versioned_encrypted_private([a, b, *hardening(a)])
    assert {v.urn for v in violations} == {b.urn}


def test_bucket_matched_by_value_when_no_dependency_is_recorded() -> None:
    b = bucket("legacy", "us-east-1")
    by_value = [Resource(r.type, r.urn, r.props) for r in hardening(b)]
    assert rules.buckets_versioned_encrypted_private([b, *by_value]) == []


# --- protected dataset buckets replicated to another region ------------------------------


def test_dataset_replicated_cross_region_passes() -> None:
    src = bucket("models-use1", "us-east-1", **{"mldr:dataset": "models", "mldr:bucket-role": "primary"})
    dst = bucket("models-usw2", "us-west-2", **{"mldr:dataset": "models", "mldr:bucket-role": "replica"})
    assert rules.dataset_buckets_replicated([src, dst, replication(src, dst)]) == []


def test_unknown_destination_during_preview_is_resolved_through_dependencies() -> None:
    src = bucket("models-use1", "us-east-1", **{"mldr:dataset": "models"})
    dst = bucket("models-usw2", "us-west-2", **{"mldr:dataset": "models", "mldr:bucket-role": "replica"})
    assert rules.dataset_buckets_replicated([src, dst, replication(src, dst, known=False)]) == []


def test_unreplicated_dataset_bucket_fails() -> None:
    src = bucket("features-use1", "us-east-1", **{"mldr:dataset": "features"})
    (violation,) = rules.dataset_buckets_replicated([src])
    assert violation.urn == src.urn and "is not replicated" in violation.message


def test_same_region_replication_fails() -> None:
    src = bucket("models-a", "us-east-1", **{"mldr:dataset": "models"})
    dst = bucket("models-b", "us-east-1", **{"mldr:dataset": "models", "mldr:bucket-role": "replica"})
    (violation,) = rules.dataset_buckets_replicated([src, dst, replication(src, dst)])
    assert violation.urn == src.urn and "same-region replication is not DR" in violation.message


def test_disabled_rule_or_region_left_to_the_provider_fails() -> None:
    src = bucket("models-a", "us-east-1", **{"mldr:dataset": "models"})
    dst = bucket("models-b", "us-west-2", **{"mldr:dataset": "models", "mldr:bucket-role": "replica"})
    assert rules.dataset_buckets_replicated([src, dst, replication(src, dst, status="Disabled")])
    no_region = Resource(dst.type, dst.urn, {**dst.props, "region": None})
    assert rules.dataset_buckets_replicated([src, no_region, replication(src, no_region)])


def test_untagged_and_replica_buckets_need_no_replication() -> None:
    replica = bucket("models-b", "us-west-2", **{"mldr:dataset": "models", "mldr:bucket-role": "replica"})
    assert rules.dataset_buckets_replicated([bucket("scratch", "us-east-1"), replica]) == []


# --- no wildcard resources in replication / DR roles -------------------------------------


def role(name: str, *, purpose: str | None = None, service: str = "s3.amazonaws.com") -> Resource:
    trust = {
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
    }
    tags = {"mldr:purpose": purpose} if purpose else {}
    return Resource(
        "aws:iam/role:Role",
        urn("aws:iam/role:Role", name),
        {
            "name": f"{name}-abc",
            "id": f"{name}-abc",
            "arn": f"arn:aws:iam::1:role/{name}-abc",
            "tags": tags,
            "assumeRolePolicy": json.dumps(trust),
        },
    )


def role_policy(target: Resource, *resources: str, name: str = "p", not_resource: bool = False) -> Resource:
    statement: dict[str, Any] = {"Sid": "S", "Effect": "Allow", "Action": ["s3:GetObject"]}
    statement["NotResource" if not_resource else "Resource"] = list(resources)
    return Resource(
        "aws:iam/rolePolicy:RolePolicy",
        urn("aws:iam/rolePolicy:RolePolicy", name),
        {
            "role": target.props["id"],
            "policy": json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
        },
        {"role": [target.urn]},
    )


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:s3:::models-1234567",
        "arn:aws:s3:::models-1234567/*",
        "arn:aws:kms:us-east-1:1:key/abc",
        "arn:aws:route53:::change/*",
        "arn:aws:dynamodb:us-east-1:1:table/mldr-control",
    ],
)
def test_named_resources_pass(resource: str) -> None:
    r = role("replication")
    assert rules.dr_roles_name_their_resources([r, role_policy(r, resource)]) == []


@pytest.mark.parametrize(
    "resource",
    [
        "*",
        "arn:aws:s3:::*",
        "arn:aws:s3:::*/*",
        "arn:aws:s3:::models-*/*",
        "arn:aws:kms:us-east-1:1:key/*",
        "arn:aws:dynamodb:us-east-1:1:table/*",
        "arn:aws:sns:us-east-1:1:*",
    ],
)
def test_wildcard_resources_fail_on_the_policy(resource: str) -> None:
    r = role("operator", purpose="dr-operator", service="ec2.amazonaws.com")
    p = role_policy(r, "arn:aws:s3:::ok-bucket", resource)
    (violation,) = rules.dr_roles_name_their_resources([r, p])
    assert violation.urn == p.urn and repr(resource) in violation.message


def _statement_policy(target: Resource, actions: list[str], resource: str) -> Resource:
    statement = {"Sid": "S", "Effect": "Allow", "Action": actions, "Resource": [resource]}
    return Resource(
        "aws:iam/rolePolicy:RolePolicy",
        urn("aws:iam/rolePolicy:RolePolicy", "star"),
        {
            "role": target.props["id"],
            "policy": json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
        },
        {"role": [target.urn]},
    )


def test_star_is_allowed_exactly_for_actions_that_take_no_resource() -> None:
    """route53:TestDNSAnswer takes only "*" in IAM: the DR role's grant of it is not too broad."""
    r = role("operator", purpose="dr-operator", service="ec2.amazonaws.com")
    ok = _statement_policy(r, ["route53:TestDNSAnswer"], "*")
    assert rules.dr_roles_name_their_resources([r, ok]) == []


@pytest.mark.parametrize(
    "actions",
    [
        ["route53:TestDNSAnswer", "route53:ChangeResourceRecordSets"],  # mixed: the other takes a zone
        ["route53:*"],
        ["s3:GetObject"],
    ],
)
def test_star_for_an_action_that_takes_a_resource_fails(actions: list[str]) -> None:
    r = role("operator", purpose="dr-operator", service="ec2.amazonaws.com")
    bad = _statement_policy(r, actions, "*")
    (violation,) = rules.dr_roles_name_their_resources([r, bad])
    assert violation.urn == bad.urn and "'*'" in violation.message


def test_not_resource_and_managed_policies_fail() -> None:
    r = role("replication")
    attachment = Resource(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        urn("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "s3-full"),
        {"role": r.props["name"], "policyArn": "arn:aws:iam::aws:policy/AmazonS3FullAccess"},
    )
    violations = rules.dr_roles_name_their_resources(
        [r, role_policy(r, "arn:aws:s3:::x", not_resource=True), attachment]
    )
    assert {v.urn for v in violations} == {urn("aws:iam/rolePolicy:RolePolicy", "p"), attachment.urn}


def test_other_roles_are_not_this_rules_business() -> None:
    task = role("task", service="ecs-tasks.amazonaws.com")
    assert rules.dr_roles_name_their_resources([task, role_policy(task, "*")]) == []


def test_inline_policies_on_the_role_are_checked() -> None:
    r = role("replication")
    inline = Resource(
        r.type,
        r.urn,
        {
            **r.props,
            "inlinePolicies": [
                {
                    "name": "x",
                    "policy": json.dumps(
                        {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
                    ),
                }
            ],
        },
    )
    (violation,) = rules.dr_roles_name_their_resources([inline])
    assert violation.urn == r.urn


# --- failover records have health checks -------------------------------------------------


def record(
    name: str, *, health_check: Any = "hc-1", failover: str | None = "PRIMARY", dep: bool = False
) -> Resource:
    props: dict[str, Any] = {"name": "inference.example.com", "healthCheckId": health_check}
    if failover:
        props["failoverRoutingPolicies"] = [{"type": failover}]
    deps = {"healthCheckId": [urn("aws:route53/healthCheck:HealthCheck", "hc")]} if dep else {}
    return Resource("aws:route53/record:Record", urn("aws:route53/record:Record", name), props, deps)


def test_failover_records_with_health_checks_pass() -> None:
    assert rules.failover_records_have_health_checks([record("p"), record("s", failover="SECONDARY")]) == []


def test_unknown_health_check_id_during_preview_passes_through_its_dependency() -> None:
    assert rules.failover_records_have_health_checks([record("p", health_check=UNKNOWN, dep=True)]) == []


def test_failover_record_without_health_check_fails() -> None:
    bad = record("s", health_check=None, failover="SECONDARY")
    (violation,) = rules.failover_records_have_health_checks([record("p"), bad])
    assert violation.urn == bad.urn and "SECONDARY failover record" in violation.message


def test_plain_records_need_no_health_check() -> None:
    assert rules.failover_records_have_health_checks([record("www", health_check=None, failover=None)]) == []


def test_every_rule_is_registered_for_the_pack() -> None:
    assert {rule for _, rule in rules.RULES.values()} == {
        rules.buckets_versioned_encrypted_private,
        rules.dataset_buckets_replicated,
        rules.dr_roles_name_their_resources,
        rules.failover_records_have_health_checks,
    }


# --- the pulumi-policy glue --------------------------------------------------------------


def test_pack_reports_violations_by_urn_and_tolerates_preview_unknowns() -> None:
    from pulumi_policy import (
        EnforcementLevel,
        PolicyResource,
        PolicyResourceOptions,
        StackValidationArgs,
        StackValidationPolicy,
    )
    from pulumi_policy.policy import PolicyCustomTimeouts
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

    from infra.policy import pack

    def policy_resource(r: Resource, deps: dict[str, list[PolicyResource]] | None = None) -> PolicyResource:
        opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
        props = unknown_checking_proxy(dict(r.props))
        return PolicyResource(r.type, props, r.urn, r.name, opts, None, None, [], deps or {})

    good = bucket("good", "us-east-1")
    bare = bucket("bare", "us-east-1")
    # During preview the versioning's `bucket` is unknown: only its dependency links it to `good`.
    hardened = [
        policy_resource(Resource(h.type, h.urn, {**h.props, "bucket": UNKNOWN_STRING_VALUE}))
        for h in hardening(good)
    ]
    good_resource = policy_resource(good)
    for h in hardened:
        h.property_dependencies = {"bucket": [good_resource]}
    args = StackValidationArgs([good_resource, policy_resource(bare), *hardened])

    (policy,) = [p for p in pack.policies() if p.name == "s3-buckets-versioned-encrypted-private"]
    assert isinstance(policy, StackValidationPolicy)
    reported: list[tuple[str, str | None]] = []
    policy.validate(args, lambda message, urn: reported.append((message, urn)))
    assert {urn for _, urn in reported} == {bare.urn} and len(reported) == 3
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in pack.policies())
