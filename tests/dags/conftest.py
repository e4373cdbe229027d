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
    return bag


def states_of(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


@pytest.fixture
def task_states() -> Any:
    """`task_states(run)`: {task_id: state} of a finished `dag.test()` run."""
    return states_of
