"""Weekly DR drill: fail over under a measured fault, fail back, report RTO, RPO and parity
(or, `logical-corruption`: restore data and model from their history, report what came back).

Thin: `preflight` (setup: undo leftovers, validate, check readiness) -> `drill` (the whole
drill, `mldr.runbooks.drill`; keeps the report, emits the report asset) -> `judge` (fails the
run after alerting when an objective was missed); `revert` is the teardown that undoes an
interrupted drill whatever happened.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import Param, dag, task

from mldr.airflow import drill_tasks as drill
from mldr.airflow.alerts import DrAlertNotifier
from mldr.runbooks.drill.scenarios import Scenario

RUNBOOK = Path(__file__).parents[1] / "runbooks" / "dr-drill.md"
REGION = "^[a-z]{2}(-gov)?-[a-z]+-\\d+$"


@dag(
    dag_id=Path(__file__).stem,
    description="DR drill: region outage / replication stall / planned switchover, measured from the client",
    doc_md=RUNBOOK.read_text(),
    schedule="0 6 * * 3",  # weekly, Wednesday 06:00 UTC: staffed hours, not a release day
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    tags=["mldr", "dr", "drill"],
    default_args={
        "owner": "dr-owner",
        "retries": 0,  # a drill is not retried: it is rerun on purpose
        "on_failure_callback": DrAlertNotifier(runbook=f"runbooks/{RUNBOOK.name}"),
    },
    params={
        "scenario": Param(
            "region-outage",
            type="string",
            enum=[s.value for s in Scenario],
            title="Scenario",
            description="region-outage: the primary stops answering; replication-stall: replication stops "
            "before the outage (measures data lost); planned-switchover: graceful move and back; "
            "logical-corruption: a bad run damages data and the model, a point-in-time restore undoes it",
        ),
        "target_region": Param(
            None,
            type=["null", "string"],
            pattern=REGION,
            title="Target region",
            description="where to fail over; empty = the secondary region",
        ),
        "hold_seconds": Param(
            30,
            type="number",
            minimum=0,
            maximum=3600,
            title="Hold (seconds)",
            description="how long to stay failed over, load running, before healing and failing back",
        ),
        "failback": Param(
            True, type="boolean", title="Fail back", description="return to the primary at the end"
        ),
        "stall_seconds": Param(
            3,
            type="number",
            minimum=0.5,
            maximum=300,
            title="Stall (seconds)",
            description="replication-stall only: replication is paused this long before the outage",
        ),
        "rto_objective_seconds": Param(
            None,
            type=["null", "number"],
            exclusiveMinimum=0,
            title="RTO objective override (seconds)",
            description="empty = the topology's objective",
        ),
        "rpo_objective_seconds": Param(
            None,
            type=["null", "number"],
            exclusiveMinimum=0,
            title="RPO objective override (seconds)",
            description="empty = the topology's objective",
        ),
    },
)
def dr_drill() -> None:
    @task
    def preflight(
        params: dict[str, Any] | None = None, run_id: str | None = None, dag_run: Any = None
    ) -> dict[str, Any]:
        by = getattr(dag_run, "triggering_user_name", None)
        return drill.preflight(params or {}, run_id=run_id, triggered_by=by)

    @task(task_id="drill", outlets=[drill.DRILL_REPORTS], execution_timeout=timedelta(hours=1, minutes=30))
    def run_drill(
        plan: dict[str, Any], run_id: str | None = None, outlet_events: Any = None
    ) -> dict[str, Any]:
        return drill.run(plan, run_id=run_id, outlet_events=outlet_events)

    @task
    def judge(result: dict[str, Any]) -> None:
        drill.judge(result)

    @task
    def revert(run_id: str | None = None) -> list[str]:
        return drill.revert(run_id=run_id)

    plan = preflight()
    result = run_drill(plan)
    judge(result)
    result >> revert().as_teardown(setups=plan)


dag = dr_drill()
