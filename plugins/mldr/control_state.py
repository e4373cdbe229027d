"""TRANSITION (branch `platform`): the DR control state moved to `mldr.cloud.control` (the lease,
the operation, the `ControlStore` protocol) and `mldr.cloud.aws.dynamodb` (the table). The drill
and the verification still import these names; they go when those have moved (Homes)."""

from __future__ import annotations

from mldr.cloud.aws.dynamodb import LEASE_KEY, initial_lease_item
from mldr.cloud.aws.dynamodb import DynamoControlStore as ControlStateStore
from mldr.cloud.control import Lease, Operation, now_iso, wait_seconds_since

__all__ = [
    "LEASE_KEY",
    "ControlStateStore",
    "Lease",
    "Operation",
    "initial_lease_item",
    "now_iso",
    "wait_seconds_since",
]
