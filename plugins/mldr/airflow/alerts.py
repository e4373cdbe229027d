"""Alerts that reach someone: an Airflow notifier over the runbooks' SNS code (`runbooks/notify.py`).

`DrAlertNotifier` is what every DR DAG hangs on its tasks' `on_failure_callback` and on its
deadline alerts. It publishes to the topology's alert topic of every region that answers, naming
the DAG, the task, the run, the error and the runbook to follow, so the person paged knows what
broke and where to start without opening Airflow first.

Two contexts reach it:
- a task's failure callback (in the task's process): the full task context, with `ti` and
  `exception`;
- a deadline alert (in the triggerer, as an `AsyncCallback`): only `{"dag_run": {...},
  "deadline": {...}}`, the simple context the scheduler sends along with a missed deadline.

A task that already sent its own, richer alert before failing (the judgement tasks of the
verification and lag DAGs, the drill's `judge`) raises an error with `alert_sent` set: the
notifier does not page twice for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import BaseNotifier
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

log = logging.getLogger(__name__)

#: A Python traceback is not an alert: the first lines of the error say what broke.
MAX_ERROR_CHARS = 1500


@dataclass(frozen=True)
class Alert:
    subject: str
    message: str


def _get(value: Any, name: str) -> Any:
    """An attribute of a runtime object, or a key of the JSON form a deadline's context carries."""
    if isinstance(value, Mapping):
        return value.get(name)
    return getattr(value, name, None)


def _dag_id(context: Mapping[str, Any]) -> str:
    return str(
        _get(context.get("dag"), "dag_id")
        or _get(context.get("dag_run"), "dag_id")
        or _get(context.get("ti"), "dag_id")
        or "unknown DAG"
    )


def _run_id(context: Mapping[str, Any]) -> str:
    return str(context.get("run_id") or _get(context.get("dag_run"), "run_id") or "unknown run")


def _error_text(error: Any) -> str:
    if error is None:
        return "no error recorded (see the task's log)"
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + " [...]"


def failure_alert(context: Mapping[str, Any], *, runbook: str) -> Alert:
    """What on-call reads when a task of a DR DAG fails for good (its retries spent)."""
    dag_id, run_id = _dag_id(context), _run_id(context)
    ti = context.get("ti")
    task = str(_get(ti, "task_id") or "unknown task")
    map_index = _get(ti, "map_index")
    label = _get(ti, "rendered_map_index") or (map_index if map_index not in (None, -1) else None)
    where = f"{task}[{label}]" if label is not None else task
    lines = [
        f"DAG {dag_id}: task {where} FAILED",
        f"  run: {run_id}",
        f"  error: {_error_text(context.get('exception'))}",
    ]
    log_url = _get(ti, "log_url")
    if log_url:
        lines.append(f"  log: {log_url}")
    lines.append(f"  what to do: {runbook}")
    return Alert(subject=f"[mldr] {dag_id} FAILED at {task}", message="\n".join(lines))


def deadline_alert(context: Mapping[str, Any], *, what: str, runbook: str) -> Alert:
    """What on-call reads when a DR run is still going past its deadline (`what`: the window)."""
    dag_id, run_id = _dag_id(context), _run_id(context)
    deadline = context.get("deadline") or {}
    at = deadline.get("deadline_time") if isinstance(deadline, Mapping) else None
    when = at.isoformat() if isinstance(at, datetime) else (str(at) if at else "its deadline")
    state = _get(context.get("dag_run"), "state")
    lines = [
        f"DAG {dag_id}: run {run_id} has not finished within {what}",
        f"  deadline: {when}" + (f"; run state now: {state}" if state else ""),
        "  the run goes on: look at where it stands (Airflow grid, `mldr status`) and decide",
        f"  what to do: {runbook}",
    ]
    return Alert(subject=f"[mldr] {dag_id} past its deadline ({what})", message="\n".join(lines))


def publish(alert: Alert) -> list[str]:
    """Send to the topology's alert topics; the regions reached (an alert never fails its caller)."""
    from mldr.airflow.tasks import task_context
    from mldr.errors import MldrError
    from mldr.runbooks.notify import notify

    try:
        topology, cloud = task_context()
    except MldrError as exc:
        log.error("alert NOT sent (no topology or cloud: %s): %s\n%s", exc, alert.subject, alert.message)
        return []
    reached = notify(cloud, topology, subject=alert.subject, message=alert.message)
    if reached:
        log.info("alert sent to %s: %s", ", ".join(reached), alert.subject)
    else:
        log.error("alert reached no region: %s\n%s", alert.subject, alert.message)
    return reached


class DrAlertNotifier(BaseNotifier):
    """Pages on-call through the topology's SNS topics when a DR task fails or a run is late.

    `runbook`: the runbook to follow (a path under runbooks/). `deadline`: set for a deadline
    alert, what the window was (e.g. "the RTO (300 s)"); unset, the notifier reports a failure.
    Use as a task's `on_failure_callback=DrAlertNotifier(runbook=...)`, or in a deadline alert as
    `AsyncCallback(DrAlertNotifier, kwargs={"runbook": ..., "deadline": ...})`.
    """

    def __init__(
        self, *, runbook: str, deadline: str | None = None, context: dict[str, Any] | None = None
    ) -> None:
        super().__init__(context=context)  # type: ignore[arg-type]
        self.runbook = runbook
        self.deadline = deadline

    def alert(self, context: Mapping[str, Any]) -> Alert | None:
        """The alert for this context, or None when the failing task already sent its own."""
        if self.deadline is not None:
            return deadline_alert(context, what=self.deadline, runbook=self.runbook)
        if getattr(context.get("exception"), "alert_sent", False):
            log.info("the task alerted on-call itself before failing: no second page")
            return None
        return failure_alert(context, runbook=self.runbook)

    def notify(self, context: Any) -> None:
        alert = self.alert(context)
        if alert is not None:
            publish(alert)

    async def async_notify(self, context: Any) -> None:
        # In the triggerer: the blocking SNS calls go to a thread, not the event loop.
        await asyncio.to_thread(self.notify, context)


def late_run_alert(*, window: timedelta, what: str, runbook: str) -> DeadlineAlert:
    """A deadline alert: on-call hears of a run still going `window` after it was queued.

    The callback runs in the triggerer (an `AsyncCallback`, Airflow's recommended path), so it
    fires even while the run's own tasks hang; the run itself goes on (a deadline only tells).
    """
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=window,
        callback=AsyncCallback(DrAlertNotifier, kwargs={"runbook": runbook, "deadline": what}),
    )


def rto_alert(*, runbook: str) -> DeadlineAlert | None:
    """A failover's deadline alert: on-call hears of a run still going past the topology's RTO
    (from when it was queued). Its window is read when the DAG file is parsed, from the topology
    file MLDR_TOPOLOGY names (a DAG file reads no Variable); without one, None: no deadline.

    Not a custom deadline reference reading the topology when the run is created: Airflow
    3.3.2 refuses to create a run whose reference is not registered by a plugin in that process,
    and a failover must never fail to start because of its alerting."""
    from mldr.airflow.runbook_tasks import local_topology

    topology = local_topology()
    if topology is None:
        return None
    rto = topology.objectives.rto_seconds
    return late_run_alert(window=timedelta(seconds=rto), what=f"the RTO ({rto} s)", runbook=runbook)
