"""Build the failover and failback DAGs: one task per runbook step, approval in the middle.

Both DAG files call `build_runbook_dag`; what differs is the runbook and its Params. The
shape: preflight -> (approval, a human-in-the-loop task, unless require_approval is false)
-> fence -> ... -> record. A dry run stops after preflight (the rest is skipped).
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import DAG, Param, TriggerRule, task

from mldr.airflow.runbook_tasks import approval_body, run_step

log = logging.getLogger(__name__)


def _declared_defaults(params: dict[str, Param]) -> dict[str, Any]:
    return {name: param.value for name, param in params.items() if param.has_value}


def _run_params(defaults: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """The declared defaults overridden by this run's conf (already validated by Airflow).

    Not `context["params"]`: Airflow merges a run's conf into the DAG's Param objects in place,
    so within one process (dag.test(), several runs) a key one run set - `dry_run: true` -
    becomes the next run's default when that run leaves it out.
    """
    conf = getattr(context.get("dag_run"), "conf", None) or {}
    return {**defaults, **conf}


def _triggered_by(context: dict[str, Any]) -> str | None:
    dag_run = context.get("dag_run")
    return getattr(dag_run, "triggering_user_name", None) or None


def build_runbook_dag(
    *, dag_id: str, kind: str, steps: list[str], params: dict[str, Param], doc_md: str, description: str
) -> DAG:
    defaults = _declared_defaults(params)
    with DAG(
        dag_id=dag_id,
        description=description,
        doc_md=doc_md,
        schedule=None,  # manual only: a human decides to fail over
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        params=params,
        tags=["mldr", "dr", kind],
        default_args={"owner": "dr-oncall", "retries": 0},
        render_template_as_native_obj=False,
    ) as dag:

        def step_task(step: str) -> Any:
            @task(task_id=step)
            def run(**context: Any) -> dict[str, Any]:
                return run_step(
                    kind,
                    step,
                    params=_run_params(defaults, context),
                    run_id=context["run_id"],
                    triggered_by=_triggered_by(context),
                )

            return run()

        preflight = step_task("preflight")

        @task.branch(task_id="approval_gate")
        def approval_gate(**context: Any) -> str:
            return "approval" if _run_params(defaults, context).get("require_approval", True) else "approved"

        gate = approval_gate()
        approval = ApprovalOperator(
            task_id="approval",
            subject=f"Approve {kind} to {{{{ params.target_region or 'the primary' }}}}?",
            body="{{ ti.xcom_pull(task_ids='preflight') }}",
        )

        @task(task_id="approved", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
        def approved(**context: Any) -> dict[str, Any]:
            """Records who approved (the runbook's approval step) once the gate is passed."""
            pre = context["ti"].xcom_pull(task_ids="preflight")
            log.info("approved; preflight was:\n%s", approval_body(pre))
            return run_step(
                kind,
                "approval",
                params=_run_params(defaults, context),
                run_id=context["run_id"],
                triggered_by=_triggered_by(context),
            )

        passed = approved()
        preflight >> gate >> [approval, passed]
        approval >> passed
        previous = passed
        for step in steps:
            current = step_task(step)
            previous >> current
            previous = current
    return dag


def runbook_doc(*names: str) -> str:
    root = Path(__file__).resolve().parents[3] / "runbooks"
    return "\n\n---\n\n".join((root / name).read_text() for name in names if (root / name).exists())
