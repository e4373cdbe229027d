"""`dr_replication_lag` completes a pending fence duty before it measures, as its own task: the
read-only lag checks never change state themselves."""

from __future__ import annotations

from typing import Any

from mldr.airflow import tasks


def test_the_fence_duty_task_runs_first_and_calls_the_action(dagbag: Any, monkeypatch: Any) -> None:
    dag = dagbag.dags["dr_replication_lag"]
    task = dag.get_task("fence_healed_old_primary")
    assert task.upstream_task_ids == set()
    assert task.downstream_task_ids == {"select_datasets"}
    # the task body reaches the action in one hop
    called: list[str | None] = []
    monkeypatch.setattr(tasks, "complete_fence_duties", lambda *, run_id=None: called.append(run_id) or [])
    task.python_callable(run_id="manual__1")
    assert called == ["manual__1"]
