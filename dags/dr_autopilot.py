"""Every minute: autopilot looks at the primary once and acts per the policy in force.

Thin: one task runs `mldr.runbooks.autopilot.evaluate` - the code `mldr autopilot evaluate`
runs. The policy (off | recommend | act) lives in the DR control store, switched with
`mldr autopilot enable|disable`; with `off` (the default) each run only records that.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import dag, task

from mldr.airflow import autopilot_tasks

RUNBOOK = Path(__file__).parents[1] / "runbooks" / "region-outage.md"


@dag(
    dag_id=Path(__file__).stem,
    description="Autopilot: holistic detection of a dead primary; unplanned failover or an alert, per policy",
    doc_md=RUNBOOK.read_text(),
    schedule="* * * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    # One evaluation at a time: a run that started a failover holds the next ones back.
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=45),
    tags=["mldr", "dr", "autopilot"],
    default_args={
        "owner": "dr-oncall",
        # the next minute's run is the retry: a retried evaluation would act on stale observations
        "retries": 0,
        "execution_timeout": timedelta(minutes=40),
    },
)
def dr_autopilot() -> None:
    @task
    def evaluate() -> dict[str, Any]:
        return autopilot_tasks.evaluate_autopilot()

    evaluate()


dr_autopilot()
