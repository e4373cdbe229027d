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
        rules.buckets_tls_only,
        rules.dataset_buckets_sse_kms,
        rules.replication_versioned_both_sides,
        rules.kms_keys_have_explicit_policies,
        rules.replication_trust_names_source_account,
        rules.dr_key_grants_via_service,
        rules.inference_served_over_https,
    }


# --- TLS-only bucket policies ------------------------------------------------------------


def tls_policy(target: Resource, **overrides: Any) -> Resource:
    arn = target.props["arn"]
    statement: dict[str, Any] = {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        **overrides,
    }
    return on(
        target,
        "aws:s3/bucketPolicy:BucketPolicy",
        f"{target.name}-tls",
        policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )


def test_tls_only_policy_passes_and_unknown_policy_waits_for_up() -> None:
    b = bucket("data", "us-east-1")
    assert rules.buckets_tls_only([b, tls_policy(b)]) == []
    pending = on(b, "aws:s3/bucketPolicy:BucketPolicy", "pending", policy=UNKNOWN)
    assert rules.buckets_tls_only([b, pending]) == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"Effect": "Allow"},
        {"Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        {"Action": "s3:GetObject"},
        {"Resource": ["arn:aws:s3:::data-1234567"]},  # the objects are left out
        {"Principal": {"AWS": "arn:aws:iam::1:root"}},
    ],
    ids=["allow", "secure-true", "one-action", "bucket-only", "one-principal"],
)
def test_a_policy_that_lets_plain_http_through_fails(overrides: dict[str, Any]) -> None:
    b = bucket("data", "us-east-1")
    (violation,) = rules.buckets_tls_only([b, tls_policy(b, **overrides)])
    assert violation.urn == b.urn and "without TLS" in violation.message


def test_a_bucket_without_policy_and_another_buckets_policy_fail() -> None:
    a, b = bucket("a", "us-east-1"), bucket("b", "us-east-1")
    assert [v.urn for v in rules.buckets_tls_only([a, b, tls_policy(a)])] == [b.urn]


# --- SSE-KMS on every dataset bucket -----------------------------------------------------


def sse(target: Resource, algorithm: str, key: str | None) -> Resource:
    default = {"sseAlgorithm": algorithm, **({"kmsMasterKeyId": key} if key else {})}
    return on(
        target,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        f"{target.name}-sse",
        rules=[{"applyServerSideEncryptionByDefault": default}],
    )


def test_dataset_bucket_with_its_kms_key_passes_and_ops_bucket_may_be_sse_s3() -> None:
    data = bucket("models-use1", "us-east-1", **{"mldr:dataset": "models"})
    ops = bucket("ops", "us-east-1")
    key = "arn:aws:kms:us-east-1:1:key/abc"
    assert (
        rules.dataset_buckets_sse_kms([data, sse(data, "aws:kms", key), ops, sse(ops, "AES256", None)]) == []
    )


@pytest.mark.parametrize(
    ("algorithm", "key"), [("AES256", None), ("aws:kms", None)], ids=["sse-s3", "aws-key"]
)
def test_dataset_bucket_without_a_customer_kms_key_fails(algorithm: str, key: str | None) -> None:
    data = bucket("models-usw2", "us-west-2", **{"mldr:dataset": "models", "mldr:bucket-role": "replica"})
    (violation,) = rules.dataset_buckets_sse_kms([data, sse(data, algorithm, key)])
    assert violation.urn == data.urn and "not SSE-KMS" in violation.message


# --- versioning on both sides of every replication rule ----------------------------------


def versioned(target: Resource, status: str = "Enabled") -> Resource:
    return on(
        target,
        "aws:s3/bucketVersioning:BucketVersioning",
        f"{target.name}-v",
        versioningConfiguration={"status": status},
    )


@pytest.mark.parametrize("known", [True, False], ids=["up", "preview"])
def test_replication_between_versioned_buckets_passes(known: bool) -> None:
    src, dst = bucket("m-use1", "us-east-1"), bucket("m-usw2", "us-west-2")
    resources = [src, dst, versioned(src), versioned(dst), replication(src, dst, known=known)]
    assert rules.replication_versioned_both_sides(resources) == []


