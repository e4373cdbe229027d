"""The per-region inference server: health, prediction, input validation, model rollout."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from fastapi.testclient import TestClient
from moto import mock_aws

from mldr.ml.golden import golden_set
from mldr.ml.train import train_and_publish
from mldr.sandbox.inference import REGION_HEADER, create_app

REGION = "us-west-2"
TRAINING, FEATURES, ARTIFACTS = "mldr-training-data-usw2", "mldr-features-usw2", "mldr-model-artifacts-usw2"


class S3Stub:
    """The moto client, with a switch that makes head_bucket fail as a stopped region would."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.down = False
        self.head_calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.s3, name)

    def head_bucket(self, **kwargs: Any) -> Any:
        self.head_calls += 1
        if self.down:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        return self.s3.head_bucket(**kwargs)


@contextmanager
def mocked_s3() -> Iterator[S3Stub]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            monkeypatch.setenv(name, value)
        with mock_aws():
            client: Any = boto3.client("s3", region_name=REGION)
            for bucket in (TRAINING, FEATURES, ARTIFACTS):
                client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
            yield S3Stub(client)


@pytest.fixture
def s3() -> Iterator[S3Stub]:
    with mocked_s3() as stub:
        yield stub


def publish(s3: Any, version: str) -> None:
    train_and_publish(
        s3_training=s3,
        s3_features=s3,
        s3_artifacts=s3,
        training_bucket=TRAINING,
        features_bucket=FEATURES,
        artifacts_bucket=ARTIFACTS,
        region=REGION,
        version=version,
        snapshot_id=f"snap-{version}",
    )


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.05)


@pytest.fixture
def client(s3: S3Stub) -> Iterator[TestClient]:
    """A server whose bucket is still empty: it has to wait for a model to appear."""
    app = create_app(
        region=REGION, s3_client=s3, bucket=ARTIFACTS, reload_seconds=0.1, health_cache_seconds=0.0
    )
    with TestClient(app) as c:
        yield c


@pytest.fixture
def served(s3: S3Stub, client: TestClient) -> TestClient:
    publish(s3, "v1")
    wait_for(lambda: client.get("/healthz").status_code == 200)
    return client


def test_healthz_is_503_until_a_model_is_rolled_out(s3: S3Stub, client: TestClient) -> None:
    wait_for(lambda: "does not exist yet" in client.get("/healthz").json()["reason"])
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy" and body["region"] == REGION
    assert "CURRENT does not exist yet" in body["reason"]
    assert client.post("/predict", json={"instances": golden_set()}).status_code == 503
    assert client.get("/model").status_code == 503

    publish(s3, "v1")
    wait_for(lambda: client.get("/healthz").status_code == 200)
    assert client.get("/healthz").json() == {"status": "ok", "region": REGION, "model_version": "v1"}


def test_healthz_is_503_when_the_regions_s3_does_not_answer(s3: S3Stub, served: TestClient) -> None:
    s3.down = True
    response = served.get("/healthz")
    assert response.status_code == 503
    assert "S3 does not answer" in response.json()["reason"]
    assert ARTIFACTS in response.json()["reason"]
    s3.down = False
    assert served.get("/healthz").status_code == 200


def test_storage_probe_is_cached_for_a_burst(s3: S3Stub) -> None:
    publish(s3, "v1")
    app = create_app(
        region=REGION, s3_client=s3, bucket=ARTIFACTS, reload_seconds=0.1, health_cache_seconds=30
    )
    with TestClient(app) as c:
        wait_for(lambda: c.get("/healthz").status_code == 200)
        before = s3.head_calls
        for _ in range(20):
            assert c.get("/healthz").status_code == 200
        assert s3.head_calls == before


def test_predict_returns_classes_region_and_version(served: TestClient) -> None:
    response = served.post("/predict", json={"instances": golden_set()})
    assert response.status_code == 200
    body = response.json()
    assert body["region"] == REGION and body["model_version"] == "v1"
    assert len(body["predictions"]) == 12
    assert all(isinstance(p, int) and p in (0, 1, 2) for p in body["predictions"])
    assert body["predictions"][:4] == [0, 0, 0, 0]  # the golden set starts with four setosas


