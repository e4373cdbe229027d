"""The example training pipeline: iris snapshot -> model -> evaluation -> registry -> roll-out.

Each step is its own function taking and returning JSON-friendly records (`ArtifactRef`,
`ModelMetadata`), so an Airflow DAG can run them as separate, retryable tasks passing references
through XCom; `train_and_publish` runs them all in one go for the sandbox, the CLI and tests.

The model is trained from the training snapshot read back from S3 (not from memory), so a
recovery point's manifest is enough to retrain the exact version after a restore. Everything is
deterministic: the same snapshot gives the same predictions on `golden_set()` in every region.
"""

from __future__ import annotations

import csv
import io
import logging
import pickle
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mldr.errors import RegistryError
from mldr.ml.golden import golden_set
from mldr.ml.registry import (
    ARTIFACTS_DATASET,
    DEFAULT_MODEL_NAME,
    FEATURES_DATASET,
    TRAINING_DATASET,
    ArtifactRef,
    ModelMetadata,
    feature_snapshot_key,
    get_verified,
    load_estimator,
    model_key,
    put_object,
    training_snapshot_key,
    write_current,
    write_manifest,
    write_metadata,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

RANDOM_STATE = 42
TEST_FRACTION = 0.3
TARGET_COLUMN = "target"


@dataclass(frozen=True)
class IrisData:
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    rows: tuple[tuple[float, ...], ...]
    labels: tuple[int, ...]


@cache
def iris() -> IrisData:
    """The iris dataset shipped inside scikit-learn (no network)."""
    bunch: Any = load_iris()
    return IrisData(
        feature_names=tuple(str(n) for n in bunch.feature_names),
        target_names=tuple(str(n) for n in bunch.target_names),
        rows=tuple(tuple(float(v) for v in row) for row in bunch.data),
        labels=tuple(int(v) for v in bunch.target),
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


def default_version(now: datetime | None = None) -> str:
    return f"v{(now or utc_now()).strftime('%Y%m%d%H%M%S')}"


def default_snapshot_id(now: datetime | None = None) -> str:
    return (now or utc_now()).strftime("%Y%m%dT%H%M%SZ")


# --- CSV ------------------------------------------------------------------------------------


def _to_csv(header: list[str], rows: list[list[float | int]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    # repr() round-trips floats exactly, so the bytes (and their sha256) are reproducible.
    writer.writerows([[repr(v) for v in row] for row in rows])
    return out.getvalue().encode("utf-8")


def parse_snapshot_csv(data: bytes, *, where: str) -> tuple[list[str], list[list[float]], list[int]]:
    """(feature names, rows, labels) from a snapshot CSV whose last column is the label."""
    try:
        reader = csv.reader(io.StringIO(data.decode("utf-8")))
        header = next(reader)
        if len(header) < 2 or header[-1] != TARGET_COLUMN:
            raise RegistryError(f"{where}: expected feature columns then {TARGET_COLUMN!r}, got {header}")
        rows: list[list[float]] = []
        labels: list[int] = []
        for line, record in enumerate(reader, start=2):
            if len(record) != len(header):
                raise RegistryError(f"{where}: line {line} has {len(record)} columns, expected {len(header)}")
            rows.append([float(v) for v in record[:-1]])
            labels.append(int(record[-1]))
    except (UnicodeDecodeError, StopIteration, ValueError) as exc:
        raise RegistryError(f"{where}: not a valid snapshot CSV ({type(exc).__name__}: {exc})") from exc
    return header[:-1], rows, labels


# --- steps ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """What `ingest_snapshot` wrote: the raw training data and the standardised features."""

    snapshot_id: str
    training: ArtifactRef
    features: ArtifactRef

    def to_dict(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "training": self.training.to_dict(),
            "features": self.features.to_dict(),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Snapshot:
        return cls(
            snapshot_id=str(doc["snapshot_id"]),
            training=ArtifactRef.from_dict(doc["training"], where="snapshot.training"),
            features=ArtifactRef.from_dict(doc["features"], where="snapshot.features"),
        )


def ingest_snapshot(
    *,
    s3_training: S3Client,
    s3_features: S3Client,
    training_bucket: str,
    features_bucket: str,
    region: str,
    snapshot_id: str | None = None,
) -> Snapshot:
    """Write an immutable snapshot of the iris data and of its standardised features."""
    snapshot_id = snapshot_id or default_snapshot_id()
    data = iris()
    header = [*data.feature_names, TARGET_COLUMN]
    raw = [[*row, label] for row, label in zip(data.rows, data.labels, strict=True)]
    training = put_object(
        s3_training,
        bucket=training_bucket,
        key=training_snapshot_key(snapshot_id),
        body=_to_csv(header, raw),
        dataset=TRAINING_DATASET,
        content_type="text/csv",
        region=region,
    )
    scaled = StandardScaler().fit_transform([list(r) for r in data.rows])
    standardised = [[*map(float, row), label] for row, label in zip(scaled, data.labels, strict=True)]
    features = put_object(
        s3_features,
        bucket=features_bucket,
        key=feature_snapshot_key(snapshot_id),
        body=_to_csv(header, standardised),
        dataset=FEATURES_DATASET,
        content_type="text/csv",
        region=region,
    )
    log.info(
        "snapshot %s written: s3://%s/%s (%d rows), s3://%s/%s",
        snapshot_id,
        training_bucket,
        training.key,
        len(raw),
        features_bucket,
        features.key,
    )
    return Snapshot(snapshot_id=snapshot_id, training=training, features=features)


def _split(rows: list[list[float]], labels: list[int]) -> tuple[Any, Any, Any, Any]:
    """The fixed train/test split every step uses (stratified, seeded)."""
    return tuple(  # type: ignore[return-value]
        train_test_split(rows, labels, test_size=TEST_FRACTION, random_state=RANDOM_STATE, stratify=labels)
    )


def _load_snapshot(
    s3_training: S3Client, *, training_bucket: str, snapshot: ArtifactRef, region: str
) -> tuple[list[str], list[list[float]], list[int]]:
    data = get_verified(s3_training, bucket=training_bucket, ref=snapshot, region=region)
    return parse_snapshot_csv(data, where=f"s3://{training_bucket}/{snapshot.key}")


def fit_model(rows: list[list[float]], labels: list[int]) -> Pipeline:
    """A deterministic classifier on raw features (scaling is part of the model, so clients send raw)."""
    model = Pipeline(
        [
            ("scale", StandardScaler()),
            ("classify", LogisticRegression(max_iter=500, random_state=RANDOM_STATE)),
        ]
    )
    model.fit(rows, labels)
    return model


def train_model(
    *,
    s3_training: S3Client,
    s3_artifacts: S3Client,
    training_bucket: str,
    artifacts_bucket: str,
    training_snapshot: ArtifactRef,
    version: str,
    region: str,
    model_name: str = DEFAULT_MODEL_NAME,
) -> ArtifactRef:
    """Train on the snapshot's training split and upload `model.pkl`; nothing points at it yet."""
    _, rows, labels = _load_snapshot(
        s3_training, training_bucket=training_bucket, snapshot=training_snapshot, region=region
    )
    x_train, _, y_train, _ = _split(rows, labels)
    model = fit_model(x_train, y_train)
    artifact = put_object(
        s3_artifacts,
        bucket=artifacts_bucket,
        key=model_key(model_name, version),
        body=pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL),
        dataset=ARTIFACTS_DATASET,
        region=region,
    )
    log.info(
        "trained %s/%s on %d rows of %s: s3://%s/%s (%d bytes)",
        model_name,
        version,
        len(x_train),
        training_snapshot.key,
        artifacts_bucket,
        artifact.key,
        artifact.size,
    )
    return artifact


def evaluate_model(
    *,
    s3_training: S3Client,
    s3_artifacts: S3Client,
    training_bucket: str,
    artifacts_bucket: str,
    training_snapshot: ArtifactRef,
    artifact: ArtifactRef,
    region: str,
) -> dict[str, float]:
    """Metrics of the uploaded model on the snapshot's held-out split (the model is re-downloaded
    and verified, so what is measured is exactly what will be served)."""
    _, rows, labels = _load_snapshot(
        s3_training, training_bucket=training_bucket, snapshot=training_snapshot, region=region
    )
    _, x_test, _, y_test = _split(rows, labels)
    model = load_estimator(s3_artifacts, bucket=artifacts_bucket, artifact=artifact, region=region)
    accuracy = float(model.score(x_test, y_test))
    log.info(
        "evaluated s3://%s/%s: accuracy %.4f on %d rows",
        artifacts_bucket,
        artifact.key,
        accuracy,
        len(x_test),
    )
    return {"accuracy": accuracy}


def register_model(
    *,
    s3_artifacts: S3Client,
    artifacts_bucket: str,
    version: str,
    region: str,
    artifact: ArtifactRef,
    training_snapshot: ArtifactRef,
    feature_snapshot: ArtifactRef | None,
    metrics: dict[str, float],
    model_name: str = DEFAULT_MODEL_NAME,
    created_at: datetime | None = None,
) -> ModelMetadata:
    """Write metadata.json, then the manifest: a manifest exists only once all it names does."""
    data = iris()
    metadata = ModelMetadata(
        model_name=model_name,
        version=version,
        created_at=(created_at or utc_now()).isoformat(timespec="seconds"),
        region=region,
        feature_names=data.feature_names,
        target_names=data.target_names,
        example_instance=tuple(golden_set()[0]),
        metrics=dict(metrics),
        artifact=artifact,
        training_snapshot=training_snapshot,
        feature_snapshot=feature_snapshot,
    )
    write_metadata(s3_artifacts, bucket=artifacts_bucket, metadata=metadata, region=region)
    write_manifest(s3_artifacts, bucket=artifacts_bucket, manifest=metadata.manifest(), region=region)
    log.info("registered %s/%s in s3://%s (recovery point written)", model_name, version, artifacts_bucket)
    return metadata


def roll_out(
    *,
    s3_artifacts: S3Client,
    artifacts_bucket: str,
    version: str,
    region: str,
    model_name: str = DEFAULT_MODEL_NAME,
) -> None:
    """Make `version` the one inference servers load (they notice within their reload interval)."""
    write_current(
        s3_artifacts, bucket=artifacts_bucket, model_name=model_name, version=version, region=region
    )


def train_and_publish(
    *,
    s3_training: S3Client,
    s3_features: S3Client,
    s3_artifacts: S3Client,
    training_bucket: str,
    features_bucket: str,
    artifacts_bucket: str,
    region: str,
    model_name: str = DEFAULT_MODEL_NAME,
    version: str | None = None,
    snapshot_id: str | None = None,
) -> ModelMetadata:
    """All steps in one go: snapshot, train, evaluate, register, roll out. Returns the metadata."""
    now = utc_now()
    version = version or default_version(now)
    snapshot = ingest_snapshot(
        s3_training=s3_training,
        s3_features=s3_features,
        training_bucket=training_bucket,
        features_bucket=features_bucket,
        region=region,
        snapshot_id=snapshot_id or default_snapshot_id(now),
    )
    artifact = train_model(
        s3_training=s3_training,
        s3_artifacts=s3_artifacts,
        training_bucket=training_bucket,
        artifacts_bucket=artifacts_bucket,
        training_snapshot=snapshot.training,
        version=version,
        region=region,
        model_name=model_name,
    )
    metrics = evaluate_model(
        s3_training=s3_training,
        s3_artifacts=s3_artifacts,
        training_bucket=training_bucket,
        artifacts_bucket=artifacts_bucket,
        training_snapshot=snapshot.training,
        artifact=artifact,
        region=region,
    )
    metadata = register_model(
        s3_artifacts=s3_artifacts,
        artifacts_bucket=artifacts_bucket,
        version=version,
        region=region,
        artifact=artifact,
        training_snapshot=snapshot.training,
        feature_snapshot=snapshot.features,
        metrics=metrics,
        model_name=model_name,
        created_at=now,
    )
    roll_out(
        s3_artifacts=s3_artifacts,
        artifacts_bucket=artifacts_bucket,
        version=version,
        region=region,
        model_name=model_name,
    )
    return metadata
