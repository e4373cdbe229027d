"""Fail back to the primary region: resync what changed, then a planned switch back."""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import Param

from mldr.airflow.runbook_dag import build_runbook_dag, runbook_doc
from mldr.runbooks import failback

dag = build_runbook_dag(
    dag_id=Path(__file__).stem,
    runbook=failback.RUNBOOK,
    description="Return to the primary region: resync both ways, freeze writes, switch DNS back",
    doc_md=runbook_doc("failback.md"),
    alert_runbook="runbooks/failback.md",
    params={
        "reason": Param(type="string", minLength=10, title="Reason", description="why (audited)"),
        "dry_run": Param(False, type="boolean", title="Dry run", description="preflight and plan only"),
        "require_approval": Param(
            True,
            type="boolean",
            title="Require approval",
            description="a human approves the preflight summary before any change",
        ),
    },
)
