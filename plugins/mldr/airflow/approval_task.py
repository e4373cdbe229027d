"""The await_approval task: Airflow's ApprovalOperator, made to survive an answer at any moment.

What it adds to the provider's operator, and why:
- its body is the preflight as Markdown (`approval_text`), its assigned users the topology's
  `approval.approvers`, its response window the topology's `approval.response_window_seconds`;
- it parks in slices of `PARK_SLICE_SECONDS`, not for the whole window. On Airflow 3.3.2 with
  the SQLite metadata DB of `airflow standalone`, an answer given while the task is parking is
  recorded but does not resume the task (no row locks on SQLite: the answer sees the task still
  running, the park does not see the answer); the scheduler's timeout sweep resumes a parked task
  with an answer it finds, so each slice's end picks the answer up;
- `retries`: on Airflow 3.3.2 an answer given within about a second of the park can make the
  scheduler fail the task ("Executor ... reported that the task instance ... finished with state
  success, but the task instance's state attribute is queued": the park's own exit is processed
  after the resume). A retry asks again, saying why; nothing was changed in between;
- a Reject does not skip the tasks downstream, and a timeout does not fail the task: both are
  returned as the answer, so the approval step downstream closes the operation (rejected or
  timed out, audited) instead of leaving it `running`.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk.exceptions import TaskAwaitingInput

from mldr.airflow.approval_text import approval_body, approval_subject

#: A parked approval is looked at again at least this often (see the module's docstring).
PARK_SLICE_SECONDS = 20
#: Attempts after a first one lost to the scheduler race (each asks again).
APPROVAL_RETRIES = 3


class AwaitApproval(ApprovalOperator):
    def __init__(self, *, kind: str, preflight_task_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("retries", APPROVAL_RETRIES)
        kwargs.setdefault("retry_delay", timedelta(seconds=2))
        super().__init__(subject=approval_subject(kind), body="", **kwargs)
        self.kind = kind
        self.preflight_task_id = preflight_task_id

    def execute(self, context: Any) -> Any:
        from mldr.topology import load_topology

        settings = load_topology().approval
        ti = context["ti"]
        window = settings.response_window_seconds
        self.body = approval_body(
            self.kind,
            ti.xcom_pull(task_ids=self.preflight_task_id),
            window_seconds=window,
            approvers=settings.approvers,
            attempt=int(getattr(ti, "try_number", 1) or 1),
        )
        if settings.approvers:
            self.assigned_users = [{"id": user, "name": user} for user in settings.approvers]
        deadline = time.time() + window
        self.response_timeout = _slice(deadline)
        try:
            return super().execute(context)
        except TaskAwaitingInput as parked:
            raise _park(parked.method_name, deadline, window) from None

    def execute_complete(
        self,
        context: Any,
        event: dict[str, Any],
        deadline: float | None = None,
        window: int | None = None,
    ) -> Any:
        if event.get("error_type") == "timeout":
            if deadline is not None and time.time() < deadline:
                raise _park("execute_complete", deadline, window)  # a slice ended: wait on
            self.log.info("no answer within the response window (%s s)", window)
            return {"timed_out": True, "window_seconds": window, "chosen_options": []}
        # HITLOperator's, not ApprovalOperator's: a Reject skips nothing, the approval step closes it.
        return HITLOperator.execute_complete(self, context=context, event=event)


def _slice(deadline: float) -> timedelta:
    return timedelta(seconds=max(1.0, min(float(PARK_SLICE_SECONDS), deadline - time.time())))


def _park(method_name: str, deadline: float, window: int | None) -> TaskAwaitingInput:
    return TaskAwaitingInput(
        method_name=method_name, kwargs={"deadline": deadline, "window": window}, timeout=_slice(deadline)
    )
