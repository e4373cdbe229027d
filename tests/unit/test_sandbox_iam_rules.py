"""The sandbox's IAM: which resource a request acts on, and infra/'s policies on sandbox names."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mldr.cloud.aws.errors import translate
from mldr.errors import AccessDenied
from mldr.sandbox import declared
from mldr.sandbox.iam import resource_of


@pytest.mark.parametrize(
    ("service", "body", "path", "resource"),
    [
        (
            "dynamodb",
            {"TableName": "mldr-control"},
            "/",
            "arn:aws:dynamodb:us-west-2:123456789012:table/mldr-control",
        ),
        ("sns", {"TopicArn": "arn:aws:sns:us-west-2:1:t"}, "/", "arn:aws:sns:us-west-2:1:t"),
        (
            "ecs",
            {"cluster": "c", "services": ["inference"]},
            "/",
            "arn:aws:ecs:us-west-2:123456789012:service/inference",
        ),
        ("kms", {"KeyId": "k1"}, "/", "arn:aws:kms:us-west-2:123456789012:key/k1"),
        ("route53", {}, "/2013-04-01/hostedzone/Z1/rrset", "arn:aws:route53:::hostedzone/Z1"),
        ("route53", {}, "/2013-04-01/tags/healthcheck/abc", "arn:aws:route53:::healthcheck/abc"),
        ("route53", {}, "/2013-04-01/change/C9", "arn:aws:route53:::change/C9"),
        # nothing named: "*", which only a statement on "*" allows (fails closed)
        ("dynamodb", {}, "/", "*"),
        ("cloudwatch", {"Namespace": "mldr"}, "/", "*"),
    ],
)
def test_a_request_acts_on_the_resource_it_names(
    service: str, body: dict[str, Any], path: str, resource: str
) -> None:
    assert resource_of(service, "us-west-2", body, path) == resource


def _sandbox_like(program: dict[str, Any]) -> dict[str, Any]:
    """The program's topology with every name changed, as the sandbox's provisioning names them."""
    doc = copy.deepcopy(program)
    for dataset in doc["datasets"]:
        for region in dataset["buckets"]:
            dataset["buckets"][region] = f"mldr-{dataset['name']}-{region}"
            dataset["replication"][region]["kms_key_arn"] = (
                f"arn:aws:kms:{region}:123456789012:key/sbx-{dataset['name']}"
            )
            dataset["replication"][region]["role_arn"] = (
                f"arn:aws:iam::123456789012:role/sbx-{dataset['name']}"
            )
    for region, here in doc["regions"].items():
        here["ops_bucket"] = f"mldr-ops-{region}"
        here["alert_topic_arn"] = f"arn:aws:sns:{region}:123456789012:mldr-alerts"
        here["health_check_id"] = f"sbx-hc-{region}"
        here["compute"]["service"] = "inference"
    doc["inference"]["hosted_zone_id"] = "SBXZONE"
    doc["control_state"]["table"] = "mldr-control"
    return doc


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return list(policy["Statement"])


def test_the_operator_policy_names_the_sandbox_resources_with_the_declared_actions() -> None:
    program = declared.snapshot()
    sandbox = _sandbox_like(program["topology"])
    policy = declared.operator_policy(sandbox)
    text = json.dumps(policy)
    for name in ("mldr-training-data-us-east-1", "mldr-ops-us-west-2", "table/mldr-control", "SBXZONE"):
        assert name in text, f"{name} missing from the rewritten policy: {text}"
    for leftover in (program["topology"]["datasets"][0]["buckets"]["us-east-1"], "Z0MLDRTESTZONE"):
        assert leftover not in text, f"declared name {leftover} left in the sandbox's policy"
    declared_statements = _statements(program["operator_policy"])
    assert [(s.get("Sid"), s["Effect"], s["Action"]) for s in _statements(policy)] == [
        (s.get("Sid"), s["Effect"], s["Action"]) for s in declared_statements
    ]


def test_a_denied_head_request_names_the_permission_it_needs() -> None:
    # S3 answers a HEAD without a body: nothing names the action but the call itself.
    exc = ClientError(
        {"Error": {"Code": "403", "Message": "Forbidden"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
        "HeadBucket",
    )
    error = translate(exc, resource="bucket b", region="us-east-1")
    assert isinstance(error, AccessDenied)
    assert "s3:ListBucket" in str(error) and "bucket b" in str(error)


def test_delete_objects_is_authorised_key_by_key_as_s3_does() -> None:
    """moto authorises DeleteObjects once, on the bucket: a batch delete of versions went through
    unchecked against the role's Deny on s3:DeleteObjectVersion."""
    from mldr.sandbox.iam import _delete_objects_batch

    body = (
        b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>'
        b"<Object><Key>_mldr/canary/a</Key></Object>"
        b"<Object><Key>data/b.csv</Key><VersionId>v1</VersionId></Object></Delete>"
    )
    assert _delete_objects_batch("s3:DeleteObject", "arn:aws:s3:::bkt", body) == [
        ("s3:DeleteObject", "arn:aws:s3:::bkt/_mldr/canary/a"),
        ("s3:DeleteObjectVersion", "arn:aws:s3:::bkt/data/b.csv"),
    ]
    assert _delete_objects_batch("s3:DeleteObject", "arn:aws:s3:::bkt/key", b"") == [], "one DeleteObject"
    assert _delete_objects_batch("s3:PutObject", "arn:aws:s3:::bkt", body) == []