@pytest.mark.parametrize("unversioned", ["source", "destination"])
def test_replication_with_an_unversioned_side_fails(unversioned: str) -> None:
    src, dst = bucket("m-use1", "us-east-1"), bucket("m-usw2", "us-west-2")
    config = replication(src, dst)
    suspended = src if unversioned == "source" else dst
    others = [versioned(b) for b in (src, dst) if b is not suspended]
    (violation,) = rules.replication_versioned_both_sides(
        [src, dst, config, versioned(suspended, "Suspended"), *others]
    )
    assert violation.urn == config.urn and f"{suspended.name} is not versioned" in violation.message


def test_replication_to_a_bucket_outside_the_stack_fails() -> None:
    src, elsewhere = bucket("m-use1", "us-east-1"), bucket("m-usw2", "us-west-2")
    (violation,) = rules.replication_versioned_both_sides([src, versioned(src), replication(src, elsewhere)])
    assert "not in this stack" in violation.message


# --- explicit KMS key policies -----------------------------------------------------------


def kms_key(policy: dict[str, Any] | None) -> Resource:
    props: dict[str, Any] = {"arn": "arn:aws:kms:us-east-1:1:key/k", "keyId": "k"}
    if policy is not None:
        props["policy"] = json.dumps(policy)
    return Resource("aws:kms/key:Key", urn("aws:kms/key:Key", "k"), props)


def key_statement(principal: Any, **extra: Any) -> dict[str, Any]:
    return {
        "Statement": [
            {"Effect": "Allow", "Principal": principal, "Action": "kms:*", "Resource": "*", **extra}
        ]
    }


def test_key_with_a_declared_policy_passes() -> None:
    assert (
        rules.kms_keys_have_explicit_policies([kms_key(key_statement({"AWS": "arn:aws:iam::1:root"}))]) == []
    )
    separate = Resource(
        "aws:kms/keyPolicy:KeyPolicy",
        urn("aws:kms/keyPolicy:KeyPolicy", "kp"),
        {"keyId": "k", "policy": json.dumps(key_statement({"AWS": "arn:aws:iam::1:root"}))},
    )
    assert rules.kms_keys_have_explicit_policies([kms_key(None), separate]) == []


def test_key_policy_unknown_during_preview_is_judged_at_up() -> None:
    pending = Resource("aws:kms/key:Key", urn("aws:kms/key:Key", "k"), {"policy": UNKNOWN})
    assert rules.kms_keys_have_explicit_policies([pending]) == []


