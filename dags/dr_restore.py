"""Restore a dataset (or a prefix of it) to its state at a point in time (manual, with approval)."""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import Param

from mldr.airflow.runbook_dag import build_runbook_dag, runbook_doc
from mldr.runbooks import restore

dag = build_runbook_dag(
    dag_id=Path(__file__).stem,
    runbook=restore.RUNBOOK,
    description="Point-in-time restore of a dataset from its version history, in the active region",
    doc_md=runbook_doc("logical-corruption.md"),
    alert_runbook="runbooks/logical-corruption.md",
    params={
        "dataset": Param(
            type="string", minLength=1, title="Dataset", description="a dataset of the topology"
        ),
        "to": Param(
            type="string",
            minLength=2,
            title="Restore to",
            description="RFC 3339 (2026-12-03T10:15:00Z) or relative to the run's start (-2h, -30m)",
        ),
        "prefix": Param("", type="string", title="Prefix", description="only keys under this prefix"),
        "into_prefix": Param(
            "",
            type="string",
            title="Into prefix",
            description="write the old state under this prefix, beside the live data (empty: over it)",
        ),
        "reason": Param(type="string", minLength=10, title="Reason", description="why (audited)"),
        "dry_run": Param(False, type="boolean", title="Dry run", description="the plan only"),
        "require_approval": Param(
            True,
            type="boolean",
            title="Require approval",
            description="a human approves the plan (keys to revert and delete, bytes) before any change",
        ),
    },
)
