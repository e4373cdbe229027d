"""Task bodies of the data-protection DAGs (`dr_backup_verification`, `dr_replication_lag`).

Each DAG maps one check task over the selected datasets and one judgement task over the
checks' results:

- the **check** (`verify_dataset`, `measure_dataset_lag`) runs the library, keeps the report
  (JSON + HTML in the ops bucket of each region that answers), publishes the CloudWatch
  metrics, emits an asset event carrying the verdict and the report's location, and returns a
  compact summary as its XCom. It succeeds whenever it produced a report, so the report is
  surfaced even when it describes a breach;
- the **judgement** (`assert_verified`, `assert_lag_within_threshold`) fails with a message a
  person can act on - dataset, keys, how far over the RPO, where the report is, which runbook -
  after sending the same summary to the SNS alert topics.

The topology and the boto3 clients are built inside the task (`task_context`), never at
import time, so a DAG file parses with no credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, ExceptionRetryPolicy, RetryAction, RetryRule

if TYPE_CHECKING:
    from mldr.cloud.aws.cloud import AwsCloud
    from mldr.topology import Topology

log = logging.getLogger(__name__)

VERIFICATION_REPORTS = Asset(name="mldr_backup_verification_report", uri="mldr://reports/verification")
LAG_REPORTS = Asset(name="mldr_replication_lag_report", uri="mldr://reports/replication-lag")

VERIFICATION_RUNBOOK = "runbooks/backup-verification-failed.md"
LAG_RUNBOOK = "runbooks/replication-lag.md"

#: A finding (or bad input) does not go away by running the same check again a minute later;
#: a transient AWS error might, so only those are retried.
RETRY_POLICY = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception=["mldr.errors.CheckFailed", "mldr.errors.ConfigurationError"],
            action=RetryAction.FAIL,
            reason="a check finding or invalid input: retrying would report the same",
        )
    ]
)


def task_context() -> tuple[Topology, AwsCloud]:
    """(topology, cloud) inside a running task: MLDR_TOPOLOGY or the Airflow Variable."""
    from mldr.cloud.aws.cloud import AwsCloud
    from mldr.topology import load_topology

    topology = load_topology()
    return topology, AwsCloud.from_airflow(topology)


def airflow_base_url() -> str | None:
    """Airflow's `[api] base_url` (None: not configured): report links in task logs and alerts
    lead to the DR dashboard under it (`mldr.reports.report_url`)."""
    from airflow.configuration import conf

    value = conf.get("api", "base_url", fallback=None) or ""
    return str(value).strip().rstrip("/") or None


def select_datasets(names: list[str] | None) -> list[str]:
    """The datasets to check, validated against the topology (unknown names fail here)."""
    from mldr.topology import load_topology

    selected = [d.name for d in load_topology().datasets_named(list(names or []))]
    log.info("checking %d dataset(s): %s", len(selected), ", ".join(selected))
    return selected


def _report_label(dataset: str, run_id: str | None) -> str:
    return f"{dataset}-{run_id or 'adhoc'}"


def verify_dataset(
    dataset: str, *, params: Mapping[str, Any], run_id: str | None = None, outlet_events: Any = None
) -> dict[str, Any]:
    from mldr.checks.results import keep_check_results
    from mldr.checks.verification import (
        Mode,
        VerifyOptions,
        breach_lines,
        render_html,
        verification_metrics,
        verify,
    )
    from mldr.reports import first_report_url, html_uri

    options = VerifyOptions(
        sample=int(params.get("sample_size", 10)),
        mode=Mode(params.get("mode", "full")),
        pending_threshold_seconds=params.get("pending_threshold_seconds"),
    )
    topology, cloud = task_context()
    report = verify(cloud, topology, datasets=[dataset], options=options)
    result = report.datasets[0]
    document = report.to_dict()
    document["airflow"] = {"run_id": run_id, "params": dict(params)}
    uris = keep_check_results(
        cloud,
        topology,
        kind="verification",
        label=_report_label(dataset, run_id),
        document=document,
        html=render_html(document),
        metrics={dataset: verification_metrics(result)},
    )
    summary = result.summary()
    summary["reports"] = {region: html_uri(uri) for region, uri in uris.items()}
    summary["report_url"] = first_report_url(uris, airflow_base_url())
    summary["problems"] = breach_lines(result.to_dict())
    if outlet_events is not None:
        outlet_events[VERIFICATION_REPORTS].extra = {
            "dataset": dataset,
            "ok": result.ok,
            "reports": uris,
            "run_id": run_id,
            **{k: summary[f"{k}_count"] for k in ("missing", "extra", "mismatched", "pending", "failed")},
        }
    log.info(
        "verification of %s: %s; report %s %s",
        dataset,
        "OK" if result.ok else "FAILED",
        summary["report_url"] or "",
        summary["reports"],
    )
    return summary


def _actionable(summary: Mapping[str, Any], *, what: str, runbook: str) -> str:
    lines = [
        f"{what} for dataset {summary['name']} "
        f"({summary.get('source_region')} -> {summary.get('target_region')}):"
    ]
    lines += [f"  - {p}" for p in summary.get("problems", [])]
    if summary.get("report_url"):
        lines.append(f"  report: {summary['report_url']}")
    for region, uri in (summary.get("reports") or {}).items():
        lines.append(f"  report ({region}): {uri}")
    if not summary.get("reports"):
        lines.append("  report: not stored in any region (see this task's log)")
    lines.append(f"  what to do: {runbook}")
    return "\n".join(lines)


def _alert(subject: str, message: str) -> None:
    from mldr.runbooks.notify import notify

    topology, cloud = task_context()
    reached = notify(cloud, topology, subject=subject, message=message)
    log.info("alert sent to %s", ", ".join(reached) or "no region (see warnings above)")


def assert_verified(summary: Mapping[str, Any]) -> None:
    from mldr.errors import VerificationFailed

    if summary["ok"]:
        log.info("%s: backup verified (%d objects)", summary["name"], summary["objects_checked"])
        return
    message = _actionable(summary, what="Backup verification FAILED", runbook=VERIFICATION_RUNBOOK)
    _alert(f"[mldr] backup verification FAILED: {summary['name']}", message)
    error = VerificationFailed(message)
    error.alert_sent = True
    raise error


def complete_fence_duties(*, run_id: str | None = None) -> list[dict[str, Any]]:
    """Before the read-only lag checks: an old primary that answers again is fenced and its
    outgoing replication stopped (a duty an unplanned failover left). An action, called
    explicitly: the checks themselves change nothing."""
    from mldr.runbooks.fence_duty import complete_fence_duties as complete

    topology, cloud = task_context()
    outcomes = complete(topology, cloud, by=f"dr_replication_lag {run_id or 'adhoc'}")
    return [outcome.public() for outcome in outcomes]


def measure_dataset_lag(
    dataset: str, *, params: Mapping[str, Any], run_id: str | None = None, outlet_events: Any = None
) -> dict[str, Any]:
    from mldr.checks.replication import LagOptions, lag_metrics, measure_lag, render_html
    from mldr.checks.results import keep_check_results
    from mldr.reports import first_report_url, html_uri

    options = LagOptions(
        threshold_seconds=params.get("threshold_seconds"),
        canary_timeout_seconds=params.get("canary_timeout_seconds"),
    )
    topology, cloud = task_context()
    report = measure_lag(cloud, topology, datasets=[dataset], options=options)
    result = report.datasets[0]
    document = report.to_dict()
    document["airflow"] = {"run_id": run_id, "params": dict(params)}
    uris = keep_check_results(
        cloud,
        topology,
        kind="replication-lag",
        label=_report_label(dataset, run_id),
        document=document,
        html=render_html(document),
        metrics={dataset: lag_metrics(result)},
    )
    summary = {k: v for k, v in result.to_dict().items() if k not in ("oldest", "canary")}
    summary["failed_keys"] = summary["failed_keys"][:100]
    summary["reports"] = {region: html_uri(uri) for region, uri in uris.items()}
    summary["report_url"] = first_report_url(uris, airflow_base_url())
    if outlet_events is not None:
        outlet_events[LAG_REPORTS].extra = {
            "dataset": dataset,
            "ok": result.ok,
            "reports": uris,
            "run_id": run_id,
            "lag_seconds": summary["lag_seconds"],
            "pending_objects": result.pending_objects,
            "oldest_pending_age_seconds": summary["oldest_pending_age_seconds"],
        }
    log.info(
        "replication lag of %s: %s; report %s %s",
        dataset,
        "OK" if result.ok else "BREACH",
        summary["report_url"] or "",
        summary["reports"],
    )
    return summary


def assert_lag_within_threshold(summary: Mapping[str, Any]) -> None:
    from mldr.errors import ReplicationLagExceeded

    if summary["ok"]:
        log.info("%s: replication within %.0fs", summary["name"], summary["threshold_seconds"])
        return
    message = _actionable(summary, what="Replication lag over the threshold", runbook=LAG_RUNBOOK)
    _alert(f"[mldr] replication lag BREACH: {summary['name']}", message)
    error = ReplicationLagExceeded(message)
    error.alert_sent = True
    raise error
