"""The example ML training pipeline, region-aware: the steps of the `ml_training_pipeline` DAG.

ingest -> train -> evaluate -> register -> roll out, each step a function of the topology, a client
factory and JSON-friendly inputs, returning JSON-friendly outputs (XCom). None of them names a
region in configuration: `resolve_region` asks the DR lease which region is active when the run
starts, every later step writes only there, and checks first (read-only) that the region is still
the active one and carries no write fence. So the first run after a failover trains, registers and
rolls out in the new region, and a run in a region being fenced stops with a message naming the
fence instead of failing half-way on S3's AccessDenied.

What it writes is the model registry's layout (`mldr.ml.registry`): the training snapshot, the
model, its metadata and the recovery-point manifest that backup verification checks in the
standby region, and finally `CURRENT`, which the inference servers of that region poll.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from mldr import http
from mldr.checks.active_region import require_writable
from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.errors import ModelBelowThreshold, RolloutNotConfirmed
from mldr.ml import train
from mldr.ml.registry import (
    ARTIFACTS_DATASET,
    DEFAULT_MODEL_NAME,
    FEATURES_DATASET,
    TRAINING_DATASET,
    ArtifactRef,
    current_key,
    manifest_key,
)
from mldr.topology import Topology

log = logging.getLogger(__name__)

#: Every dataset a run writes to; all must be writable in the active region before it starts.
WRITTEN_DATASETS = (TRAINING_DATASET, FEATURES_DATASET, ARTIFACTS_DATASET)
DEFAULT_MIN_ACCURACY = 0.9
DEFAULT_ROLLOUT_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class RunNames:
    """Names derived from the DAG run, so a retried task rewrites the same keys (idempotent)."""

    version: str
    snapshot_id: str

    @classmethod
    def for_run(cls, run_after: datetime) -> RunNames:
        return cls(version=train.default_version(run_after), snapshot_id=train.default_snapshot_id(run_after))


@dataclass(frozen=True)
class RegionBuckets:
    region: str
    training: str
    features: str
    artifacts: str

    @classmethod
    def of(cls, topology: Topology, region: str) -> RegionBuckets:
        return cls(
            region=region,
            training=topology.dataset(TRAINING_DATASET).buckets[region],
            features=topology.dataset(FEATURES_DATASET).buckets[region],
            artifacts=topology.dataset(ARTIFACTS_DATASET).buckets[region],
        )


def _writable(factory: ClientFactory, topology: Topology, region: str) -> RegionBuckets:
    """Refuse unless `region` is still the active region and unfenced (read-only)."""
    require_writable(AwsCloud(factory), topology, datasets=WRITTEN_DATASETS, expected_region=region)
    return RegionBuckets.of(topology, region)


def resolve_region(factory: ClientFactory, topology: Topology) -> dict[str, Any]:
    """The region this run works in: the active region now, provided it may be written."""
    active = require_writable(AwsCloud(factory), topology, datasets=WRITTEN_DATASETS)
    log.info(
        "this run works in %s, the active region (fencing token %d)", active.region, active.fencing_token
    )
    return active.to_dict()


def ingest(factory: ClientFactory, topology: Topology, *, region: str, snapshot_id: str) -> dict[str, Any]:
    """Write the run's immutable training snapshot (raw data and features) in `region`."""
    buckets = _writable(factory, topology, region)
    s3 = factory.client("s3", region)
    snapshot = train.ingest_snapshot(
        s3_training=s3,
        s3_features=s3,
        training_bucket=buckets.training,
        features_bucket=buckets.features,
        region=region,
        snapshot_id=snapshot_id,
    )
    return snapshot.to_dict()


def train_model(
    factory: ClientFactory,
    topology: Topology,
    *,
    region: str,
    snapshot: dict[str, Any],
    version: str,
    model_name: str = DEFAULT_MODEL_NAME,
) -> dict[str, Any]:
    """Train on the snapshot read back from `region` and upload model.pkl there."""
    buckets = _writable(factory, topology, region)
    s3 = factory.client("s3", region)
    artifact = train.train_model(
        s3_training=s3,
        s3_artifacts=s3,
        training_bucket=buckets.training,
        artifacts_bucket=buckets.artifacts,
        training_snapshot=train.Snapshot.from_dict(snapshot).training,
        version=version,
        region=region,
        model_name=model_name,
    )
    return artifact.to_dict()