def test_key_left_to_the_default_policy_or_open_to_everyone_fails() -> None:
    (missing,) = rules.kms_keys_have_explicit_policies([kms_key(None)])
    assert "no declared key policy" in missing.message
    (open_key,) = rules.kms_keys_have_explicit_policies([kms_key(key_statement({"AWS": "*"}))])
    assert 'Principal "*"' in open_key.message
    condition = {"Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}}
    assert rules.kms_keys_have_explicit_policies([kms_key(key_statement("*", **condition))]) == []


# --- aws:SourceAccount on the replication role's trust -----------------------------------


def trusted_by_s3(condition: dict[str, Any] | None) -> Resource:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    base = role("replication")
    return Resource(
        base.type, base.urn, {**base.props, "assumeRolePolicy": json.dumps({"Statement": [statement]})}
    )


def test_s3_trust_limited_to_the_account_passes() -> None:
    ok = trusted_by_s3({"StringEquals": {"aws:SourceAccount": "123456789012"}})
    assert (
        rules.replication_trust_names_source_account([ok, role("task", service="ecs-tasks.amazonaws.com")])
        == []
    )


@pytest.mark.parametrize(
    "condition",
    [None, {"StringEquals": {"aws:SourceArn": "arn:aws:s3:::x"}}],
    ids=["none", "other-key"],
)
def test_s3_trust_without_source_account_fails(condition: dict[str, Any] | None) -> None:
    r = trusted_by_s3(condition)
    (violation,) = rules.replication_trust_names_source_account([r])
    assert violation.urn == r.urn and "aws:SourceAccount" in violation.message


# --- kms:ViaService on the DR roles' key grants ------------------------------------------


def key_grant(target: Resource, actions: list[str], condition: dict[str, Any] | None) -> Resource:
    statement: dict[str, Any] = {
        "Sid": "DatasetKeys",
        "Effect": "Allow",
        "Action": actions,
        "Resource": ["arn:aws:kms:us-east-1:1:key/abc"],
    }
    if condition:
        statement["Condition"] = condition
    return Resource(
        "aws:iam/rolePolicy:RolePolicy",
        urn("aws:iam/rolePolicy:RolePolicy", "keys"),
        {"role": target.props["id"], "policy": json.dumps({"Statement": [statement]})},
        {"role": [target.urn]},
    )


VIA_S3 = {"StringEquals": {"kms:ViaService": ["s3.us-east-1.amazonaws.com"]}}


def test_operator_key_grant_through_s3_passes() -> None:
    operator = role("operator", purpose="dr-operator", service="ec2.amazonaws.com")
    grant = key_grant(operator, ["kms:Decrypt", "kms:GenerateDataKey"], VIA_S3)
    assert rules.dr_key_grants_via_service([operator, grant]) == []


@pytest.mark.parametrize("actions", [["kms:Decrypt", "kms:GenerateDataKey"], ["KMS:Decrypt"], ["*"]])
def test_operator_key_grant_without_via_service_fails(actions: list[str]) -> None:
    operator = role("operator", purpose="dr-operator", service="ec2.amazonaws.com")
    grant = key_grant(operator, actions, None)
    (violation,) = rules.dr_key_grants_via_service([operator, grant])
    assert violation.urn == grant.urn and "kms:ViaService" in violation.message


def test_key_grants_of_other_roles_are_not_this_rules_business() -> None:
    task = role("task", service="ecs-tasks.amazonaws.com")
    assert rules.dr_key_grants_via_service([task, key_grant(task, ["kms:Decrypt"], None)]) == []


# --- an HTTPS listener for inference -----------------------------------------------------


def alb() -> Resource:
    typ = "aws:lb/loadBalancer:LoadBalancer"
    arn = "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/inference/1"
    return Resource(typ, urn(typ, "inference-alb"), {"arn": arn, "loadBalancerType": "application"})


def listener(lb: Resource, name: str, protocol: str, **props: Any) -> Resource:
    typ = "aws:lb/listener:Listener"
    return Resource(
        typ,
        urn(typ, name),
        {"loadBalancerArn": lb.props["arn"], "protocol": protocol, **props},
        {"loadBalancerArn": [lb.urn]},
    )


CERT = "arn:aws:acm:us-east-1:1:certificate/c"


def test_https_listener_with_certificate_and_modern_tls_passes() -> None:
    lb = alb()
    https = listener(
        lb, "https", "HTTPS", certificateArn=CERT, sslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06"
    )
    assert rules.inference_served_over_https([lb, listener(lb, "http", "HTTP"), https]) == []


def test_load_balancer_with_plain_http_only_fails() -> None:
    lb = alb()
    (violation,) = rules.inference_served_over_https([lb, listener(lb, "http", "HTTP")])
    assert violation.urn == lb.urn and "no HTTPS listener" in violation.message


@pytest.mark.parametrize("ssl_policy", [None, "ELBSecurityPolicy-2016-08"], ids=["default", "tls-1.0"])
def test_https_listener_accepting_old_tls_fails(ssl_policy: str | None) -> None:
    lb = alb()
    https = listener(lb, "https", "HTTPS", certificateArn=CERT, sslPolicy=ssl_policy)
    (violation,) = rules.inference_served_over_https([lb, https])
    assert violation.urn == https.urn and "below 1.2" in violation.message


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
