"""`dr_backup_verification` and `dr_replication_lag`: house rules, and real runs with `dag.test()`
against the sandbox - healthy, a breach (failed task, SNS alert, report, XCom, asset event), bad input."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from mldr.cloud.aws.clients import ClientFactory
from mldr.sandbox.manager import Sandbox, SandboxState
from mldr.topology import Topology, load_topology
from tests.admin import admin_client
from tests.dp_support import ops_keys, wait_quiet
from tests.pager import listen_on_alerts

RUNBOOKS = Path(__file__).parents[2] / "runbooks"
DAGS = {"dr_backup_verification": "backup-verification-failed.md", "dr_replication_lag": "replication-lag.md"}


def xcoms(run: Any, task_id: str) -> dict[int, Any]:
    """{map_index: return value} of one task of a finished run."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(XComModel)
            .filter(
                XComModel.dag_id == run.dag_id,
                XComModel.run_id == run.run_id,
                XComModel.task_id == task_id,
                XComModel.key == "return_value",
            )
            .all()
        )
        return {r.map_index: json.loads(r.value) if isinstance(r.value, str) else r.value for r in rows}


def asset_events(run: Any, asset_name: str) -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        events = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.name == asset_name, AssetEvent.source_run_id == run.run_id)
            .all()
        )
        return [dict(e.extra) for e in events]


def mapped_states(run: Any) -> dict[tuple[str, int], str]:
    return {(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}


@pytest.fixture
def topology(sandbox: Sandbox) -> Topology:
    return load_topology(use_airflow=False)


@pytest.fixture
def factory(topology: Topology) -> ClientFactory:
    return ClientFactory.from_environment(topology)


def test_dags_follow_the_house_rules(dagbag: Any) -> None:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    for dag_id, runbook in DAGS.items():
        dag = dagbag.dags[dag_id]
        assert dag.doc_md == (RUNBOOKS / runbook).read_text(), f"{dag_id}: doc_md is the runbook"
        assert dag.max_active_runs == 1 and not dag.catchup
        assert {"mldr", "data-protection"} <= set(dag.tags)
        for task in dag.tasks:
            assert task.owner not in (None, "", "airflow")
            assert task.retries == 1 and task.retry_policy is not None
        mapped = [t.task_id for t in dag.tasks if isinstance(t, MappedOperator)]
        assert len(mapped) == 2, f"{dag_id}: one check and one judgement task per dataset, mapped"
        for name in dag.params:
            param = dag.params.get_param(name)
            assert param.schema.get("title") and param.schema.get("type") and param.description, name
    verification = dagbag.dags["dr_backup_verification"].params
    assert verification.get_param("sample_size").schema["minimum"] == 0
    assert verification.get_param("mode").schema["enum"] == ["full", "sampled"]
    assert dagbag.dags["dr_replication_lag"].timetable.expression == "*/5 * * * *"


def test_healthy_sandbox_both_dags_succeed(
    sandbox: Sandbox, dagbag: Any, topology: Topology, factory: ClientFactory
) -> None:
    wait_quiet(sandbox, factory, topology)
    names = [d.name for d in topology.datasets]

    run = dagbag.dags["dr_backup_verification"].test(run_conf={"sample_size": 2})
    assert str(run.state) == "success", mapped_states(run)
    results = xcoms(run, "verify")
    assert sorted(r["name"] for r in results.values()) == sorted(names)
    for result in results.values():
        assert result["ok"] and result["objects_checked"] > 0 and result["problems"] == []
        assert set(result["reports"]) == set(topology.region_names)
        assert all(uri.endswith(".html") for uri in result["reports"].values())
    events = asset_events(run, "mldr_backup_verification_report")
    assert sorted(e["dataset"] for e in events) == sorted(names) and all(e["ok"] for e in events)
    rendered = {ti.rendered_map_index for ti in run.get_task_instances() if ti.task_id == "verify"}
    assert rendered == set(names), "each mapped task is labelled with its dataset"

    lag = dagbag.dags["dr_replication_lag"].test()
    assert str(lag.state) == "success", mapped_states(lag)
    measured = xcoms(lag, "measure_lag")
    assert sorted(r["name"] for r in measured.values()) == sorted(names)
    for result in measured.values():
        assert result["ok"] and result["lag_seconds"] is not None and result["pending_objects"] == 0
    assert len(asset_events(lag, "mldr_replication_lag_report")) == len(names)


def test_a_breach_fails_the_run_alerts_and_keeps_the_report(
    sandbox: Sandbox, sandbox_state: SandboxState, dagbag: Any, topology: Topology, factory: ClientFactory
) -> None:
    primary, secondary = topology.primary_region, topology.secondary_region
    # listen on the alert topic: an SQS queue subscribed to it receives what on-call would
    sqs, queue_url = listen_on_alerts(sandbox_state, topology, primary)

    features = topology.dataset("features")
    extra = f"dp-dag-{uuid.uuid4().hex[:8]}/only-in-standby.csv"
    dst = factory.client("s3", secondary)
    written = dst.put_object(Bucket=features.buckets[secondary], Key=extra, Body=b"x,y\n")
    try:
        run = dagbag.dags["dr_backup_verification"].test(
            run_conf={"datasets": ["features"], "sample_size": 0}
        )
    finally:
        # undone for good, as the admin: the DR operator may not delete a version
        admin_client(sandbox_state, "s3", secondary).delete_object(
            Bucket=features.buckets[secondary], Key=extra, VersionId=written["VersionId"]
        )

    states = mapped_states(run)
    assert str(run.state) == "failed"
    assert states[("verify", 0)] == "success", "the check itself worked and kept its report"
    assert states[("assert_verified", 0)] == "failed"
    [summary] = xcoms(run, "verify").values()
    assert (summary["name"], summary["ok"], summary["extra"], summary["extra_count"]) == (
        "features",
        False,
        [extra],
        1,
    )
    [event] = asset_events(run, "mldr_backup_verification_report")
    assert event["ok"] is False and event["extra"] == 1 and set(event["reports"]) == {primary, secondary}

    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2)["Messages"]
    [alert] = [json.loads(m["Body"]) for m in messages]
    assert alert["Subject"] == "[mldr] backup verification FAILED: features"
    body = alert["Message"]
    assert f"features: 1 extra: {extra}" in body
    assert "runbooks/backup-verification-failed.md" in body
    assert summary["reports"][primary] in body


