"""Apply a model rollback: bring back its recovery point's objects, then point CURRENT at it.

The objects first (each a server-side copy of the version with the recorded bytes, checked by
SHA-256 or ETag), the pointer last: an inference server that reloads in between still finds a
complete model for whichever version CURRENT names. Every change is a new version; nothing is
deleted for good, so a rollback is undone by rolling back to the version served before.
"""

from __future__ import annotations

import base64
import logging

from mldr.checks.model_rollback import KeyRevert, ModelRollbackPlan
from mldr.cloud import Cloud
from mldr.errors import MldrError
from mldr.ml.registry import ARTIFACTS_DATASET, current_key
from mldr.topology import Topology

log = logging.getLogger(__name__)


def _bring_back(cloud: Cloud, region: str, revert: KeyRevert) -> None:
    store = cloud.objects(region)
    copied = store.copy_version(revert.bucket, revert.key, revert.version_id, to_key=revert.key)
    if revert.sha256_hex is not None:
        got = base64.b64decode(copied.sha256).hex() if copied.sha256 else None
        if got != revert.sha256_hex:
            raise MldrError(f"{revert.bucket}/{revert.key}: the copy's SHA-256 {got} is not the recorded one")
    elif copied.etag != revert.etag:
        raise MldrError(f"{revert.bucket}/{revert.key}: the copy's ETag {copied.etag} is not {revert.etag}")


def apply_model_rollback(cloud: Cloud, topology: Topology, plan: ModelRollbackPlan) -> int:
    """Bring the recovery point back, then serve its version; returns the objects brought back."""
    for revert in plan.reverts:
        _bring_back(cloud, plan.region, revert)
        log.info(
            "rollback %s: %s/%s back at version %s", plan.model, revert.dataset, revert.key, revert.version_id
        )
    bucket = topology.dataset(ARTIFACTS_DATASET).buckets[plan.region]
    cloud.objects(plan.region).put_json(bucket, current_key(plan.model), {"version": plan.version})
    log.info("rollback %s: CURRENT now names %s (was %s)", plan.model, plan.version, plan.serving)
    return len(plan.reverts)
