"""Replication lag against the sandbox: the canary measures the replicator's lag, a paused
replication breaches once its oldest pending object passes the threshold, metrics are published."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mldr.checks.metrics import NAMESPACE
from mldr.checks.replication import CANARY_PREFIX, LagOptions, clean_canaries, measure_lag
from mldr.checks.replication_status import status_source
from mldr.cli import main
from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.sandbox.manager import Sandbox, SandboxState
from mldr.topology import Topology, load_topology
from tests.admin import admin_client
from tests.dp_support import scoped, unique_prefix, wait_quiet, write_topology

pytestmark = pytest.mark.sandbox

SET_LAG = 3.0


@pytest.fixture
def topology(sandbox: Sandbox) -> Topology:
    return load_topology(use_airflow=False)


@pytest.fixture
def factory(topology: Topology) -> ClientFactory:
    return ClientFactory.from_environment(topology)


@pytest.fixture
def clean_faults(sandbox: Sandbox) -> Iterator[None]:
    yield
    sandbox.replication("clear")  # also sets the lag back to the default 1 s


def test_measured_lag_is_the_replicators_lag_and_is_published(
    sandbox: Sandbox,
    sandbox_state: SandboxState,
    topology: Topology,
    factory: ClientFactory,
    clean_faults: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wait_quiet(sandbox, factory, topology)
    sandbox.replication("lag", SET_LAG)
    code = main(["lag", "--dataset", "features", "--dataset", "model-artifacts", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0, json.dumps(doc, indent=1)
    for d in doc["datasets"]:
        assert d["ok"], d["problems"]
        # the canary is readable after the replicator's lag plus its 0.1 s change-feed poll, the copy
        # and our 0.1 s HEAD poll: within a second of the configured lag
        assert abs(d["lag_seconds"] - SET_LAG) <= 1.0, d["canary"]
        assert (d["pending_objects"], d["pending_bytes"], d["failed_objects"]) == (0, 0, 0)
        assert d["oldest_pending_age_seconds"] is None
        assert d["canary"]["key"].startswith(CANARY_PREFIX)
    assert set(doc["reports"]) == set(topology.region_names)
    # the CloudWatch series exist in both regions, per dataset
    for region in topology.region_names:
        metrics = admin_client(sandbox_state, "cloudwatch", region).list_metrics(Namespace=NAMESPACE)[
            "Metrics"
        ]
        names = {
            (m["MetricName"], {x["Name"]: x["Value"] for x in m["Dimensions"]}["Dataset"]) for m in metrics
        }
        for dataset in ("features", "model-artifacts"):
            for metric in ("ReplicationLagSeconds", "PendingObjects", "PendingBytes", "FailedObjects"):
                assert (metric, dataset) in names, f"{metric} of {dataset} missing in {region}"
    # canaries do not pile up: old ones are deleted from both buckets - with delete markers, the
    # DR operator never destroys a version (infra's lifecycle rule for _mldr/ expires them)
    features = topology.dataset("features")
    assert clean_canaries(AwsCloud(factory), features, regions=topology.region_names, older_than=0.0) >= 2
    for region in topology.region_names:
        s3 = admin_client(sandbox_state, "s3", region)
        current = s3.list_objects_v2(Bucket=features.buckets[region], Prefix=CANARY_PREFIX)
        assert not current.get("Contents"), f"canaries left in {region}: {current.get('Contents')}"
        history = s3.list_object_versions(Bucket=features.buckets[region], Prefix=CANARY_PREFIX)
        assert history.get("Versions") and history.get("DeleteMarkers"), "the history was destroyed"


def test_paused_replication_breaches_once_the_oldest_pending_object_passes_the_threshold(
    sandbox: Sandbox,
    topology: Topology,
    factory: ClientFactory,
    clean_faults: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = unique_prefix("lag")
    mine = scoped(topology, "training-data", prefix)
    ds = mine.dataset("training-data")
    threshold = 8.0  # margin: the first check must read the backlog within 8 s of the write
    options = LagOptions(threshold_seconds=threshold, canary_timeout_seconds=1.0)
    sandbox.replication("pause")
    key = f"{prefix}waiting.bin"
    factory.client("s3", topology.primary_region).put_object(
        Bucket=ds.buckets[topology.primary_region], Key=key, Body=b"x" * 1234
    )
    written = time.monotonic()
    time.sleep(0.5)  # the replicator records the write (change feed polled every 0.1 s)

    # young: pending, but not a breach yet; the canary did not arrive within its 1 s (< threshold)
    [young] = measure_lag(AwsCloud(factory), mine, datasets=["training-data"], options=options).datasets
    assert young.ok, young.problems()
    assert (young.pending_objects, young.pending_bytes) == (1, 1234)
    assert young.canary is not None and young.canary.timed_out and young.lag_seconds is None
    assert young.oldest_pending_age_seconds is not None and young.oldest_pending_age_seconds < threshold

    time.sleep(max(0.0, threshold + 1.5 - (time.monotonic() - written)))
    [late] = measure_lag(AwsCloud(factory), mine, datasets=["training-data"], options=options).datasets
    assert not late.ok
    [problem] = late.problems()
    assert problem.startswith(
        "training-data: 1 object(s) (1234 bytes) not replicated to us-west-2; the oldest"
    )
    assert key in problem and "over the threshold 8s, RPO 60s" in problem
    assert late.to_dict()["over_by_seconds"] > 0

    # the CLI twin fails the same way, exit code 1
    monkeypatch.setenv("MLDR_TOPOLOGY", str(write_topology(mine, tmp_path)))
    code = main(
        [
            "lag",
            "--dataset",
            "training-data",
            "--threshold",
            "8",
            "--canary-timeout",
            "1",
            "--json",
            "--no-report",
        ]
    )
    captured = capsys.readouterr()
    doc: dict[str, Any] = json.loads(captured.out)
    assert code == 1
    [d] = doc["datasets"]
    assert (d["name"], d["ok"], d["pending_objects"], d["pending_bytes"]) == ("training-data", False, 1, 1234)
    assert d["oldest_pending_age_seconds"] > threshold
    assert "replication-lag.md" in captured.err

    # resumed: the backlog drains and the check passes again
    sandbox.replication("resume")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        [again] = measure_lag(
            AwsCloud(factory),
            mine,
            datasets=["training-data"],
            options=LagOptions(threshold_seconds=threshold, canary_timeout_seconds=3.0),
        ).datasets
        if again.ok and again.pending_objects == 0:
            break
        time.sleep(0.5)
    assert again.ok and again.lag_seconds is not None, again.problems()


def test_a_write_acknowledged_just_before_its_region_stops_is_in_the_backlog(
    sandbox: Sandbox, topology: Topology, factory: ClientFactory, clean_faults: None
) -> None:
    """S3 marks a version PENDING when it acknowledges the write. An unplanned failover reports
    the data at risk from the backlog, so a write the client saw succeed must be in it even when
    the region stops the next instant, before any poll of the change feed."""
    primary = topology.primary_region
    bucket = topology.dataset("training-data").buckets[primary]
    prefix = unique_prefix("acked")
    sandbox.replication("pause")
    s3 = factory.client("s3", primary)
    written = [
        s3.put_object(Bucket=bucket, Key=f"{prefix}{i}.bin", Body=b"x" * (100 + i))["VersionId"]
        for i in range(5)
    ]
    sandbox.region_outage(primary)  # no sleep: the region stops right after the last answer
    try:
        backlog = status_source(topology, AwsCloud(factory)).backlog(region=primary, bucket=bucket)
    finally:
        sandbox.heal(primary)
    mine = {(i.key, i.version_id, i.size) for i in backlog if i.key.startswith(prefix)}
    assert mine == {(f"{prefix}{i}.bin", v, 100 + i) for i, v in enumerate(written)}


def test_a_source_region_outage_breaches_within_seconds_and_the_report_lands_in_the_other_region(
    sandbox: Sandbox, topology: Topology, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lag check runs every five minutes; with the source region down it must say so at once,
    not after each dataset's canary write and each copy of the report has waited out its retries."""
    primary, secondary = topology.primary_region, topology.secondary_region
    sandbox.region_outage(primary)
    try:
        started = time.monotonic()
        code = main(["lag", "--json"])
        took = time.monotonic() - started
    finally:
        sandbox.heal(primary)
        # the outage outlasted the edge's detection window: wait for DNS to answer the primary
        # again, as the tests after this one expect of the shared sandbox
        deadline = time.monotonic() + 30
        while sandbox.status()["dns_answer"] != primary and time.monotonic() < deadline:
            time.sleep(0.2)
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    for d in doc["datasets"]:
        assert not d["ok"]
        assert primary in d["canary"]["error"], d["canary"]
    assert set(doc["reports"]) == {secondary}, "the report is kept where it can be"
    assert took < 15, f"a source outage should be reported within seconds, took {took:.1f}s"
