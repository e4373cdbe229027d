"""Fail the ML service and its data over to another region (manual, with approval)."""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import Param

from mldr.airflow.alerts import rto_alert
from mldr.airflow.runbook_dag import build_runbook_dag, runbook_doc
from mldr.airflow.runbook_tasks import region_param_schema
from mldr.runbooks import failover

dag = build_runbook_dag(
    dag_id=Path(__file__).stem,
    runbook=failover.RUNBOOK,
    description="Move inference and data to another region: fence, drain, scale, switch DNS, protect, verify",
    doc_md=runbook_doc("region-outage.md", "planned-switchover.md"),
    alert_runbook="runbooks/region-outage.md",
    # still going past the topology's RTO (counted from the trigger): on-call hears of it
    deadline=rto_alert(runbook="runbooks/region-outage.md"),
    params={
        "target_region": Param(
            type="string", title="Target region", description="the region to move to", **region_param_schema()
        ),
        "mode": Param(
            "planned",
            type="string",
            enum=["planned", "unplanned"],
            title="Mode",
            description="planned: fence writes, drain replication (RPO 0); unplanned: the source is impaired",
        ),
        "reason": Param(type="string", minLength=10, title="Reason", description="why (audited)"),
        "dry_run": Param(False, type="boolean", title="Dry run", description="preflight and plan only"),
        "require_approval": Param(
            True,
            type="boolean",
            title="Require approval",
            description="a human approves the preflight summary before any change",
        ),
        "force": Param(
            False,
            type="boolean",
            title="Force",
            description="override a failed preflight (recorded in the audit log)",
        ),
    },
)
