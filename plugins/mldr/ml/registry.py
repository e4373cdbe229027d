"""The model registry: where models, their metadata and their recovery points live in S3.

This layout is a contract: the inference servers, the backup verification and the failover
runbooks read these keys in whichever region is active. In the `model-artifacts` bucket:

    models/<model>/<version>/model.pkl       pickled scikit-learn estimator
    models/<model>/<version>/metadata.json   `ModelMetadata`: what the model is and how it was made
    manifests/<model>/<version>.json         `RecoveryPointManifest`: all needed to serve AND retrain it
    models/<model>/CURRENT                   {"version": ...}: the version the inference servers load

In `training-data`: `iris/snapshots/<snapshot_id>/data.csv`; in `features`:
`iris/snapshots/<snapshot_id>/features.csv`.

Every object is written with an additional SHA-256 checksum that S3 verifies on upload and stores,
so verification can later compare replicas without downloading them; the hex SHA-256 recorded in
the metadata and manifest is checked again before a model is unpickled.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import pickle
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mldr.cloud.aws.clients import aws_call, error_code
from mldr.cloud.objects import ObjectStore
from mldr.errors import ArtifactChecksumMismatch, AwsError, RegistryError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "iris-classifier"

#: Topology dataset names; `ArtifactRef.dataset` holds one of these, never a bucket name,
#: so a reference stays valid in either region.
TRAINING_DATASET = "training-data"
FEATURES_DATASET = "features"
ARTIFACTS_DATASET = "model-artifacts"

SNAPSHOT_PREFIX = "iris/snapshots"


# --- keys -------------------------------------------------------------------------------------


def model_prefix(model_name: str, version: str) -> str:
    return f"models/{model_name}/{version}/"


def model_key(model_name: str, version: str) -> str:
    return f"{model_prefix(model_name, version)}model.pkl"


def metadata_key(model_name: str, version: str) -> str:
    return f"{model_prefix(model_name, version)}metadata.json"


def manifest_key(model_name: str, version: str) -> str:
    return f"manifests/{model_name}/{version}.json"


def current_key(model_name: str) -> str:
    return f"models/{model_name}/CURRENT"


def training_snapshot_key(snapshot_id: str) -> str:
    return f"{SNAPSHOT_PREFIX}/{snapshot_id}/data.csv"


def feature_snapshot_key(snapshot_id: str) -> str:
    return f"{SNAPSHOT_PREFIX}/{snapshot_id}/features.csv"


# --- records ----------------------------------------------------------------------------------


def _require(doc: Mapping[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    """Field `name` of a registry document, or a RegistryError naming the document and field."""
    if name not in doc:
        raise RegistryError(f"{where}: field {name!r} is missing")
    value = doc[name]
    if not isinstance(value, kind):
        raise RegistryError(f"{where}: field {name!r} has the wrong type ({type(value).__name__})")
    return value


@dataclass(frozen=True)
class ArtifactRef:
    """One object in one dataset, with the hex SHA-256 and size of its bytes."""

    dataset: str
    key: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "key": self.key, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_dict(cls, doc: Any, *, where: str = "artifact") -> ArtifactRef:
        if not isinstance(doc, Mapping):
            raise RegistryError(f"{where}: expected an object, got {type(doc).__name__}")
        size = _require(doc, "size", int, where)
        if isinstance(size, bool) or size < 0:
            raise RegistryError(f"{where}: field 'size' must be a non-negative integer")
        return cls(
            dataset=_require(doc, "dataset", str, where),
            key=_require(doc, "key", str, where),
            sha256=_require(doc, "sha256", str, where),
            size=size,
        )


def _optional_ref(doc: Mapping[str, Any], name: str, where: str) -> ArtifactRef | None:
    value = doc.get(name)
    return None if value is None else ArtifactRef.from_dict(value, where=f"{where}.{name}")


def _metrics(doc: Mapping[str, Any], where: str) -> dict[str, float]:
    raw = _require(doc, "metrics", Mapping, where)
    metrics: dict[str, float] = {}
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RegistryError(f"{where}: metric {name!r} is not a number")
        metrics[str(name)] = float(value)
    return metrics


@dataclass(frozen=True)
class ModelMetadata:
    """`models/<model>/<version>/metadata.json`: what a model version is and how it was made."""

    model_name: str
    version: str
    created_at: str  # ISO 8601, UTC
    region: str  # where it was trained; replicas elsewhere carry the same document
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    example_instance: tuple[float, ...]
    metrics: Mapping[str, float] = field(hash=False)
    artifact: ArtifactRef
    training_snapshot: ArtifactRef
    feature_snapshot: ArtifactRef | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "version": self.version,
            "created_at": self.created_at,
            "region": self.region,
            "feature_names": list(self.feature_names),
            "target_names": list(self.target_names),
            "example_instance": list(self.example_instance),
            "metrics": dict(self.metrics),
            "artifact": self.artifact.to_dict(),
            "training_snapshot": self.training_snapshot.to_dict(),
            "feature_snapshot": self.feature_snapshot.to_dict() if self.feature_snapshot else None,
        }

    @classmethod
    def from_dict(cls, doc: Any, *, where: str = "metadata") -> ModelMetadata:
        if not isinstance(doc, Mapping):
            raise RegistryError(f"{where}: expected an object, got {type(doc).__name__}")
        example = _require(doc, "example_instance", list, where)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in example):
            raise RegistryError(f"{where}: field 'example_instance' must be a list of numbers")
        return cls(
            model_name=_require(doc, "model_name", str, where),
            version=_require(doc, "version", str, where),
            created_at=_require(doc, "created_at", str, where),
            region=_require(doc, "region", str, where),
            feature_names=tuple(str(n) for n in _require(doc, "feature_names", list, where)),
            target_names=tuple(str(n) for n in _require(doc, "target_names", list, where)),
            example_instance=tuple(float(v) for v in example),
            metrics=_metrics(doc, where),
            artifact=ArtifactRef.from_dict(
                _require(doc, "artifact", Mapping, where), where=f"{where}.artifact"
            ),
            training_snapshot=ArtifactRef.from_dict(
                _require(doc, "training_snapshot", Mapping, where), where=f"{where}.training_snapshot"
            ),
            feature_snapshot=_optional_ref(doc, "feature_snapshot", where),
        )

    def manifest(self) -> RecoveryPointManifest:
        """The recovery point for this version (the manifest is a projection of the metadata)."""
        return RecoveryPointManifest(
            model_name=self.model_name,
            version=self.version,
            created_at=self.created_at,
            artifact=self.artifact,
            training_snapshot=self.training_snapshot,
            feature_snapshot=self.feature_snapshot,
            metrics=self.metrics,
        )


@dataclass(frozen=True)
class RecoveryPointManifest:
    """`manifests/<model>/<version>.json`: every object needed to serve and to retrain a version."""

    model_name: str
    version: str
    created_at: str
    artifact: ArtifactRef
    training_snapshot: ArtifactRef
    feature_snapshot: ArtifactRef | None
    metrics: Mapping[str, float] = field(hash=False)

    @property
    def refs(self) -> tuple[ArtifactRef, ...]:
        """The objects this recovery point depends on, for verification and restore."""
        refs = [self.artifact, self.training_snapshot]
        if self.feature_snapshot is not None:
            refs.append(self.feature_snapshot)
        return tuple(refs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "version": self.version,
            "created_at": self.created_at,
            "artifact": self.artifact.to_dict(),
            "training_snapshot": self.training_snapshot.to_dict(),
            "feature_snapshot": self.feature_snapshot.to_dict() if self.feature_snapshot else None,
            "metrics": dict(self.metrics),
        }

    @classmethod
    def from_dict(cls, doc: Any, *, where: str = "manifest") -> RecoveryPointManifest:
        if not isinstance(doc, Mapping):
            raise RegistryError(f"{where}: expected an object, got {type(doc).__name__}")
        return cls(
            model_name=_require(doc, "model_name", str, where),
            version=_require(doc, "version", str, where),
            created_at=_require(doc, "created_at", str, where),
            artifact=ArtifactRef.from_dict(
                _require(doc, "artifact", Mapping, where), where=f"{where}.artifact"
            ),
            training_snapshot=ArtifactRef.from_dict(
                _require(doc, "training_snapshot", Mapping, where), where=f"{where}.training_snapshot"
            ),
            feature_snapshot=_optional_ref(doc, "feature_snapshot", where),
            metrics=_metrics(doc, where),
        )


# --- object I/O -------------------------------------------------------------------------------


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put_object(
    s3: S3Client,
    *,
    bucket: str,
    key: str,
    body: bytes,
    dataset: str,
    content_type: str = "application/octet-stream",
    region: str | None = None,
) -> ArtifactRef:
    """Upload `body` with an S3-verified SHA-256 checksum; return the reference to record."""
    digest = hashlib.sha256(body).digest()
    with aws_call(f"s3://{bucket}/{key}", region=region):
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            ChecksumAlgorithm="SHA256",
            # Sending our own digest makes S3 reject the upload if the bytes changed in flight,
            # and guarantees the stored checksum is the hash we record in the registry.
            ChecksumSHA256=base64.b64encode(digest).decode("ascii"),
        )
    return ArtifactRef(dataset=dataset, key=key, sha256=digest.hex(), size=len(body))


def get_bytes(s3: S3Client, *, bucket: str, key: str, region: str | None = None) -> bytes:
    with aws_call(f"s3://{bucket}/{key}", region=region):
        response = s3.get_object(Bucket=bucket, Key=key)
        return response["Body"].read()


def get_verified(s3: S3Client, *, bucket: str, ref: ArtifactRef, region: str | None = None) -> bytes:
    """The bytes of `ref`, refusing them unless they hash to the recorded SHA-256 and size."""
    data = get_bytes(s3, bucket=bucket, key=ref.key, region=region)
    actual = sha256_hex(data)
    if actual != ref.sha256 or len(data) != ref.size:
        raise ArtifactChecksumMismatch(
            f"s3://{bucket}/{ref.key}: sha256 {actual} ({len(data)} bytes) does not match the recorded "
            f"{ref.sha256} ({ref.size} bytes); the object is corrupt or was overwritten - restore it "
            "from a previous version or the other region before using it"
        )
    return data


def _put_json(
    s3: S3Client, *, bucket: str, key: str, doc: Mapping[str, Any], region: str | None
) -> ArtifactRef:
    body = json.dumps(doc, indent=2, sort_keys=True).encode("utf-8")
    return put_object(
        s3,
        bucket=bucket,
        key=key,
        body=body,
        dataset=ARTIFACTS_DATASET,
        content_type="application/json",
        region=region,
    )


def _get_json(s3: S3Client, *, bucket: str, key: str, region: str | None) -> Any:
    return _json(get_bytes(s3, bucket=bucket, key=key, region=region), bucket=bucket, key=key)


def _json(data: bytes, *, bucket: str, key: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryError(f"s3://{bucket}/{key} is not valid JSON: {exc}") from exc


def _is_missing(exc: AwsError) -> bool:
    return error_code(exc) in {"NoSuchKey", "404", "NotFound"}


# --- the registry -----------------------------------------------------------------------------


def write_metadata(
    s3: S3Client, *, bucket: str, metadata: ModelMetadata, region: str | None = None
) -> ArtifactRef:
    return _put_json(
        s3,
        bucket=bucket,
        key=metadata_key(metadata.model_name, metadata.version),
        doc=metadata.to_dict(),
        region=region,
    )


def write_manifest(
    s3: S3Client, *, bucket: str, manifest: RecoveryPointManifest, region: str | None = None
) -> ArtifactRef:
    return _put_json(
        s3,
        bucket=bucket,
        key=manifest_key(manifest.model_name, manifest.version),
        doc=manifest.to_dict(),
        region=region,
    )


def write_current(
    s3: S3Client,
    *,
    bucket: str,
    version: str,
    model_name: str = DEFAULT_MODEL_NAME,
    region: str | None = None,
) -> None:
    """Point the inference servers at `version` (they pick it up on their next reload)."""
    _put_json(s3, bucket=bucket, key=current_key(model_name), doc={"version": version}, region=region)
    log.info("s3://%s/%s now points at %s", bucket, current_key(model_name), version)


def read_current(
    s3: S3Client, *, bucket: str, model_name: str = DEFAULT_MODEL_NAME, region: str | None = None
) -> str | None:
    """The rolled-out version, or None when nothing has been rolled out to this bucket yet."""
    key = current_key(model_name)
    try:
        doc = _get_json(s3, bucket=bucket, key=key, region=region)
    except AwsError as exc:
        if _is_missing(exc):
            return None
        raise
    if not isinstance(doc, Mapping) or not isinstance(doc.get("version"), str) or not doc["version"]:
        raise RegistryError(f's3://{bucket}/{key}: expected {{"version": "<version>"}}, got {doc!r}')
    return str(doc["version"])


def read_metadata(
    s3: S3Client,
    *,
    bucket: str,
    version: str,
    model_name: str = DEFAULT_MODEL_NAME,
    region: str | None = None,
) -> ModelMetadata:
    key = metadata_key(model_name, version)
    metadata = ModelMetadata.from_dict(
        _get_json(s3, bucket=bucket, key=key, region=region), where=f"s3://{bucket}/{key}"
    )
    if (metadata.model_name, metadata.version) != (model_name, version):
        raise RegistryError(
            f"s3://{bucket}/{key} describes {metadata.model_name}/{metadata.version}, "
            f"not {model_name}/{version}"
        )
    return metadata


def read_manifest(
    s3: S3Client,
    *,
    bucket: str,
    version: str,
    model_name: str = DEFAULT_MODEL_NAME,
    region: str | None = None,
) -> RecoveryPointManifest:
    key = manifest_key(model_name, version)
    return RecoveryPointManifest.from_dict(
        _get_json(s3, bucket=bucket, key=key, region=region), where=f"s3://{bucket}/{key}"
    )


def list_manifests(
    s3: S3Client, *, bucket: str, model_name: str | None = None, region: str | None = None
) -> list[RecoveryPointManifest]:
    """Every recovery point in `bucket` (of one model, or all), oldest first."""
    prefix = _manifest_prefix(model_name)
    keys: list[str] = []
    with aws_call(f"s3://{bucket}/{prefix}", region=region):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []) if obj["Key"].endswith(".json"))
    return _sorted_manifests(
        bucket, ((key, _get_json(s3, bucket=bucket, key=key, region=region)) for key in keys)
    )


def manifests_in(
    store: ObjectStore, *, bucket: str, model_name: str | None = None
) -> list[RecoveryPointManifest]:
    """`list_manifests` through an `mldr.cloud` object store: for verification, which reads the
    registry but makes no clients of its own."""
    keys = [
        obj.key
        for obj in store.list_objects(bucket, prefix=_manifest_prefix(model_name))
        if obj.key.endswith(".json")
    ]
    return _sorted_manifests(
        bucket, ((key, _json(store.get(bucket, key).body, bucket=bucket, key=key)) for key in keys)
    )


def _manifest_prefix(model_name: str | None) -> str:
    return f"manifests/{model_name}/" if model_name else "manifests/"


def _sorted_manifests(bucket: str, documents: Iterable[tuple[str, Any]]) -> list[RecoveryPointManifest]:
    manifests = [RecoveryPointManifest.from_dict(doc, where=f"s3://{bucket}/{key}") for key, doc in documents]
    return sorted(manifests, key=lambda m: (m.model_name, m.created_at, m.version))


def load_estimator(s3: S3Client, *, bucket: str, artifact: ArtifactRef, region: str | None = None) -> Any:
    """Download a model.pkl and unpickle it, only after its SHA-256 matches the registry's record.

    Pass `metadata.artifact` (or `manifest.artifact`). Unpickling runs code, so bytes that do not
    match what training recorded are never unpickled.
    """
    data = get_verified(s3, bucket=bucket, ref=artifact, region=region)
    try:
        return pickle.loads(data)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError) as exc:
        # The hash matched, so the bytes are what training wrote: most likely a scikit-learn
        # version this process cannot load.
        raise RegistryError(
            f"s3://{bucket}/{artifact.key} could not be unpickled ({type(exc).__name__}: {exc}); "
            "check that the server's scikit-learn version matches the one that trained it"
        ) from exc
