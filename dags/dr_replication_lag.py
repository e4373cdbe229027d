"""Every five minutes: how far behind is the standby region? Pages when it falls behind the RPO.

Thin: first, an old primary that answers again after an unplanned failover is fenced and its
outgoing replication stopped (`fence_healed_old_primary`, a duty the failover left); then one
mapped `measure_lag` task per dataset writes a canary and reads the replication
backlog (`mldr.checks.replication`), keeps the report and publishes the CloudWatch metrics;
one mapped `assert_lag_within_threshold` task per dataset fails, after alerting, on a breach.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import Param, dag, task

from mldr.airflow import tasks as dr
from mldr.airflow.alerts import DrAlertNotifier, late_run_alert

RUNBOOK = Path(__file__).parents[1] / "runbooks" / "replication-lag.md"


@dag(
    dag_id=Path(__file__).stem,
    description="Canary round trip and replication backlog per dataset, against each dataset's RPO",
    doc_md=RUNBOOK.read_text(),
    schedule="*/5 * * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=10),
    # a lag check still running when the next one is due leaves the RPO unwatched: say so
    deadline=late_run_alert(
        window=timedelta(minutes=5), what="its 5-minute window", runbook=f"runbooks/{RUNBOOK.name}"
    ),
    tags=["mldr", "dr", "data-protection"],
    default_args={
        "owner": "dr-oncall",
        "retries": 1,
        "retry_delay": timedelta(seconds=30),
        "retry_policy": dr.RETRY_POLICY,
        "on_failure_callback": DrAlertNotifier(runbook=f"runbooks/{RUNBOOK.name}"),
        "execution_timeout": timedelta(minutes=4),
    },
    params={
        "datasets": Param(
            [],
            type="array",
            items={"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"},
            uniqueItems=True,
            title="Datasets",
            description="dataset names from the topology; empty = all of them",
        ),
        "threshold_seconds": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=86_400,
            title="Threshold (seconds)",
            description="breach when the canary or the oldest pending object is older; empty = each "
            "dataset's RPO",
        ),
        "canary_timeout_seconds": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=180,
            title="Canary timeout (seconds)",
            description="how long to wait for the canary in the standby region; empty = the threshold, "
            "at most 30 s",
        ),
    },
)
def dr_replication_lag() -> None:
    @task
    def fence_healed_old_primary(run_id: str | None = None) -> list[dict[str, Any]]:
        return dr.complete_fence_duties(run_id=run_id)

    @task
    def select_datasets(params: dict[str, Any] | None = None) -> list[str]:
        return dr.select_datasets((params or {}).get("datasets"))

    @task(
        outlets=[dr.LAG_REPORTS], multiple_outputs=False, map_index_template="{{ task.op_kwargs['dataset'] }}"
    )
    def measure_lag(
        dataset: str,
        params: dict[str, Any] | None = None,
        run_id: str | None = None,
        outlet_events: Any = None,
    ) -> dict[str, Any]:
        return dr.measure_dataset_lag(
            dataset, params=params or {}, run_id=run_id, outlet_events=outlet_events
        )

    @task(map_index_template="{{ task.op_kwargs['summary']['name'] }}")
    def assert_lag_within_threshold(summary: dict[str, Any]) -> None:
        dr.assert_lag_within_threshold(summary)

    selected = select_datasets()
    fence_healed_old_primary() >> selected
    assert_lag_within_threshold.expand(summary=measure_lag.expand(dataset=selected))


dr_replication_lag()
