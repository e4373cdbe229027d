"""Every DAG file imports cleanly with no network and no credentials, and follows the house rules."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DAGS = Path(__file__).parents[2] / "dags"
STATE_CHANGING = {
    "dr_failover",
    "dr_failback",
    "dr_restore",
    "dr_drill",
    "dr_autopilot",
    "ml_training_pipeline",
}


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Parse dags/ with every outbound connection refused and no AWS credentials."""
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLDR_TOPOLOGY"):
        mp.delenv(var, raising=False)
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError(f"network access during DAG parsing: {address}")

    mp.setattr(socket.socket, "connect", refuse)
    mp.setattr(socket.socket, "connect_ex", refuse)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    bag.network_attempts = attempts  # type: ignore[attr-defined]
    yield bag
    mp.undo()


def test_every_dag_file_imports_without_error_or_network(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert dagbag.network_attempts == []  # type: ignore[attr-defined]
    files = sorted(p.stem for p in DAGS.glob("*.py") if not p.name.startswith("_"))
    assert sorted(dagbag.dags) == files, "one DAG per file, dag_id == file stem"


def test_house_rules(dagbag: Any) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md and len(dag.doc_md) > 200, f"{dag_id}: doc_md should carry its runbook"
        assert "mldr" in dag.tags, f"{dag_id}: tag it mldr"
        assert all(t.owner and t.owner != "airflow" for t in dag.tasks), f"{dag_id}: every task has an owner"
        if dag_id in STATE_CHANGING:
            assert dag.max_active_runs == 1, f"{dag_id} changes state: max_active_runs must be 1"
        for name in dag.params:
            schema = dag.params.get_param(name).schema
            assert schema.get("type"), f"{dag_id}: param {name} needs a type"
            assert schema.get("title"), f"{dag_id}: param {name} needs a title"


def test_runbook_dag_tasks_are_the_step_functions_in_order(dagbag: Any) -> None:
    """A task id is the name of the step function it runs, in the runbook's order: the reader
    of a DAG finds the code of `fence` as `failover.fence`. The human gate sits before
    `approval` as two more tasks."""
    from mldr.runbooks import failback, failover, restore
    from mldr.runbooks.engine import step_name

    runbooks = (
        ("dr_failover", failover.RUNBOOK),
        ("dr_failback", failback.RUNBOOK),
        ("dr_restore", restore.RUNBOOK),
    )
    for dag_id, runbook in runbooks:
        dag = dagbag.dags[dag_id]
        names = [step_name(s) for s in runbook.steps]
        assert set(dag.task_ids) == {*names, "approval_gate", "await_approval"}, dag_id
        in_order = [t.task_id for t in dag.topological_sort() if t.task_id in names]
        assert in_order == names, f"{dag_id}: tasks run in the runbook's order"
        for before, after in itertools.pairwise(names):
            upstream = dag.get_task(after).upstream_task_ids
            assert before in upstream or {"approval_gate", "await_approval"} & upstream, (
                f"{dag_id}: {after} follows {before}"
            )
        assert dag.get_task("await_approval").upstream_task_ids == {"approval_gate"}
        assert dag.get_task("approval_gate").upstream_task_ids == {names[0]}, "the gate follows preflight"
        assert dag.schedule is None if hasattr(dag, "schedule") else True


def test_dags_that_only_run_when_triggered_are_not_paused_on_creation(dagbag: Any) -> None:
    """A trigger of a paused DAG sits `queued` with no hint why (issue 16 item 6): a DAG with no
    schedule starts unpaused; a scheduled one starts paused, until someone means it to run."""
    for dag_id, dag in dagbag.dags.items():
        triggered_only = getattr(dag, "timetable", None) is not None and not dag.timetable.can_be_scheduled
        if dag_id in ("dr_failover", "dr_failback", "dr_restore"):
            assert triggered_only, dag_id
        if triggered_only:
            assert dag.is_paused_upon_creation is False, f"{dag_id} only runs when triggered: not paused"
