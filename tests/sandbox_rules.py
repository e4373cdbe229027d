"""The replication rules a sandbox bucket holds, exactly as they were put, next to the builder's.

moto's GetBucketReplication answers an empty prefix and `DeleteMarkerReplication: Disabled`
whatever was put, and drops the SSE-KMS selection, so these helpers read what the sandbox's S3
stored (the request's XML, parsed) - what its replicator acts on - and put the builder's rule in
that form: every value as XML text, an empty element as None.
"""

from __future__ import annotations

from typing import Any

import httpx

from mldr.actions.replication import dataset_configuration
from mldr.topology import Dataset


def stored_rules(s3_endpoint: str, bucket: str) -> list[dict[str, Any]]:
    """The bucket's rules as stored ([] when the bucket has no replication configuration)."""
    response = httpx.get(f"{s3_endpoint}/_mldr/replication", params={"bucket": bucket}, timeout=5)
    response.raise_for_status()
    config = response.json()["replication"] or {}
    rules = config.get("Rule", [])
    return rules if isinstance(rules, list) else [rules]


def as_stored(value: Any) -> Any:
    """A rule as S3 stores its XML: 1 -> "1", "" -> None."""
    if isinstance(value, dict):
        return {k: as_stored(v) for k, v in value.items()}
    if value == "":
        return None
    return str(value)


def expected_rule(dataset: Dataset, *, source: str, target: str) -> dict[str, Any]:
    """The builder's rule for a topology dataset, from the topology's replication settings
    (rule id, SSE-KMS selection, the target region's replica key)."""
    (rule,) = dataset_configuration(dataset, source=source, target=target)["Rules"]
    return as_stored(rule)
