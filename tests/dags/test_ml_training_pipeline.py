"""`ml_training_pipeline` with `dag.test()` in the sandbox: it writes to whichever region the DR lease
says is active, before and after a failover, and refuses a fenced region, naming the fence."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.cloud.control import Lease
from mldr.errors import ActiveRegionChanged, SimulatedCrash, WriteFenced
from mldr.ml import pipeline
from mldr.ml.registry import (
    ARTIFACTS_DATASET,
    DEFAULT_MODEL_NAME,
    list_manifests,
    read_current,
    read_metadata,
)
from mldr.runbooks.engine import CRASH_AFTER_ENV, OperationRecord, OperationStatus
from mldr.runbooks.operations import execute, open_operation
from mldr.runbooks.params import Mode, OperationParams
from mldr.sandbox.manager import Sandbox
from mldr.topology import Topology, load_topology

pytestmark = pytest.mark.sandbox

DAG_ID = "ml_training_pipeline"
TASKS = ["resolve_region", "ingest", "train", "evaluate", "register", "roll_out"]


@pytest.fixture
def topology(sandbox: Sandbox) -> Topology:
    return load_topology(use_airflow=False)


@pytest.fixture
def factory(topology: Topology) -> ClientFactory:
    return ClientFactory.from_environment(topology)


def lease(factory: ClientFactory) -> Lease:
    return AwsCloud(factory).control().read_lease()


def operate(
    topology: Topology, factory: ClientFactory, kind: str, target: str, *, resume: str | None = None
) -> OperationRecord:
    params = OperationParams(
        kind=kind,
        target_region=target,
        mode=Mode.PLANNED,
        reason=f"ml pipeline test: {kind} to {target}",
        requested_by="pytest",
        require_approval=False,
    )
    return execute(
        open_operation(topology, AwsCloud(factory), params, operation_id=resume, resume=resume is not None)
    )


@pytest.fixture
def back_on_primary(topology: Topology, factory: ClientFactory) -> Iterator[None]:
    """Start on the primary; leave the shared sandbox there, unfenced, whatever the test did."""
    assert lease(factory).active_region == topology.primary_region
    yield
    os.environ.pop(CRASH_AFTER_ENV, None)
    current = lease(factory)
    if current.operation or current.fenced_regions or current.active_region != topology.primary_region:
        op = current.operation
        if op is not None:  # a crashed operation: finish it first (explicitly), as an operator would
            operate(topology, factory, op.kind, op.target, resume=op.id)
        if lease(factory).active_region != topology.primary_region or lease(factory).fenced_regions:
            operate(topology, factory, "failback", topology.primary_region)
    assert lease(factory).active_region == topology.primary_region


def served_model(factory: ClientFactory, topology: Topology, region: str, model: str) -> tuple[str, Any]:
    """(CURRENT version, its metadata) in `region`'s model-artifacts bucket."""
    s3 = factory.client("s3", region)
    bucket = topology.dataset(ARTIFACTS_DATASET).buckets[region]
    version = read_current(s3, bucket=bucket, model_name=model, region=region)
    assert version is not None, f"nothing rolled out in {region}"
    return version, read_metadata(s3, bucket=bucket, model_name=model, version=version, region=region)


def run_pipeline(dag: Any, model: str) -> Any:
    return dag.test(run_conf={"model_name": model, "rollout_wait_seconds": 30})


def test_trains_and_rolls_out_in_the_active_region_and_refuses_a_fenced_one(
    topology: Topology,
    factory: ClientFactory,
    dagbag: Any,
    task_states: Any,
    back_on_primary: None,
) -> None:
    dag = dagbag.dags[DAG_ID]
    primary, secondary = topology.primary_region, topology.secondary_region
    # the model the sandbox's inference servers serve, so the roll-out is confirmed by them
    model = DEFAULT_MODEL_NAME

    # 1. on the primary
    first = run_pipeline(dag, model)
    assert str(first.state) == "success", task_states(first)
    version, metadata = served_model(factory, topology, primary, model)
    assert version == pipeline.RunNames.for_run(first.run_after).version
    assert metadata.region == primary and metadata.metrics["accuracy"] >= 0.9
    manifests = list_manifests(
        factory.client("s3", primary),
        bucket=topology.dataset(ARTIFACTS_DATASET).buckets[primary],
        model_name=model,
        region=primary,
    )
    point = next(m for m in manifests if m.version == version)
    assert point.training_snapshot == metadata.training_snapshot and point.artifact == metadata.artifact

    # 2. after a failover: the next run works in the new region, with no config change
    assert operate(topology, factory, "failover", secondary).status is OperationStatus.COMPLETED
    second = run_pipeline(dag, model)
    assert str(second.state) == "success", task_states(second)
    new_version, new_metadata = served_model(factory, topology, secondary, model)
    assert new_version == pipeline.RunNames.for_run(second.run_after).version != version
    assert new_metadata.region == secondary, "trained and registered in the active region"
    assert new_metadata.training_snapshot.key != metadata.training_snapshot.key, "a new snapshot"
    # a step that still targets the old region stops instead of splitting a run across two regions
    with pytest.raises(ActiveRegionChanged, match=f"from {primary} to {secondary}"):
        pipeline.ingest(factory, topology, region=primary, snapshot_id="stale-run")

    # 3. a failback that stopped after fencing the active region: the run refuses to write
    os.environ[CRASH_AFTER_ENV] = "freeze"
    try:
        with pytest.raises(SimulatedCrash):
            operate(topology, factory, "failback", primary)
    finally:
        del os.environ[CRASH_AFTER_ENV]
    # both refuse writes: the primary stays fenced until failback_switch (issue 14 item 6)
    assert lease(factory).active_region == secondary and lease(factory).fenced_regions == (secondary, primary)
    fenced = run_pipeline(dag, model)
    states = task_states(fenced)
    assert str(fenced.state) == "failed", states
    assert states["resolve_region"] == "failed"
    assert all(states[t] == "upstream_failed" for t in TASKS[1:]), states
    assert served_model(factory, topology, secondary, model)[0] == new_version, "nothing was rolled out"
    with pytest.raises(WriteFenced) as refused:
        pipeline.resolve_region(factory, topology)
    message = str(refused.value)
    assert f"active region {secondary} is fenced" in message
    assert "MldrWriteFence" in message and topology.dataset(ARTIFACTS_DATASET).buckets[secondary] in message
    assert "failback" in message, "names the operation holding the fence"
