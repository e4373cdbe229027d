"""Task bodies of the `dr_drill` DAG: preflight (setup), drill, judge, revert (teardown).

The drill itself is one task: its load generator must run across fault, detection, failover
and failback, so they cannot be separate processes. The report is kept (both regions' ops
buckets), linked from the run as the drill task's XCom and as an event on the
`mldr_dr_drill_report` asset; `judge` then fails the run, after alerting, when the verdict
is fail. `revert` (teardown, runs whatever happened) undoes anything an interrupted drill left.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset

from mldr.errors import DrillFailed

if TYPE_CHECKING:
    from mldr.cloud.aws.cloud import AwsCloud
    from mldr.topology import Topology

log = logging.getLogger(__name__)

DRILL_REPORTS = Asset(name="mldr_dr_drill_report", uri="mldr://reports/drill")
RUNBOOK = "runbooks/dr-drill.md"


def _context() -> tuple[Topology, AwsCloud]:
    from mldr.airflow.tasks import task_context

    return task_context()


def drill_id_for(run_id: str | None) -> str:
    """Keyed on the DAG run, so the report, the operations and the control state line up."""
    from mldr.runbooks.drill import new_drill_id

    if not run_id:
        return new_drill_id()
    return "drill-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", run_id)[:80]


def preflight(
    params: Mapping[str, Any], *, run_id: str | None, triggered_by: str | None = None
) -> dict[str, Any]:
    """Undo leftovers of an interrupted drill, validate the params, check the topology is ready."""
    from mldr.runbooks.drill import DrillParams, check_ready
    from mldr.runbooks.drill.recover import recover

    topology, cloud = _context()
    drill_params = DrillParams.from_mapping(
        {**params, "drill_id": drill_id_for(run_id), "requested_by": triggered_by or "airflow"}
    ).validated(topology)
    recovered = recover(topology, cloud, say=log.info)
    check_ready(topology, cloud, drill_params.scenario)
    log.info("drill %s ready: %s", drill_params.drill_id, drill_params.public())
    return {"params": drill_params.public(), "recovered": recovered}


def run(plan: Mapping[str, Any], *, run_id: str | None, outlet_events: Any = None) -> dict[str, Any]:
    from mldr.airflow.tasks import airflow_base_url
    from mldr.reports import first_report_url
    from mldr.runbooks.drill import DrillParams, run_drill
    from mldr.runbooks.drill.publish import publish, summary

    topology, cloud = _context()
    params = DrillParams.from_mapping(plan["params"])
    document = run_drill(topology, cloud, params, say=log.info)
    document["airflow"] = {"run_id": run_id}
    document = publish(topology, cloud, document)
    result = summary(document)
    result["report_url"] = first_report_url(document.get("reports") or {}, airflow_base_url())
    if outlet_events is not None:
        outlet_events[DRILL_REPORTS].extra = {
            "drill_id": result["drill_id"],
            "scenario": result["scenario"],
            "verdict": result["verdict"],
            "rto_seconds": result["rto_seconds"],
            "rpo_seconds": result["rpo_seconds"],
            "reports": result.get("reports", {}),
            "report_url": result["report_url"],
            "run_id": run_id,
        }
    log.info(
        "drill %s: %s (%s); report %s %s",
        result["drill_id"],
        result["verdict"],
        result["verdict_reason"],
        result["report_url"] or "",
        result.get("reports"),
    )
    return result


def judge(result: Mapping[str, Any]) -> None:
    """Fail the run, after alerting, when the drill missed an objective."""
    from mldr.runbooks.notify import notify

    if result.get("verdict") == "pass":
        log.info("drill %s passed: %s", result.get("drill_id"), result.get("verdict_reason"))
        return
    lines = [f"DR drill {result.get('drill_id')} ({result.get('scenario')}) FAILED:"]
    lines += [f"  - {reason}" for reason in result.get("failed_criteria") or [result.get("verdict_reason")]]
    lines += [f"  report: {result['report_url']}"] if result.get("report_url") else []
    lines += [f"  report ({region}): {uri}" for region, uri in (result.get("reports") or {}).items()]
    lines.append(f"  what to do: {RUNBOOK}, 'When a drill fails'")
    message = "\n".join(lines)
    topology, cloud = _context()
    notify(cloud, topology, subject=f"[mldr] DR drill FAILED: {result.get('scenario')}", message=message)
    error = DrillFailed(message)
    error.alert_sent = True
    raise error


def revert(*, run_id: str | None = None) -> list[str]:
    """Teardown: heal, resume replication, finish or fail back whatever a drill left behind."""
    from mldr.runbooks.drill.lock import wait_for_drill_to_stop
    from mldr.runbooks.drill.recover import recover

    topology, cloud = _context()
    if run_id:
        # This run's drill task has ended; if it was killed on another worker its lock is live
        # until its heartbeat goes stale: wait for that, then take it over (recover says so).
        still = wait_for_drill_to_stop(cloud.control(), drill_id=drill_id_for(run_id))
        if still is not None:
            log.warning("drill %s still heartbeats: %s", still.drill_id, still.describe())
    done = recover(topology, cloud, say=log.info)
    log.info("revert: %s", "; ".join(done) if done else "nothing left to undo")
    return done