def test_bad_input_fails_clearly_and_writes_nothing(
    sandbox: Sandbox, sandbox_state: SandboxState, dagbag: Any, topology: Topology, factory: ClientFactory
) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    dag = dagbag.dags["dr_backup_verification"]
    before = ops_keys(factory, topology)
    pagers = {region: listen_on_alerts(sandbox_state, topology, region) for region in topology.region_names}
    with pytest.raises(ParamValidationError, match="sample_size"):
        dag.test(run_conf={"sample_size": -1})
    with pytest.raises(ParamValidationError, match="mode"):
        dag.test(run_conf={"mode": "everything"})
    run = dag.test(run_conf={"datasets": ["no-such-dataset"]})
    states = mapped_states(run)
    assert str(run.state) == "failed"
    assert states[("select_datasets", -1)] == "failed"
    assert ops_keys(factory, topology) == before, "nothing was checked, so no report either"
    # the DAG's failure notifier pages on-call in every region: DAG, task, run, error, runbook
    for region, (sqs, queue_url) in pagers.items():
        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2)
        [alert] = [json.loads(m["Body"]) for m in received.get("Messages", [])]
        assert alert["Subject"] == "[mldr] dr_backup_verification FAILED at select_datasets", region
        body = alert["Message"]
        assert "DAG dr_backup_verification: task select_datasets FAILED" in body
        assert f"run: {run.run_id}" in body
        assert "no-such-dataset" in body, "the error says what was wrong"
        assert "what to do: runbooks/backup-verification-failed.md" in body
    with pytest.raises(ParamValidationError, match="threshold_seconds"):
        dagbag.dags["dr_replication_lag"].test(run_conf={"threshold_seconds": 0})


def test_a_lag_breach_fails_with_dataset_keys_and_how_far_over(monkeypatch: pytest.MonkeyPatch) -> None:
    """The judgement task of `dr_replication_lag`, on a summary its check produced (no AWS needed)."""
    from mldr.airflow import tasks
    from mldr.errors import ReplicationLagExceeded

    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(tasks, "_alert", lambda subject, message: sent.append((subject, message)))
    summary = {
        "name": "features",
        "ok": False,
        "source_region": "us-east-1",
        "target_region": "us-west-2",
        "threshold_seconds": 60.0,
        "problems": [
            "features: 3 object(s) (120 bytes) not replicated to us-west-2; the oldest has waited 95s, "
            "35s over the threshold 60s, RPO 60s: a.csv, b.csv, c.csv"
        ],
        "reports": {"us-east-1": "s3://mldr-ops-us-east-1/reports/replication-lag/x.html"},
    }
    with pytest.raises(ReplicationLagExceeded) as raised:
        tasks.assert_lag_within_threshold(summary)
    message = str(raised.value)
    assert "features (us-east-1 -> us-west-2)" in message and "35s over the threshold 60s" in message
    assert "a.csv, b.csv, c.csv" in message and "runbooks/replication-lag.md" in message
    assert "s3://mldr-ops-us-east-1/reports/replication-lag/x.html" in message
    assert sent == [("[mldr] replication lag BREACH: features", message)]
    tasks.assert_lag_within_threshold({**summary, "ok": True})  # no breach: passes quietly
    assert len(sent) == 1
