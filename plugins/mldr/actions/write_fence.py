"""The write fence: a bucket-policy statement on the old primary's protected buckets that
denies object writes, so nothing lands where it would not be replicated (planned mode).

The fence keeps every existing policy statement and is identified by its Sid, so putting it
twice or lifting it twice changes nothing. Replication is unaffected: S3 replicates with
`s3:ReplicateObject`, which the fence does not deny.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from mldr.cloud.aws.clients import aws_call, error_code
from mldr.errors import AwsError

log = logging.getLogger(__name__)

FENCE_SID = "MldrWriteFence"
FENCED_ACTIONS = ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"]


def fence_statement(bucket: str) -> dict[str, Any]:
    return {
        "Sid": FENCE_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": FENCED_ACTIONS,
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }


def read_policy(s3: Any, bucket: str, region: str) -> dict[str, Any]:
    try:
        with aws_call(f"bucket policy of {bucket}", region=region):
            raw = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    except AwsError as exc:
        if error_code(exc) == "NoSuchBucketPolicy":
            return {"Version": "2012-10-17", "Statement": []}
        raise
    policy: dict[str, Any] = json.loads(raw)
    if isinstance(policy.get("Statement"), dict):
        policy["Statement"] = [policy["Statement"]]
    return policy


def is_fenced(s3: Any, bucket: str, region: str) -> bool:
    return any(s.get("Sid") == FENCE_SID for s in read_policy(s3, bucket, region).get("Statement", []))


def fence(s3: Any, bucket: str, region: str) -> bool:
    """Deny writes to `bucket`; returns False if it was already fenced."""
    policy = read_policy(s3, bucket, region)
    statements = [s for s in policy.get("Statement", []) if s.get("Sid") != FENCE_SID]
    already = len(statements) != len(policy.get("Statement", []))
    policy["Statement"] = [*statements, fence_statement(bucket)]
    with aws_call(f"bucket policy of {bucket}", region=region):
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    if not already:
        log.info("write fence on %s (%s): object writes now denied", bucket, region)
    return not already


def lift(s3: Any, bucket: str, region: str) -> bool:
    """Remove the fence, keeping every other statement; returns False if there was none."""
    policy = read_policy(s3, bucket, region)
    statements = [s for s in policy.get("Statement", []) if s.get("Sid") != FENCE_SID]
    if len(statements) == len(policy.get("Statement", [])):
        return False
    with aws_call(f"bucket policy of {bucket}", region=region):
        if statements:
            policy["Statement"] = statements
            s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        else:
            s3.delete_bucket_policy(Bucket=bucket)
    log.info("write fence lifted from %s (%s)", bucket, region)
    return True
