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


def objects(bucket_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """The ARN pattern of every object in a bucket (`arn:aws:s3:::name/*`)."""
    return pulumi.Output.concat(bucket_arn, "/*")
