"""The model registry's S3 layout and the training pipeline, against moto in-process."""

from __future__ import annotations

import base64
import hashlib
import json
import pickle
from collections.abc import Iterator
from typing import Any, cast

import boto3
import pytest
from moto import mock_aws

from mldr.errors import ArtifactChecksumMismatch, AwsError, RegistryError
from mldr.ml import registry
from mldr.ml.golden import GOLDEN_ROWS, golden_set
from mldr.ml.train import iris, train_and_publish

REGION = "us-east-1"
TRAINING, FEATURES, ARTIFACTS = "mldr-training-data-use1", "mldr-features-use1", "mldr-model-artifacts-use1"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        for bucket in (TRAINING, FEATURES, ARTIFACTS):
            client.create_bucket(Bucket=bucket)
            client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        yield client


def publish(s3: Any, version: str, snapshot_id: str = "snap-1") -> registry.ModelMetadata:
    return train_and_publish(
        s3_training=s3,
        s3_features=s3,
        s3_artifacts=s3,
        training_bucket=TRAINING,
        features_bucket=FEATURES,
        artifacts_bucket=ARTIFACTS,
        region=REGION,
        version=version,
        snapshot_id=snapshot_id,
    )


def body(s3: Any, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def keys(s3: Any, bucket: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_train_and_publish_writes_the_documented_layout(s3: Any) -> None:
    metadata = publish(s3, "v1")

    assert keys(s3, ARTIFACTS) == {
        "models/iris-classifier/v1/model.pkl",
        "models/iris-classifier/v1/metadata.json",
        "manifests/iris-classifier/v1.json",
        "models/iris-classifier/CURRENT",
    }
    assert keys(s3, TRAINING) == {"iris/snapshots/snap-1/data.csv"}
    assert keys(s3, FEATURES) == {"iris/snapshots/snap-1/features.csv"}
    assert json.loads(body(s3, ARTIFACTS, "models/iris-classifier/CURRENT")) == {"version": "v1"}

    doc = json.loads(body(s3, ARTIFACTS, "models/iris-classifier/v1/metadata.json"))
    assert set(doc) == {
        "model_name", "version", "created_at", "region", "feature_names", "target_names",
        "example_instance", "metrics", "artifact", "training_snapshot", "feature_snapshot",
    }  # fmt: skip
    assert doc["region"] == REGION and doc["model_name"] == "iris-classifier" and doc["version"] == "v1"
    assert doc["created_at"].endswith("+00:00")
    assert len(doc["feature_names"]) == len(doc["example_instance"]) == 4
    assert doc["target_names"] == ["setosa", "versicolor", "virginica"]
    assert doc["metrics"]["accuracy"] > 0.85
    assert doc["artifact"]["dataset"] == "model-artifacts"
    assert doc["training_snapshot"]["dataset"] == "training-data"
    assert doc["feature_snapshot"]["dataset"] == "features"

    manifest = json.loads(body(s3, ARTIFACTS, "manifests/iris-classifier/v1.json"))
    assert set(manifest) == {
        "model_name", "version", "created_at", "artifact", "training_snapshot", "feature_snapshot", "metrics",
    }  # fmt: skip
    for name in ("artifact", "training_snapshot", "feature_snapshot", "metrics", "created_at"):
        assert manifest[name] == doc[name]
    assert registry.ModelMetadata.from_dict(doc) == metadata


def test_recorded_hashes_match_the_uploaded_bytes_and_s3_checksums(s3: Any) -> None:
    metadata = publish(s3, "v1")
    buckets = {"model-artifacts": ARTIFACTS, "training-data": TRAINING, "features": FEATURES}
    assert metadata.feature_snapshot is not None
    for ref in (metadata.artifact, metadata.training_snapshot, metadata.feature_snapshot):
        data = body(s3, buckets[ref.dataset], ref.key)
        assert ref.sha256 == hashlib.sha256(data).hexdigest(), ref.key
        assert ref.size == len(data), ref.key
        # S3's stored additional checksum is the same hash: verification can compare without downloading.
        head = s3.head_object(Bucket=buckets[ref.dataset], Key=ref.key, ChecksumMode="ENABLED")
        assert base64.b64decode(head["ChecksumSHA256"]).hex() == ref.sha256, ref.key
    for key in keys(s3, ARTIFACTS):
        head = s3.head_object(Bucket=ARTIFACTS, Key=key, ChecksumMode="ENABLED")
        assert "ChecksumSHA256" in head, key


def test_read_functions_round_trip(s3: Any) -> None:
    assert registry.read_current(s3, bucket=ARTIFACTS) is None
    first = publish(s3, "v1")
    second = publish(s3, "v2", snapshot_id="snap-2")

    assert registry.read_current(s3, bucket=ARTIFACTS) == "v2"
    assert registry.read_metadata(s3, bucket=ARTIFACTS, version="v1") == first
    assert registry.read_manifest(s3, bucket=ARTIFACTS, version="v2") == second.manifest()
    listed = registry.list_manifests(s3, bucket=ARTIFACTS)
    assert [m.version for m in listed] == ["v1", "v2"]
    assert registry.list_manifests(s3, bucket=ARTIFACTS, model_name="other-model") == []
    assert second.manifest().refs == (second.artifact, second.training_snapshot, second.feature_snapshot)


class SmallPages:
    """The S3 client with list pages of two keys, so pagination is exercised with a handful of objects."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.pages = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.s3, name)

    def get_paginator(self, operation: str) -> Any:
        paginator = self.s3.get_paginator(operation)
        outer = self

        class Paginator:
            def paginate(self, **kwargs: Any) -> Iterator[Any]:
                for page in paginator.paginate(**kwargs, PaginationConfig={"PageSize": 2}):
                    outer.pages += 1
                    yield page

        return Paginator()


def test_list_manifests_paginates(s3: Any) -> None:
    template = publish(s3, "v0").manifest().to_dict()
    for i in range(1, 5):
        doc = {**template, "version": f"v{i}"}
        s3.put_object(Bucket=ARTIFACTS, Key=f"manifests/iris-classifier/v{i}.json", Body=json.dumps(doc))
    client = SmallPages(s3)
    listed = registry.list_manifests(cast(Any, client), bucket=ARTIFACTS, model_name="iris-classifier")
    assert [m.version for m in listed] == ["v0", "v1", "v2", "v3", "v4"]
    assert client.pages == 3


def test_load_estimator_accepts_the_published_model(s3: Any) -> None:
    metadata = publish(s3, "v1")
    model = registry.load_estimator(s3, bucket=ARTIFACTS, artifact=metadata.artifact)
    assert len(model.predict(golden_set())) == 12


def test_load_estimator_rejects_a_tampered_model(s3: Any) -> None:
    metadata = publish(s3, "v1")
    tampered = pickle.dumps({"not": "the model"})
    s3.put_object(Bucket=ARTIFACTS, Key=metadata.artifact.key, Body=tampered)

    with pytest.raises(
        ArtifactChecksumMismatch, match=r"models/iris-classifier/v1/model\.pkl.*does not match"
    ):
        registry.load_estimator(s3, bucket=ARTIFACTS, artifact=metadata.artifact)


def test_missing_and_malformed_documents_give_clear_errors(s3: Any) -> None:
    with pytest.raises(AwsError, match="NoSuchKey"):
        registry.read_metadata(s3, bucket=ARTIFACTS, version="v404")
    s3.put_object(Bucket=ARTIFACTS, Key="models/iris-classifier/CURRENT", Body=b'{"ver": 1}')
    with pytest.raises(RegistryError, match="CURRENT"):
        registry.read_current(s3, bucket=ARTIFACTS)
    s3.put_object(Bucket=ARTIFACTS, Key="manifests/iris-classifier/bad.json", Body=b'{"model_name": "x"}')
    with pytest.raises(RegistryError, match=r"bad\.json: field 'version' is missing"):
        registry.list_manifests(s3, bucket=ARTIFACTS)


def test_golden_set_predictions_are_deterministic_across_trainings(s3: Any) -> None:
    first = publish(s3, "v1", snapshot_id="snap-1")
    second = publish(s3, "v2", snapshot_id="snap-2")
    assert first.training_snapshot.sha256 == second.training_snapshot.sha256

    golden = golden_set()
    assert golden == [list(iris().rows[i]) for i in GOLDEN_ROWS], "the written-out rows are iris'"
    assert [iris().labels[i] for i in GOLDEN_ROWS] == [0] * 4 + [1] * 4 + [2] * 4
    a = registry.load_estimator(s3, bucket=ARTIFACTS, artifact=first.artifact).predict(golden)
    b = registry.load_estimator(s3, bucket=ARTIFACTS, artifact=second.artifact).predict(golden)
    assert list(a) == list(b)
    # Four rows of each class, and a sane model gets nearly all of them right.
    assert sum(int(p) == i // 4 for i, p in enumerate(a)) >= 11
