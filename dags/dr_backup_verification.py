"""Nightly backup verification: is everything the standby region needs there, identical, restorable?

Thin: one mapped `verify` task per dataset runs `mldr.checks.verification` and keeps the report
(S3 in both regions, XCom, the `mldr_backup_verification_report` asset); one mapped
`assert_verified` task per dataset fails, after alerting, when the report shows a breach.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import Param, dag, task

from mldr.airflow import tasks as dr
from mldr.airflow.alerts import DrAlertNotifier, late_run_alert

RUNBOOK = Path(__file__).parents[1] / "runbooks" / "backup-verification-failed.md"


@dag(
    dag_id=Path(__file__).stem,
    description="Compare every dataset's replica with its source: keys, sizes, content, history, "
    "restorability, ML recovery points",
    doc_md=RUNBOOK.read_text(),
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=4),
    # warned an hour before the run is killed, while there is time to look
    deadline=late_run_alert(
        window=timedelta(hours=3), what="its 3-hour window", runbook=f"runbooks/{RUNBOOK.name}"
    ),
    tags=["mldr", "dr", "data-protection", "read-only"],
    default_args={
        "owner": "ml-platform",
        "retries": 1,
        "retry_delay": timedelta(minutes=5),
        "retry_policy": dr.RETRY_POLICY,
        "on_failure_callback": DrAlertNotifier(runbook=f"runbooks/{RUNBOOK.name}"),
        "execution_timeout": timedelta(hours=3),
    },
    params={
        "datasets": Param(
            [],
            type="array",
            items={"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"},
            uniqueItems=True,
            title="Datasets",
            description="dataset names from the topology; empty = all of them",
        ),
        "sample_size": Param(
            10,
            type="integer",
            minimum=0,
            maximum=10_000,
            title="Restore-test sample",
            description="replicas downloaded and checked against the primary's record, newest included "
            "(0 = no restore test)",
        ),
        "mode": Param(
            "full",
            type="string",
            enum=["full", "sampled"],
            title="Mode",
            description="full: every key's content compared; sampled: key set and sizes for all keys, "
            "checksum requests only for a sample (cheaper on SSE-KMS and multipart buckets)",
        ),
        "pending_threshold_seconds": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=7 * 86_400,
            title="Pending threshold (seconds)",
            description="replication still pending after this long is an error; empty = each dataset's RPO",
        ),
    },
)
def dr_backup_verification() -> None:
    @task
    def select_datasets(params: dict[str, Any] | None = None) -> list[str]:
        return dr.select_datasets((params or {}).get("datasets"))

    @task(
        outlets=[dr.VERIFICATION_REPORTS],
        multiple_outputs=False,
        map_index_template="{{ task.op_kwargs['dataset'] }}",
    )
    def verify(
        dataset: str,
        params: dict[str, Any] | None = None,
        run_id: str | None = None,
        outlet_events: Any = None,
    ) -> dict[str, Any]:
        return dr.verify_dataset(dataset, params=params or {}, run_id=run_id, outlet_events=outlet_events)

    @task(map_index_template="{{ task.op_kwargs['summary']['name'] }}")
    def assert_verified(summary: dict[str, Any]) -> None:
        dr.assert_verified(summary)

    assert_verified.expand(summary=verify.expand(dataset=select_datasets()))


dr_backup_verification()
