"""`dr_drill`: house rules, bad params, and the region-outage and logical-corruption drills end to
end through Airflow (`dag.test()`) against the sandbox. The replication-stall and interrupted
drills, through the CLI, are in tests/e2e/test_drill.py and test_drill_logical_corruption.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.runbooks import failback, failover
from mldr.runbooks.drill.corruption import SEED_BYTES, SEED_KEYS
from mldr.runbooks.drill.state import DrillStateStore, Phase
from mldr.runbooks.engine import step_name
from mldr.sandbox.manager import Sandbox
from mldr.topology import load_topology
from tests.e2e.test_drill_logical_corruption import datasets, settled

RUNBOOK = Path(__file__).parents[2] / "runbooks" / "dr-drill.md"


def test_dr_drill_follows_the_house_rules(dagbag: Any) -> None:
    dag = dagbag.dags["dr_drill"]
    assert dag.doc_md == RUNBOOK.read_text()
    assert dag.max_active_runs == 1 and not dag.catchup and {"mldr", "dr", "drill"} <= set(dag.tags)
    assert dag.timetable.expression == "0 6 * * 3", "weekly"
    assert set(dag.task_ids) == {"preflight", "drill", "judge", "revert"}
    assert dag.get_task("preflight").is_setup and dag.get_task("revert").is_teardown
    assert [a.name for a in dag.get_task("drill").outlets] == ["mldr_dr_drill_report"]
    for task in dag.tasks:
        assert task.owner not in (None, "", "airflow") and task.retries == 0, task.task_id
    params = dag.params
    assert params.get_param("scenario").schema["enum"] == [
        "region-outage",
        "replication-stall",
        "planned-switchover",
        "logical-corruption",
    ]
    assert (
        params.get_param("hold_seconds").schema["minimum"],
        params.get_param("hold_seconds").schema["maximum"],
    ) == (
        0,
        3600,
    )
    for name in params:
        schema = params.get_param(name).schema
        assert schema.get("title") and schema.get("type") and params.get_param(name).description, name


def test_bad_params_are_refused_before_anything_runs(dagbag: Any) -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    dag = dagbag.dags["dr_drill"]
    with pytest.raises(ParamValidationError, match="scenario"):
        dag.test(run_conf={"scenario": "meteor-strike"})
    with pytest.raises(ParamValidationError, match="hold_seconds"):
        dag.test(run_conf={"hold_seconds": -1})


def xcom(run: Any, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter(
                XComModel.dag_id == run.dag_id,
                XComModel.run_id == run.run_id,
                XComModel.task_id == task_id,
                XComModel.key == "return_value",
            )
            .one()
        )
        return json.loads(row.value) if isinstance(row.value, str) else row.value


def asset_extras(run: Any) -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        events = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.name == "mldr_dr_drill_report", AssetEvent.source_run_id == run.run_id)
            .all()
        )
        return [dict(e.extra) for e in events]


def stored_document(factory: ClientFactory, region: str, html_uri: str) -> tuple[dict[str, Any], str]:
    bucket, key = html_uri.removeprefix("s3://").split("/", 1)
    s3 = factory.client("s3", region)
    page = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    doc = json.loads(s3.get_object(Bucket=bucket, Key=key.removesuffix(".html") + ".json")["Body"].read())
    return doc, page


@pytest.mark.sandbox
@pytest.mark.slow
def test_region_outage_drill_through_airflow(sandbox: Sandbox, dagbag: Any, task_states: Any) -> None:
    """The weekly drill as Airflow runs it: outage, detection, unplanned failover, failback."""
    topology = load_topology(use_airflow=False)
    factory = ClientFactory.from_environment(topology)
    control = AwsCloud(factory).control()
    primary, secondary = topology.primary_region, topology.secondary_region
    assert control.read_lease().active_region == primary

    run = dagbag.dags["dr_drill"].test(run_conf={"hold_seconds": 0})

    states = task_states(run)
    assert {k: states[k] for k in ("preflight", "drill", "revert")} == dict.fromkeys(
        ("preflight", "drill", "revert"), "success"
    ), states
    summary = xcom(run, "drill")
    assert (summary["scenario"], summary["source"], summary["target"]) == (
        "region-outage",
        primary,
        secondary,
    )
    assert xcom(run, "revert") == [], "the drill reverted itself; nothing was left for the teardown"

    # the report: both regions' ops buckets, the plots, linked from XCom and the asset event
    assert set(summary["reports"]) == set(topology.region_names)
    for region, uri in summary["reports"].items():
        doc, page = stored_document(factory, region, uri)
        assert '<svg id="timeline"' in page and '<svg id="trend"' in page
        assert doc["drill_id"] == summary["drill_id"] and doc["airflow"]["run_id"] == run.run_id
    [extra] = asset_extras(run)
    assert extra["drill_id"] == summary["drill_id"] and extra["reports"] == summary["reports"]
    assert extra["verdict"] == summary["verdict"] and extra["run_id"] == run.run_id

    # the measurements (the acceptance criteria)
    window = summary["detection"]["window_seconds"]
    assert window == 3.0, "the sandbox's health check: 1 s interval x 3 failures"
    # No client can be served by the target before the health check fails over; a probe in flight
    # at the fault instant can make detection land a hair under the nominal window.
    assert summary["rto_seconds"] >= window - 0.1
    assert summary["rto_seconds"] >= summary["detection"]["detected_after_seconds"] - 0.05
    assert summary["rto_seconds"] <= window + 5, "goal: client-observed downtime within the window + 5 s"
    assert summary["rto_seconds"] < summary["objectives"]["rto_seconds"]
    assert summary["failed_requests"] > 0, "the outage was felt until detection"
    assert summary["rpo_seconds"] == 0 and summary["lost_objects"] == 0, doc["data"]
    assert doc["data"]["considered_for_rpo"] > 0, "canaries were acknowledged before the fault"
    assert summary["parity"] is True, doc["parity_detail"]
    assert {r for _, ok, _, _, r in doc["timeline"]["requests"] if ok} == {primary, secondary}
    assert list(summary["steps"]["failover"]) == [step_name(s) for s in failover.STEPS]
    assert list(summary["steps"]["failback"]) == [step_name(s) for s in failback.STEPS]

    lease = control.read_lease()
    assert (lease.active_region, lease.operation, lease.fenced_regions) == (primary, None, ())
    state = DrillStateStore(control).load()
    assert state is not None and state.drill_id == summary["drill_id"] and state.phase is Phase.DONE
    assert state.drill_id.startswith("drill-manual__"), "keyed on the DAG run"

    assert summary["lost_after_failback"] == 0, doc["data"]["lost_after_failback_detail"]
    assert summary["verdict"] == "pass", summary["verdict_reason"]
    assert str(run.state) == "success" and states["judge"] == "success", states


@pytest.mark.sandbox
@pytest.mark.slow
def test_logical_corruption_drill_through_airflow(
    sandbox: Sandbox, dagbag: Any, task_states: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scenario param reaches the corruption drill: damage, detection, restore and rollback,
    both regions exactly as before. (The measures in detail: tests/e2e/test_drill_logical_corruption.py.)
    The report is linked through the DR dashboard under Airflow's base URL."""
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.example:8080/")
    topology = load_topology(use_airflow=False)
    factory = ClientFactory.from_environment(topology)
    control = AwsCloud(factory).control()
    assert control.read_lease().active_region == topology.primary_region
    before = datasets(factory, topology)

    run = dagbag.dags["dr_drill"].test(run_conf={"scenario": "logical-corruption"})

    states = task_states(run)
    assert {k: states[k] for k in ("preflight", "drill", "judge", "revert")} == dict.fromkeys(
        ("preflight", "drill", "judge", "revert"), "success"
    ), states
    summary = xcom(run, "drill")
    assert (summary["scenario"], summary["verdict"]) == ("logical-corruption", "pass"), summary[
        "verdict_reason"
    ]
    restore = summary["restore"]
    assert restore["recovery_point"]["keys"] == SEED_KEYS
    assert (restore["keys_reverted"], restore["keys_deleted"]) == (11, 1)
    assert restore["bytes_restored"] == 11 * SEED_BYTES
    for region in topology.region_names:
        assert restore["exact"][region] == {"exact": True, "missing": [], "extra": [], "different": []}, (
            region
        )
        assert restore["model_after"][region] is None, region
    assert set(summary["reports"]) == set(topology.region_names)
    name = next(iter(summary["reports"].values())).rsplit("/", 1)[1].removesuffix(".html")
    link = f"http://airflow.example:8080/mldr/reports/drill/{name}"
    assert summary["report_url"] == link, "a link a person can open, beside the s3:// copies"
    [extra] = asset_extras(run)
    assert (extra["scenario"], extra["verdict"], extra["report_url"]) == ("logical-corruption", "pass", link)

    lease = control.read_lease()
    assert (lease.active_region, lease.operation, lease.fenced_regions) == (topology.primary_region, None, ())
    state = DrillStateStore(control).load()
    assert state is not None and state.drill_id == summary["drill_id"] and state.phase is Phase.DONE
    assert set(state.operations) == {"restore", "rollback"}, "the restore and the rollback ran"
    assert xcom(run, "revert") == [], "the drill reverted itself; nothing was left for the teardown"
    # every dataset of both regions as before, key for key and checksum for checksum
    settled(factory, topology, before)
