"""Alerts wired into the DR DAGs: every task of every DR DAG has the failure notifier, and the
deadline alerts reach the notifier through the triggerer's own code (`CallbackTrigger`).

The failure path end to end (a task failing under `dag.test()`, an SQS queue subscribed to the
topic) is in test_data_protection_dags.py; the notifier's messages in tests/unit/test_alerts.py.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from mldr.airflow import alerts
from mldr.airflow.alerts import Alert, DrAlertNotifier

DR_DAGS = (
    "dr_backup_verification",
    "dr_replication_lag",
    "dr_drill",
    "dr_failover",
    "dr_failback",
    "dr_restore",
)
WINDOWS = {
    "dr_replication_lag": timedelta(minutes=5),
    "dr_backup_verification": timedelta(hours=3),
}


def test_every_task_of_every_dr_dag_pages_on_failure_with_its_runbook(dagbag: Any) -> None:
    for dag_id in DR_DAGS:
        dag = dagbag.dags[dag_id]
        for task in dag.tasks:
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            notifiers = [c for c in callbacks if isinstance(c, DrAlertNotifier)]
            assert len(notifiers) == 1, f"{dag_id}.{task.task_id} has no failure notifier"
            assert notifiers[0].runbook.startswith("runbooks/") and notifiers[0].deadline is None


@pytest.mark.parametrize("dag_id", sorted(WINDOWS))
def test_a_late_check_fires_its_deadline_alert_in_the_triggerer(
    dagbag: Any, dag_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.callback import CallbackState
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.triggers.callback import CallbackTrigger

    dag = dagbag.dags[dag_id]
    # what the scheduler stores and reads back (a deadline that does not serialize never fires)
    assert DagSerialization.to_dict(dag)["dag"]["deadline"]
    [deadline] = dag.deadline
    assert deadline.interval == WINDOWS[dag_id]
    assert deadline.reference.reference_name == "DagRunQueuedAtDeadline"

    sent: list[Alert] = []
    monkeypatch.setattr(alerts, "publish", lambda alert: sent.append(alert) or ["us-east-1"])
    # the simple context `Deadline.handle_miss` adds for the triggerer
    context = {"dag_run": {"dag_id": dag_id, "run_id": "scheduled__late", "state": "running"}, "deadline": {}}
    trigger = CallbackTrigger(deadline.callback.path, {**deadline.callback.kwargs, "context": context})

    async def events() -> list[Any]:
        return [event.payload async for event in trigger.run()]

    # a loop of its own, left alone after: asyncio.run() would clear the thread's current loop,
    # and the Pulumi mocks a later test file runs in this worker need one
    loop = asyncio.new_event_loop()
    try:
        states = [e["state"] for e in loop.run_until_complete(events())]
    finally:
        loop.close()
    assert states == [CallbackState.RUNNING, CallbackState.SUCCESS]
    [alert] = sent
    assert alert.subject.startswith(f"[mldr] {dag_id} past its deadline")
    assert "run scheduled__late has not finished within" in alert.message
    assert "what to do: runbooks/" in alert.message


def _parsed(dag_file: str) -> Any:
    """A DAG file parsed afresh, as the DAG processor does (its top level runs again)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "dags" / f"{dag_file}.py"
    spec = importlib.util.spec_from_file_location(f"parsed_{dag_file}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


@pytest.mark.sandbox
def test_a_failover_past_the_topologys_rto_pages_on_call(
    sandbox_state: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16 item 4: `dr_failover`'s deadline is the topology's RTO after the run was queued
    (read from the topology file when the DAG is parsed), and its callback, run the way the
    triggerer runs it, reaches on-call's queue on the alert topic."""
    import json
    import time

    from airflow.models.callback import CallbackState
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.triggers.callback import CallbackTrigger

    from mldr.topology import TOPOLOGY_ENV, load_topology_file
    from tests.pager import listen_on_alerts

    # No topology file where the DAG is parsed: no deadline (a DAG file reads no Variable), and
    # nothing else changes - the failover can still be triggered.
    monkeypatch.delenv(TOPOLOGY_ENV, raising=False)
    assert not _parsed("dr_failover").deadline
    monkeypatch.setenv(TOPOLOGY_ENV, sandbox_state.topology_path)
    topology = load_topology_file(sandbox_state.topology_path)
    dag = _parsed("dr_failover")
    assert DagSerialization.to_dict(dag)["dag"]["deadline"]
    [deadline] = dag.deadline
    assert deadline.interval == timedelta(seconds=topology.objectives.rto_seconds)
    assert deadline.reference.reference_name == "DagRunQueuedAtDeadline"

    # on-call's pager on the standby's topic (every region's topic gets it; one queue is enough)
    sqs, queue_url = listen_on_alerts(sandbox_state, topology, topology.secondary_region)
    context = {
        "dag_run": {"dag_id": "dr_failover", "run_id": "manual__late", "state": "running"},
        "deadline": {},
    }
    trigger = CallbackTrigger(deadline.callback.path, {**deadline.callback.kwargs, "context": context})

    async def events() -> list[Any]:
        return [event.payload async for event in trigger.run()]

    loop = asyncio.new_event_loop()  # see test_a_late_check_fires_its_deadline_alert_in_the_triggerer
    try:
        states = [e["state"] for e in loop.run_until_complete(events())]
    finally:
        loop.close()
    assert states == [CallbackState.RUNNING, CallbackState.SUCCESS]
    messages: list[dict[str, Any]] = []
    waited = time.monotonic() + 20
    while not messages and time.monotonic() < waited:
        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages = received.get("Messages", [])
    [alert] = [json.loads(m["Body"]) for m in messages]
    rto = topology.objectives.rto_seconds
    assert alert["Subject"] == f"[mldr] dr_failover past its deadline (the RTO ({rto} s))"
    assert f"run manual__late has not finished within the RTO ({rto} s)" in alert["Message"]
    assert "what to do: runbooks/region-outage.md" in alert["Message"]
