"""An Airflow metadata database for the session, for DAG runs with `dag.test()`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """Migrate a fresh SQLite metadata DB in the session's AIRFLOW_HOME (set in tests/conftest.py)."""
    home = os.environ["AIRFLOW_HOME"]
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (
        f"airflow db migrate failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    )
    return home


@pytest.fixture(scope="session")
def dagbag(airflow_db: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert bag.import_errors == {}
    for dag in bag.dags.values():
        if dag.deadline:
            _test_without_deadline(dag)
    return bag


def _test_without_deadline(dag: Any) -> None:
    """`dag.test()` of a DAG with a deadline alert, minus the deadline.

    Airflow 3.3.2's `dag.test()` keeps the DAG's serialized deadline as a dict where the scheduler
    reads the UUID `SerializedDagModel.write_dag` put there, and a run that succeeds dies in
    `DagRun.update_state` ("'dict' object has no attribute 'hex'", `DeadlineAlertModel.get_by_id`).
    The scheduler's path is not affected; the deadlines themselves are tested in test_dr_alerts.py.
    """
    run = dag.test

    def test(*args: Any, **kwargs: Any) -> Any:
        deadline, dag.deadline = dag.deadline, None
        try:
            return run(*args, **kwargs)
        finally:
            dag.deadline = deadline

    dag.test = test


def states_of(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


@pytest.fixture
def task_states() -> Any:
    """`task_states(run)`: {task_id: state} of a finished `dag.test()` run."""
    return states_of
