"""Build the failover and failback DAGs: one task per runbook step, approval in the middle.

Both DAG files call `build_runbook_dag` with their runbook; what differs is the runbook and
its Params. Each step function is one task whose id is the function's name, so a task leads
to its code in one hop (`fence` -> `mldr.runbooks.failover.fence`). The shape: preflight ->
approval_gate -> (await_approval, a human-in-the-loop task, unless require_approval is false)
-> approval -> fence -> ... -> record. A dry run stops after preflight (the rest is skipped).
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, TriggerRule, task
from airflow.sdk.definitions.deadline import DeadlineAlert
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mldr.airflow.alerts import DrAlertNotifier
from mldr.airflow.approval_task import AwaitApproval
from mldr.airflow.approval_text import decision
from mldr.airflow.runbook_tasks import run_step
from mldr.runbooks.engine import Runbook, StepFn, step_name
from mldr.runbooks.shared_steps import approval

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


def _run_started(context: dict[str, Any]) -> float | None:
    """When the DAG run was asked for: the one "now" every task of the run agrees on."""
    dag_run = context.get("dag_run")
    moment = getattr(dag_run, "run_after", None) or getattr(dag_run, "queued_at", None)
    return moment.timestamp() if moment is not None else None


def _triggered_by(context: dict[str, Any]) -> str | None:
    dag_run = context.get("dag_run")
    return getattr(dag_run, "triggering_user_name", None) or None


def build_runbook_dag(
    *,
    dag_id: str,
    runbook: Runbook,
    params: dict[str, Param],
    doc_md: str,
    description: str,
    alert_runbook: str,
    deadline: DeadlineAlert | None = None,
) -> DAG:
    """One task per step function of the runbook, its task id the function's name, in order.

    `alert_runbook`: the runbook (path under runbooks/) a failure alert tells on-call to follow;
    `deadline`: a deadline alert for the run (the failover's RTO).
    """
    kind = runbook.kind
    defaults = _declared_defaults(params)
    preflight_id = step_name(runbook.preflight)
    with DAG(
        dag_id=dag_id,
        description=description,
        doc_md=doc_md,
        schedule=None,  # manual only: a human decides to fail over
        start_date=datetime(2026, 1, 1),
        catchup=False,
        # Triggered only, never scheduled: paused, a trigger would sit queued with no hint why.
        is_paused_upon_creation=False,
        max_active_runs=1,
        deadline=deadline,
        params=params,
        tags=["mldr", "dr", kind],
        default_args={
            "owner": "dr-oncall",
            "retries": 0,
            "on_failure_callback": DrAlertNotifier(runbook=alert_runbook),
        },
        render_template_as_native_obj=False,
    ) as dag:

        def step_task(fn: StepFn) -> Any:
            @task(task_id=step_name(fn))
            def run(**context: Any) -> dict[str, Any]:
                return run_step(
                    runbook,
                    fn,
                    params=_run_params(defaults, context),
                    run_id=context["run_id"],
                    triggered_by=_triggered_by(context),
                    run_started=_run_started(context),
                )

            return run()

        def approval_tasks() -> tuple[Any, Any]:
            """The human gate before the approval step: (its first task, the approval step's task)."""

            @task.branch(task_id="approval_gate")
            def approval_gate(**context: Any) -> str:
                wanted = _run_params(defaults, context).get("require_approval", True)
                return "await_approval" if wanted else step_name(approval)

            gate = approval_gate()
            await_approval = AwaitApproval(
                task_id="await_approval", kind=kind, preflight_task_id=preflight_id
            )

            # A Reject and a timeout end await_approval in success (the answer is its XCom), so
            # this task runs after them too and closes the operation instead of leaving it running.
            @task(task_id=step_name(approval), trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
            def approved(**context: Any) -> dict[str, Any]:
                """Records who approved (the runbook's approval step) once the gate is passed;
                after a Reject or no answer, closes the operation (rejected) and stops the run."""
                params = _run_params(defaults, context)
                asked = bool(params.get("require_approval", True))
                answer = decision(kind, context["ti"].xcom_pull(task_ids="await_approval")) if asked else None
                result = run_step(
                    runbook,
                    approval,
                    params=params,
                    run_id=context["run_id"],
                    triggered_by=_triggered_by(context),
                    run_started=_run_started(context),
                    approver=answer.responder if answer is not None and answer.approved else None,
                    unapproved=answer if answer is not None and not answer.approved else None,
                )
                if answer is not None and not answer.approved:
                    if answer.event == "approval-rejected":
                        raise AirflowSkipException(answer.message)  # a decision, not a failure
                    raise AirflowFailException(answer.message)
                log.info("approval: %s", answer.message if answer is not None else "not asked")
                return result

            passed = approved()
            gate >> [await_approval, passed]
            await_approval >> passed
            return gate, passed

        previous = None
        for fn in runbook.steps:
            if fn is approval:
                first, last = approval_tasks()
            else:
                first = last = step_task(fn)
            if previous is not None:
                previous >> first
            previous = last
    return dag


def runbook_doc(*names: str) -> str:
    root = Path(__file__).resolve().parents[3] / "runbooks"
    return "\n\n---\n\n".join((root / name).read_text() for name in names if (root / name).exists())