def evaluate(
    factory: ClientFactory,
    topology: Topology,
    *,
    region: str,
    snapshot: dict[str, Any],
    artifact: dict[str, Any],
    min_accuracy: float = DEFAULT_MIN_ACCURACY,
) -> dict[str, float]:
    """Metrics of the uploaded model on the held-out split; below `min_accuracy` nothing is registered."""
    buckets = RegionBuckets.of(topology, region)  # read-only: no fence check needed
    s3 = factory.client("s3", region)
    metrics = train.evaluate_model(
        s3_training=s3,
        s3_artifacts=s3,
        training_bucket=buckets.training,
        artifacts_bucket=buckets.artifacts,
        training_snapshot=train.Snapshot.from_dict(snapshot).training,
        artifact=ArtifactRef.from_dict(artifact),
        region=region,
    )
    if metrics["accuracy"] < min_accuracy:
        raise ModelBelowThreshold(
            f"s3://{buckets.artifacts}/{artifact['key']}: accuracy {metrics['accuracy']:.4f} is below the "
            f"required {min_accuracy:.4f}; not registered, not rolled out (the served model is unchanged)"
        )
    return metrics


def register(
    factory: ClientFactory,
    topology: Topology,
    *,
    region: str,
    version: str,
    snapshot: dict[str, Any],
    artifact: dict[str, Any],
    metrics: dict[str, float],
    model_name: str = DEFAULT_MODEL_NAME,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """Write the metadata and the recovery-point manifest (artifact, training snapshot, metrics)."""
    buckets = _writable(factory, topology, region)
    snap = train.Snapshot.from_dict(snapshot)
    metadata = train.register_model(
        s3_artifacts=factory.client("s3", region),
        artifacts_bucket=buckets.artifacts,
        version=version,
        region=region,
        artifact=ArtifactRef.from_dict(artifact),
        training_snapshot=snap.training,
        feature_snapshot=snap.features,
        metrics=metrics,
        model_name=model_name,
        created_at=created_at,
    )
    return {
        "model_name": metadata.model_name,
        "version": metadata.version,
        "region": region,
        "manifest": f"s3://{buckets.artifacts}/{manifest_key(metadata.model_name, metadata.version)}",
        "metrics": dict(metadata.metrics),
    }


def _served_version(url: str) -> str | None:
    try:
        response = http.get(url, timeout=2.0)
        body = response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return None
    version = body.get("model_version") if isinstance(body, dict) else None
    return str(version) if version else None


def roll_out(
    factory: ClientFactory,
    topology: Topology,
    *,
    region: str,
    version: str,
    model_name: str = DEFAULT_MODEL_NAME,
    wait_seconds: float = DEFAULT_ROLLOUT_WAIT_SECONDS,
) -> dict[str, Any]:
    """Point `region`'s inference servers at `version` (CURRENT) and wait until they serve it.

    Confirmation reads the region's endpoint health (`model_version`); `wait_seconds=0` only
    writes CURRENT. A timeout fails the task: CURRENT is already written, so a retry only waits.
    """
    buckets = _writable(factory, topology, region)
    train.roll_out(
        s3_artifacts=factory.client("s3", region),
        artifacts_bucket=buckets.artifacts,
        version=version,
        region=region,
        model_name=model_name,
    )
    result: dict[str, Any] = {
        "region": region,
        "version": version,
        "current": f"s3://{buckets.artifacts}/{current_key(model_name)}",
        "confirmed": False,
    }
    if wait_seconds <= 0:
        return result
    url = topology.region(region).endpoint_url.rstrip("/") + topology.inference.health_path
    started = time.monotonic()
    served = None
    while time.monotonic() - started < wait_seconds:
        served = _served_version(url)
        if served == version:
            result.update(confirmed=True, seconds=round(time.monotonic() - started, 2))
            log.info("%s: inference servers serve %s after %.1fs", region, version, result["seconds"])
            return result
        time.sleep(0.5)
    raise RolloutNotConfirmed(
        f"{result['current']} points at {version}, but {url} still reports "
        f"{served or 'no model version'} after {wait_seconds:.0f}s: check the inference servers' logs "
        "(they load CURRENT on their reload interval); rerunning this task only waits again"
    )
