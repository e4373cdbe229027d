"""The runbooks' steps as typed functions: unique names, results stored as JSON and read back typed."""

from __future__ import annotations

import json

import pytest

from mldr.checks.replication_status import ReplicationState
from mldr.errors import ConfigurationError, MldrError
from mldr.runbooks import failback, failover
from mldr.runbooks.at_risk import AtRiskVersion, DataAtRisk, FullList
from mldr.runbooks.common import GoldenPredictions, NoPrediction
from mldr.runbooks.engine import (
    OperationRecord,
    StepRecord,
    StepStatus,
    result_from_json,
    result_to_json,
    step_info,
    step_name,
)
from mldr.runbooks.params import Mode, OperationParams
from mldr.runbooks.shared_steps import approval, scale


def params(**changes: object) -> OperationParams:
    fields: dict[str, object] = {
        "kind": "failover",
        "target_region": "us-west-2",
        "mode": Mode.UNPLANNED,
        "reason": "unit test of typed steps",
        "requested_by": "pytest",
    }
    return OperationParams(**{**fields, **changes})  # type: ignore[arg-type]


def test_step_names_are_unique_across_runbooks() -> None:
    owners: dict[str, object] = {}
    for runbook in (failover.RUNBOOK, failback.RUNBOOK):
        for fn in runbook.steps:
            name = step_name(fn)
            assert owners.setdefault(name, fn) is fn, f"{name} names two different functions"
    assert owners["approval"] is approval and owners["scale"] is scale, "shared steps are one function"
    assert step_name(failover.fence) == "fence" and step_name(failback.failback_fence) == "failback_fence"


def test_runbook_order_and_descriptions() -> None:
    assert [step_name(s) for s in failover.STEPS] == [
        "preflight", "approval", "fence", "drain", "scale", "switch", "protect", "verify", "record",
    ]  # fmt: skip
    assert [step_name(s) for s in failback.STEPS] == [
        "failback_preflight", "approval", "failback_fence", "resync", "freeze", "scale",
        "failback_switch", "failback_protect", "failback_verify", "failback_record",
    ]  # fmt: skip
    assert failover.RUNBOOK.plan()[2] == (
        "fence: take the DR lease (token + 1); planned: deny writes on the source buckets"
    )
    assert step_info(failover.fence).holds_lease is False and step_info(failover.drain).holds_lease is True


def test_results_are_stored_as_json_and_read_back_as_their_types() -> None:
    risk = DataAtRisk(
        objects=1,
        bytes=64,
        oldest_age_seconds=2.5,
        failed=0,
        first_keys=(
            AtRiskVersion(
                bucket="b",
                key="k",
                version_id="v1",
                bytes=64,
                age_seconds=2.5,
                state=ReplicationState.PENDING,
            ),
        ),
        full_list=FullList(
            key="data-at-risk/failover-test/drain.json",
            regions=("us-west-2",),
            uris=("s3://ops-west/data-at-risk/failover-test/drain.json",),
            not_stored=("us-east-1: no answer",),
        ),
    )
    drained = failover.NotDrained(data_at_risk=risk)
    stored = result_to_json(failover.drain, drained)
    assert stored == {
        "drained": False,
        "data_at_risk": {
            "measured": True,
            "objects": 1,
            "bytes": 64,
            "oldest_age_seconds": 2.5,
            "failed": 0,
            "first_keys": [
                {
                    "bucket": "b",
                    "key": "k",
                    "version_id": "v1",
                    "bytes": 64,
                    "age_seconds": 2.5,
                    "state": "PENDING",
                }
            ],
            "full_list": {
                "key": "data-at-risk/failover-test/drain.json",
                "regions": ["us-west-2"],
                "uris": ["s3://ops-west/data-at-risk/failover-test/drain.json"],
                "not_stored": ["us-east-1: no answer"],
            },
        },
    }
    assert result_from_json(failover.drain, stored) == drained
    assert result_from_json(failover.drain, {"drained": True, "waited_for": 3, "seconds": 0.5}) == (
        failover.Drained(waited_for=3, seconds=0.5)
    )

    record = OperationRecord(id="failover-test", kind="failover", params=params())
    record.steps["drain"] = StepRecord("drain", StepStatus.DONE, result=stored)
    loaded = OperationRecord.from_json(record.to_json())
    assert loaded.params == params() and loaded.params.mode is Mode.UNPLANNED
    assert loaded.result(failover.drain) == drained
    assert loaded.result_if_done(failover.fence) is None
    with pytest.raises(MldrError, match="fence has not completed"):
        loaded.result(failover.fence)
    assert json.loads(record.to_json())["params"]["mode"] == "unplanned"


def test_a_baseline_is_predictions_or_the_reason_there_are_none() -> None:
    golden = GoldenPredictions(region="us-east-1", model_version="m1", predictions=[1, 0], served_by="x")
    for baseline in (golden, NoPrediction(error="no answer")):
        pre = failback.FailbackPreflightResult(
            active="us-west-2",
            target="us-east-1",
            token_before=4,
            changed_since_epoch=1.0,
            baseline=baseline,
            plan=(),
        )
        assert (
            result_from_json(failback.failback_preflight, result_to_json(failback.failback_preflight, pre))
            == pre
        )


def test_params_are_validated_once_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="at least 10 characters"):
        params(reason="short")
    with pytest.raises(ConfigurationError, match="unknown runbook"):
        params(kind="reboot")
    with pytest.raises(ConfigurationError, match="names a dataset and a time"):
        params(kind="restore")  # a restore without what and when to restore
    with pytest.raises(ConfigurationError, match="mode"):
        params(mode="planned")


def test_the_dag_records_the_hitl_responder_as_approver() -> None:
    """The approver is who answered await_approval, not who triggered the run; a Reject or no
    answer is nobody."""
    from mldr.airflow.runbook_tasks import approver_from_hitl

    answer = {"chosen_options": ["Approve"], "responded_by_user": {"id": "7", "name": "bob"}}
    assert approver_from_hitl(answer) == "bob (7)"
    assert approver_from_hitl({**answer, "responded_by_user": {"id": "bob", "name": "bob"}}) == "bob"
    assert approver_from_hitl({**answer, "chosen_options": ["Reject"]}) is None
    assert approver_from_hitl({**answer, "responded_by_user": None}) is None
    assert approver_from_hitl(None) is None
