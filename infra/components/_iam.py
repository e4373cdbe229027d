"""IAM policy documents built from resource outputs, so no ARN is ever typed in."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi

Statement = Mapping[str, Any]


def policy_document(statements: Sequence[Statement]) -> pulumi.Output[str]:
    """A JSON policy document; statements may hold Outputs (ARNs) anywhere."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def service_trust_policy(service: str) -> str:
    """Trust policy letting an AWS service (e.g. `s3.amazonaws.com`) assume the role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def s3_trust_policy(account_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """Trust policy letting S3 assume the role for buckets of this account only.

    `aws:SourceAccount` stops S3 from acting for another account's bucket that names this role
    (the confused-deputy problem); the policy pack requires it on every role S3 may assume.
    """
    return policy_document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        ]
    )


def key_policy(account_root_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """An explicit KMS key policy: the account (so its IAM policies) administers and uses the key.

    The same effect as the key policy AWS writes when none is given, but declared: who may use
    a dataset key is then decided only by IAM policies this program writes (which add
    `kms:ViaService` conditions), a console edit of the key policy shows as drift, and the
    policy pack can check it. "*" in a key policy is the key itself.
    """
    return policy_document(
        [
            {
                "Sid": "AccountIamPolicies",
                "Effect": "Allow",
                "Principal": {"AWS": account_root_arn},
                "Action": "kms:*",
                "Resource": "*",
            }
        ]
    )


def objects(bucket_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """The ARN pattern of every object in a bucket (`arn:aws:s3:::name/*`)."""
    return pulumi.Output.concat(bucket_arn, "/*")
