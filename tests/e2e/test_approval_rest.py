"""Approval end to end, as a chat-ops bot or a person does it: through Airflow's REST API on a
running `airflow standalone` (issue 16 item 3).

One standalone (and its own sandbox) for the module, on free ports, AIRFLOW_HOME in a temp dir,
stopped by pid at the end (`bench/airflow_stack.py`, the same start-up as `make up`). The
answers go to the HITL routes this Airflow version has:
GET/PATCH /api/v2/dags/{dag}/dagRuns/{run}/taskInstances/await_approval/-1/hitlDetails.

Heavy (~7 min on 2 cores: a standalone, its sandbox and four runs through the scheduler):
`make test-heavy` runs it, outside `make test`'s 10-minute budget.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.airflow_stack import AirflowStack
from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.runbooks.engine import OperationStatus, OperationStore
from mldr.topology import Topology, load_topology
from tests.integration.test_failover import snapshot

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, pytest.mark.heavy]

WAIT = 600.0  # generous: a busy 2-core machine; every wait ends as soon as its condition holds


class Api:
    def __init__(self, stack: AirflowStack) -> None:
        self.stack = stack
        # One API worker on a busy machine can take tens of seconds to answer: wait, do not fail.
        self.http = httpx.Client(timeout=180.0)

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(
            method,
            f"{self.stack.base}/api/v2{path}",
            headers={"Authorization": f"Bearer {self.stack.token}"},
            **kwargs,
        )

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        self.stack.wait_for_dag(dag_id)
        response = self.call("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
        assert response.status_code == 200, response.text
        return str(response.json()["dag_run_id"])

    def hitl(self, dag_id: str, run_id: str) -> str:
        return f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/await_approval/-1/hitlDetails"

    def wait_for_prompt(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """Polls every 50 ms: the answer below is as quick as a bot's. A run that ends before
        asking (a task failed) fails the test at once, naming the task states."""
        deadline = time.monotonic() + WAIT
        polls = 0
        while time.monotonic() < deadline:
            response = self.call("GET", self.hitl(dag_id, run_id))
            if response.status_code == 200:
                return dict(response.json())
            polls += 1
            if polls % 40 == 0:
                state = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
                if state in ("success", "failed"):
                    raise AssertionError(
                        f"{dag_id} {run_id} ended {state} before asking: {self.finished(dag_id, run_id)}"
                    )
            time.sleep(0.05)
        raise AssertionError(f"{dag_id} {run_id}: no approval prompt within {WAIT:.0f}s")

    def answer(self, dag_id: str, run_id: str, choice: str) -> None:
        response = self.call(
            "PATCH", self.hitl(dag_id, run_id), json={"chosen_options": [choice], "params_input": {}}
        )
        assert response.status_code == 200, response.text

    def finished(self, dag_id: str, run_id: str, answer: str | None = None) -> tuple[str, dict[str, str]]:
        """Waits for the run's end. `answer`: give it again if the run asks again - on Airflow 3.3.2
        an answer within a second of the prompt can fail the task ("... state attribute is
        queued"); its retry asks again (the answer is not carried over), as a bot must expect."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if answer is not None:
                prompt = self.call("GET", self.hitl(dag_id, run_id))
                if prompt.status_code == 200 and not prompt.json().get("response_received"):
                    self.answer(dag_id, run_id, answer)
            run = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}").json()
            if run["state"] in ("success", "failed"):
                tis = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()
                return str(run["state"]), {t["task_id"]: t["state"] for t in tis["task_instances"]}
            time.sleep(0.5)
        raise AssertionError(f"{dag_id} {run_id} did not finish within {WAIT:.0f}s")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    directory: Path = tmp_path_factory.mktemp("airflow-approval")
    with AirflowStack(directory, timeout=WAIT) as running:
        previous = dict(os.environ)
        os.environ.update(running.sandbox_env)  # this module's sandbox, for the checks below
        try:
            yield running
        finally:
            os.environ.clear()
            os.environ.update(previous)


@pytest.fixture(scope="module")
def api(stack: AirflowStack) -> Api:
    return Api(stack)


@pytest.fixture(scope="module")
def topology(stack: AirflowStack) -> Topology:
    return load_topology(use_airflow=False)