def test_model_describes_what_is_served(served: TestClient) -> None:
    body = served.get("/model").json()
    assert body["model_name"] == "iris-classifier" and body["version"] == "v1" and body["region"] == REGION
    assert len(body["feature_names"]) == 4
    prediction = served.post("/predict", json={"instances": [body["example_instance"]]})
    assert prediction.status_code == 200


class TestInputValidation:
    """Many malformed requests against one served model (training per case would be slow)."""

    @pytest.fixture(scope="class")
    def shared(self) -> Iterator[TestClient]:
        with mocked_s3() as s3:
            publish(s3, "v1")
            app = create_app(region=REGION, s3_client=s3, bucket=ARTIFACTS, reload_seconds=0.1)
            with TestClient(app) as c:
                wait_for(lambda: c.get("/healthz").status_code == 200)
                yield c

    @pytest.mark.parametrize(
        ("payload", "reason"),
        [
            (b"not json", "not valid JSON"),
            (b"[1, 2]", '"instances"'),
            (b'{"inputs": [[1, 2, 3, 4]]}', '"instances"'),
            (b'{"instances": "1,2,3,4"}', "list of lists"),
            (b'{"instances": [1, 2, 3, 4]}', "instances[0] must be a list"),
            (b'{"instances": [[1, 2, 3]]}', "instances[0] has 3 features; the model expects 4"),
            (b'{"instances": [[1, 2, 3, 4], [1, 2, 3, 4, 5]]}', "instances[1] has 5 features"),
            (b'{"instances": [[1, 2, "x", 4]]}', "instances[0][2] is not a number"),
            (b'{"instances": [[1, 2, null, 4]]}', "instances[0][2] is not a number"),
            (b'{"instances": [[1, true, 3, 4]]}', "instances[0][1] is not a number"),
            (b'{"instances": [[1, 2, 3, NaN]]}', "instances[0][3] is not a finite number"),
            (b'{"instances": [[1, 2, 3, Infinity]]}', "instances[0][3] is not a finite number"),
            (b'{"instances": []}', "empty"),
            (b'{"instances": [' + b",".join([b"[1, 2, 3, 4]"] * 1001) + b"]}", "1001 rows; at most 1000"),
        ],
    )
    def test_malformed_input_is_a_400_with_a_reason(
        self, shared: TestClient, payload: bytes, reason: str
    ) -> None:
        response = shared.post("/predict", content=payload, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, response.text
        assert reason in response.json()["error"]
        assert response.headers[REGION_HEADER] == REGION

    def test_exactly_1000_instances_are_accepted(self, shared: TestClient) -> None:
        response = shared.post("/predict", json={"instances": [golden_set()[0]] * 1000})
        assert response.status_code == 200
        assert len(response.json()["predictions"]) == 1000


def test_every_response_carries_the_region_header(client: TestClient, s3: S3Stub) -> None:
    assert client.get("/healthz").headers[REGION_HEADER] == REGION  # 503
    assert client.get("/no-such-path").headers[REGION_HEADER] == REGION  # 404
    assert client.get("/predict").headers[REGION_HEADER] == REGION  # 405
    publish(s3, "v1")
    wait_for(lambda: client.get("/healthz").status_code == 200)
    for response in (
        client.get("/healthz"),
        client.get("/model"),
        client.post("/predict", json={"instances": golden_set()}),
    ):
        assert response.headers[REGION_HEADER] == REGION


def test_a_rollout_is_picked_up_after_reload(s3: S3Stub, served: TestClient) -> None:
    publish(s3, "v2")
    wait_for(lambda: served.get("/healthz").json().get("model_version") == "v2")
    assert served.get("/model").json()["version"] == "v2"
    assert served.post("/predict", json={"instances": golden_set()}).json()["model_version"] == "v2"


def test_a_broken_rollout_keeps_the_previous_model_serving(s3: S3Stub, served: TestClient) -> None:
    # CURRENT replicated ahead of the model it names (or pointing at garbage): keep serving v1.
    s3.put_object(Bucket=ARTIFACTS, Key="models/iris-classifier/CURRENT", Body=b'{"version": "v9"}')
    loader = served.app.state.loader  # type: ignore[attr-defined]
    wait_for(lambda: loader.problem is not None and "v9" in loader.problem)
    assert "still serving v1" in loader.problem
    assert served.get("/healthz").json()["model_version"] == "v1"
    assert served.post("/predict", json={"instances": golden_set()}).json()["model_version"] == "v1"


def test_next_tasks_follow_the_services_desired_count() -> None:
    from mldr.sandbox.capacity import Tasks, next_tasks, tasks_problem

    first = next_tasks(None, 2, now=100.0, scale_up_seconds=30)
    assert first == Tasks(2, 100.0) and tasks_problem(first, now=100.0) is None, "started with its tasks"
    pilot = next_tasks(first, 0, now=101.0, scale_up_seconds=30)
    assert "0 tasks running" in (tasks_problem(pilot, now=1e9) or ""), "0 tasks never answer"
    scaled = next_tasks(pilot, 2, now=110.0, scale_up_seconds=30)
    assert scaled.ready_at == 140.0
    assert "serving in 5.0s" in (tasks_problem(scaled, now=135.0) or "")
    assert tasks_problem(next_tasks(scaled, 2, now=139.0, scale_up_seconds=30), now=140.0) is None
    warm = next_tasks(Tasks(1, 50.0), 2, now=200.0, scale_up_seconds=30)
    assert tasks_problem(warm, now=200.0) is None, "a warm standby serves while it grows"
    assert tasks_problem(None, now=0.0) is None, "a service not read yet does not silence the server"


def test_a_pilot_light_answers_nothing_until_scaled_up_and_its_tasks_started(s3: S3Stub) -> None:
    from mldr.sandbox.capacity import SCALE_UP_TAG, TasksWatcher

    ecs: Any = boto3.client("ecs", region_name=REGION)
    ecs.create_cluster(clusterName="mldr-inference")
    ecs.register_task_definition(
        family="mldr-inference", containerDefinitions=[{"name": "i", "image": "x", "memory": 512}]
    )
    scale_up = 2.0
    ecs.create_service(
        cluster="mldr-inference",
        serviceName="inference",
        taskDefinition="mldr-inference",
        desiredCount=0,
        tags=[{"key": SCALE_UP_TAG, "value": str(scale_up)}],
    )
    watcher = TasksWatcher(
        region=REGION, ecs_client=ecs, cluster="mldr-inference", service="inference", poll_seconds=0.05
    )
    app = create_app(region=REGION, s3_client=s3, bucket=ARTIFACTS, reload_seconds=0.1, tasks=watcher)
    with TestClient(app) as client:
        wait_for(lambda: watcher.tasks is not None)
        for response in (
            client.get("/healthz"),
            client.post("/predict", json={"instances": golden_set()}),
            client.get("/model"),
        ):
            assert response.status_code == 503 and "pilot light" in response.json()["error"]
            assert response.headers[REGION_HEADER] == REGION

        # (no model is rolled out here: once the tasks serve, /healthz itself answers, with its reason)
        ecs.update_service(cluster="mldr-inference", service="inference", desiredCount=2)
        scaled_at = time.monotonic()
        wait_for(lambda: "status" in client.get("/healthz").json())
        assert time.monotonic() - scaled_at >= scale_up, "new tasks take the configured start-up time"
        assert "does not exist yet" in client.get("/healthz").json()["reason"]

        ecs.update_service(cluster="mldr-inference", service="inference", desiredCount=0)
        wait_for(lambda: "pilot light" in client.get("/healthz").json().get("error", ""))
