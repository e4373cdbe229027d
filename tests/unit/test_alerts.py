"""What on-call reads when a DR task fails or a run is late (`mldr.airflow.alerts`), on synthetic
Airflow contexts: no Airflow database, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from mldr.airflow import alerts
from mldr.airflow.alerts import Alert, DrAlertNotifier, deadline_alert, failure_alert
from mldr.errors import LeaseHeld, VerificationFailed


def task_context(**ti: Any) -> dict[str, Any]:
    return {
        "dag": SimpleNamespace(dag_id="dr_failover"),
        "run_id": "manual__2026-12-03T10:00:00",
        "ti": SimpleNamespace(task_id="fence", map_index=-1, log_url="http://airflow/log?x=1", **ti),
        "exception": LeaseHeld("the DR lease is held by run manual__0 until 10:05: wait, or abort it"),
    }


def test_a_failure_alert_names_dag_task_run_error_log_and_runbook() -> None:
    alert = failure_alert(task_context(), runbook="runbooks/region-outage.md")
    assert alert.subject == "[mldr] dr_failover FAILED at fence"
    assert alert.message.splitlines() == [
        "DAG dr_failover: task fence FAILED",
        "  run: manual__2026-12-03T10:00:00",
        "  error: LeaseHeld: the DR lease is held by run manual__0 until 10:05: wait, or abort it",
        "  log: http://airflow/log?x=1",
        "  what to do: runbooks/region-outage.md",
    ]


def test_a_mapped_task_is_named_with_its_dataset_and_a_long_error_is_cut() -> None:
    context = task_context(rendered_map_index="features")
    context["exception"] = RuntimeError("x" * 5000)
    alert = failure_alert(context, runbook="runbooks/replication-lag.md")
    assert "task fence[features] FAILED" in alert.message
    assert len(alert.message) < 2000 and "[...]" in alert.message


def test_a_deadline_alert_reads_the_simple_context_the_scheduler_sends() -> None:
    context = {
        "dag_run": {"dag_id": "dr_failover", "run_id": "manual__1", "state": "running"},
        "deadline": {"id": "d1", "deadline_time": datetime(2026, 12, 3, 10, 5, tzinfo=UTC)},
    }
    alert = deadline_alert(context, what="the RTO (300 s)", runbook="runbooks/region-outage.md")
    assert alert.subject == "[mldr] dr_failover past its deadline (the RTO (300 s))"
    assert "DAG dr_failover: run manual__1 has not finished within the RTO (300 s)" in alert.message
    assert "deadline: 2026-12-03T10:05:00+00:00; run state now: running" in alert.message
    assert "what to do: runbooks/region-outage.md" in alert.message


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Alert]:
    out: list[Alert] = []
    monkeypatch.setattr(alerts, "publish", lambda alert: out.append(alert) or ["us-east-1"])
    return out


def test_the_notifier_publishes_a_failure_but_never_pages_twice(sent: list[Alert]) -> None:
    from airflow.sdk import DAG

    notifier = DrAlertNotifier(runbook="runbooks/backup-verification-failed.md")
    context = {**task_context(), "dag": DAG("dr_failover", schedule=None)}
    notifier(context)  # how Airflow calls an on_failure_callback
    assert [a.subject for a in sent] == ["[mldr] dr_failover FAILED at fence"]

    already = VerificationFailed("features: 1 extra")
    already.alert_sent = True  # the judgement task sent its own, richer alert
    notifier({**context, "exception": already})
    assert len(sent) == 1


def test_a_deadline_callback_runs_as_airflow_runs_it(sent: list[Alert]) -> None:
    """The executor's and the triggerer's ways of running a notifier class from a missed deadline."""
    import asyncio

    import structlog
    from airflow.sdk.execution_time.callback_supervisor import execute_callback

    context = {"dag_run": {"dag_id": "dr_replication_lag", "run_id": "scheduled__1"}, "deadline": {}}
    kwargs = {"runbook": "runbooks/replication-lag.md", "deadline": "its 5-minute window", "context": context}
    ok, error = execute_callback(
        "mldr.airflow.alerts.DrAlertNotifier",
        kwargs,
        dag_rel_path=".",
        bundle_path=None,
        log=structlog.get_logger(),
    )
    assert (ok, error) == (True, None)

    async def in_the_triggerer() -> None:
        await DrAlertNotifier(**kwargs)  # type: ignore[arg-type]

    asyncio.run(in_the_triggerer())
    assert [a.subject for a in sent] == [
        "[mldr] dr_replication_lag past its deadline (its 5-minute window)"
    ] * 2