@pytest.fixture(scope="module")
def factory(topology: Topology) -> ClientFactory:
    return ClientFactory.from_environment(topology)


def _state(topology: Topology, factory: ClientFactory) -> dict[str, Any]:
    """What a rejected operation must leave alone: the lease, fences, objects and checksums."""
    cloud = AwsCloud(factory)
    held = cloud.control().read_lease()
    fenced = {
        region: sorted(
            d.buckets[region] for d in topology.datasets if cloud.objects(region).is_fenced(d.buckets[region])
        )
        for region in topology.region_names
    }
    objects = {region: snapshot(factory, topology, region) for region in topology.region_names}
    lease = (held.active_region, held.fencing_token, held.operation)
    return {"lease": lease, "fenced": fenced, "objects": objects}


def _record(factory: ClientFactory, kind: str, run_id: str) -> Any:
    from mldr.airflow.runbook_tasks import operation_id

    return OperationStore(AwsCloud(factory).control()).load(operation_id(kind, run_id))


def test_an_instant_approval_then_a_late_one_run_the_failover_and_the_failback(
    api: Api, topology: Topology, factory: ClientFactory
) -> None:
    primary, secondary = topology.primary_region, topology.secondary_region
    before = {region: snapshot(factory, topology, region) for region in topology.region_names}
    conf = {"target_region": secondary, "mode": "planned", "reason": "approval through the REST API"}
    run_id = api.trigger("dr_failover", conf)
    prompt = api.wait_for_prompt("dr_failover", run_id)
    api.answer("dr_failover", run_id, "Approve")  # at once, as a bot does
    state, tasks = api.finished("dr_failover", run_id, answer="Approve")
    assert state == "success", tasks
    # The approver read Markdown, not a dict.
    assert f"### Failover {primary} → {secondary} (planned)" in prompt["body"], prompt["body"]
    assert "| Data at risk |" in prompt["body"] and "{'" not in prompt["body"]
    record = _record(factory, "failover", run_id)
    assert record.status is OperationStatus.COMPLETED
    assert record.steps["approval"].result["approved_by"] == "admin"
    assert AwsCloud(factory).control().read_lease().active_region == secondary
    after = {region: snapshot(factory, topology, region) for region in topology.region_names}
    assert {r: len(s) for r, s in after.items()} == {r: len(s) for r, s in before.items()}
    assert after == before, "objects and checksums unchanged by the failover"

    run_id = api.trigger("dr_failback", {"reason": "approval after a pause"})
    prompt = api.wait_for_prompt("dr_failback", run_id)
    assert f"### Failback {secondary} → {primary} (planned)" in prompt["body"], prompt["body"]
    time.sleep(8)  # a person reading the preflight
    api.answer("dr_failback", run_id, "Approve")
    state, tasks = api.finished("dr_failback", run_id)
    assert state == "success", tasks
    assert AwsCloud(factory).control().read_lease().active_region == primary
    back = {region: snapshot(factory, topology, region) for region in topology.region_names}
    assert back == before, "objects and checksums unchanged by the failback"


def test_a_rejected_failover_changes_nothing_and_is_recorded_as_rejected(
    api: Api, topology: Topology, factory: ClientFactory
) -> None:
    before = _state(topology, factory)
    conf = {"target_region": topology.secondary_region, "mode": "planned", "reason": "a failover to reject"}
    run_id = api.trigger("dr_failover", conf)
    api.wait_for_prompt("dr_failover", run_id)
    api.answer("dr_failover", run_id, "Reject")
    state, tasks = api.finished("dr_failover", run_id, answer="Reject")
    assert tasks["approval"] == "skipped" and tasks["fence"] == "skipped", tasks
    assert state == "success", tasks  # a decision, not a failure
    record = _record(factory, "failover", run_id)
    assert record.status is OperationStatus.REJECTED, record.status
    assert "rejected by admin" in record.message
    after = _state(topology, factory)
    assert after["lease"] == before["lease"] and after["fenced"] == before["fenced"]
    counts = {r: len(s) for r, s in after["objects"].items()}
    assert counts == {r: len(s) for r, s in before["objects"].items()}
    assert after["objects"] == before["objects"]
