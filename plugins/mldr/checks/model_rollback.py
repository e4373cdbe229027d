"""What rolling a model back would change: the version to serve, and the keys of its recovery point
to bring back from the version history.

A model version is served from `models/<model>/CURRENT` (`{"version": ...}`) in the
`model-artifacts` bucket; its recovery point (`manifests/<model>/<version>.json`) names the
artifact, the training snapshot and the feature snapshot, each with its SHA-256. A bad run can
register a broken version (CURRENT moves) and overwrite or delete what an older version needs.
The plan: the version (given, or the one CURRENT named at a time), and for each object of its
recovery point (the manifest and metadata included) whose current bytes are not the recorded
ones, the newest version in that key's history that is. Read-only; `mldr.actions.model_rollback`
applies it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from mldr.checks.point_in_time import _histories, _state_at
from mldr.cloud import Cloud
from mldr.cloud.objects import ObjectStore, ObjectVersion
from mldr.errors import ConfigurationError, MldrError, NotFound
from mldr.ml.registry import (
    ARTIFACTS_DATASET,
    RecoveryPointManifest,
    current_key,
    manifest_key,
    metadata_key,
)
from mldr.topology import Topology


@dataclass(frozen=True, kw_only=True)
class KeyRevert:
    dataset: str
    bucket: str
    key: str
    version_id: str  # the version with the recorded bytes, copied back as the current one
    sha256_hex: str | None  # the recorded SHA-256 (None: the manifest/metadata, checked by ETag)
    etag: str


@dataclass(frozen=True, kw_only=True)
class ModelRollbackPlan:
    model: str
    region: str
    version: str  # the version to serve
    serving: str | None  # the version CURRENT names now
    reverts: tuple[KeyRevert, ...]

    def summary(self) -> str:
        keys = (
            ", ".join(f"{r.dataset}/{r.key}" for r in self.reverts) or "none (the recovery point is intact)"
        )
        return (
            f"roll {self.model} back in {self.region}: serve {self.version} (now {self.serving}); "
            f"recovery-point objects to bring back: {keys}"
        )


def _hex(sha256_b64: str | None) -> str | None:
    return base64.b64decode(sha256_b64).hex() if sha256_b64 else None


def _json_at(store: ObjectStore, bucket: str, key: str, version_id: str | None = None) -> Any:
    return json.loads(store.get(bucket, key, version_id=version_id).body)


def _history(store: ObjectStore, bucket: str, key: str) -> list[ObjectVersion]:
    """Every version and delete marker of exactly `key` (not of keys it is a prefix of), newest first."""
    return next((h for k, h in _histories(store.versions(bucket, prefix=key)) if k == key), [])


def _newest_kept(store: ObjectStore, bucket: str, key: str) -> ObjectVersion | None:
    """The newest version of `key` that is not a delete marker: what a bad run's delete left."""
    return next((v for v in _history(store, bucket, key) if not v.deleted), None)


def version_at(cloud: Cloud, topology: Topology, *, region: str, model: str, at: float) -> str:
    """The version CURRENT named at `at`, from the pointer's own history."""
    bucket = topology.dataset(ARTIFACTS_DATASET).buckets[region]
    store = cloud.objects(region)
    then = _state_at(_history(store, bucket, current_key(model)), at)
    if then is not None:
        return str(_json_at(store, bucket, then.key, then.version_id)["version"])
    raise ConfigurationError(f"{model} had no CURRENT version at that time: nothing was served then")


def _revert_for(
    store: ObjectStore, *, dataset: str, bucket: str, key: str, sha256_hex: str | None, good_etag: str | None
) -> KeyRevert | None:
    """None when the key's current bytes are the recorded ones; else the newest version that has
    them. `good_etag`: for documents with no recorded SHA-256, the version known good (by its id)."""
    history = _history(store, bucket, key)
    current = next((v for v in history if v.latest and not v.deleted), None)
    for version in history:
        if version.deleted:
            continue
        if sha256_hex is not None:
            stored = _hex(store.head(bucket, key, version_id=version.version_id, checksum=True).sha256)
            good = stored == sha256_hex
        else:
            good = version.etag == good_etag
        if good:
            if current is not None and version.version_id == current.version_id:
                return None
            return KeyRevert(
                dataset=dataset,
                bucket=bucket,
                key=key,
                version_id=version.version_id,
                sha256_hex=sha256_hex,
                etag=version.etag,
            )
    raise MldrError(
        f"{bucket}/{key}: no version in its history has the recorded bytes "
        f"({sha256_hex or good_etag}): the recovery point cannot be restored"
    )


def plan_model_rollback(
    cloud: Cloud,
    topology: Topology,
    *,
    region: str,
    model: str,
    version: str | None = None,
    at: float | None = None,
) -> ModelRollbackPlan:
    if (version is None) == (at is None):
        raise ConfigurationError(
            "a model rollback names a version or a time (--version or --to), one of them"
        )
    topology.require_region(region)
    bucket = topology.dataset(ARTIFACTS_DATASET).buckets[region]
    store = cloud.objects(region)
    target = version or version_at(cloud, topology, region=region, model=model, at=at or 0.0)
    try:
        serving: str | None = str(_json_at(store, bucket, current_key(model))["version"])
    except NotFound:
        serving = None
    # The manifest itself may be what the bad run deleted: its newest version in the history.
    manifest_version = _newest_kept(store, bucket, manifest_key(model, target))
    if manifest_version is None:
        raise ConfigurationError(f"{model} has no recovery point for version {target!r} in {region}")
    manifest = RecoveryPointManifest.from_dict(
        _json_at(store, bucket, manifest_version.key, manifest_version.version_id)
    )
    reverts = []
    for key in (manifest_key(model, target), metadata_key(model, target)):
        good = _newest_kept(store, bucket, key)
        if good is None:
            raise MldrError(f"{bucket}/{key}: no version left to restore the recovery point from")
        found = _revert_for(
            store, dataset=ARTIFACTS_DATASET, bucket=bucket, key=key, sha256_hex=None, good_etag=good.etag
        )
        if found:
            reverts.append(found)
    for ref in manifest.refs:
        ref_bucket = topology.dataset(ref.dataset).buckets[region]
        found = _revert_for(
            store, dataset=ref.dataset, bucket=ref_bucket, key=ref.key, sha256_hex=ref.sha256, good_etag=None
        )
        if found:
            reverts.append(found)
    return ModelRollbackPlan(
        model=model, region=region, version=target, serving=serving, reverts=tuple(reverts)
    )
