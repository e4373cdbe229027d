"""The example ML pipeline DR protects: ingest, train, evaluate, register, roll out - in the active region.

Thin: every task is a call into `mldr.ml.pipeline`. The region is resolved at run time from the DR
control state (`resolve_region`), so after a failover the next run works in the new region with no
config change, and a run in a fenced region stops with the fence named. Version and snapshot id
derive from the run, so a retried task rewrites the same keys.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import ExceptionRetryPolicy, Param, RetryAction, RetryRule, dag, task

from mldr.airflow.tasks import task_context

RUNBOOK = Path(__file__).parents[1] / "runbooks" / "ml-training-pipeline.md"


def _clients() -> tuple[Any, Any]:
    """(client factory, topology), built inside the task: no AWS or Variable access at parse time.
    The example workload plays a user's own pipeline: it makes its clients from the factory."""
    from mldr.cloud.aws.cloud import factory_of

    topology, cloud = task_context()
    return factory_of(cloud), topology


def _names(context: dict[str, Any]) -> Any:
    from mldr.ml.pipeline import RunNames

    return RunNames.for_run(context["dag_run"].run_after)


@dag(
    dag_id=Path(__file__).stem,
    description="Train the example model and roll it out, in whichever region the DR state says is active",
    doc_md=RUNBOOK.read_text(),
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # two runs would race on CURRENT
    dagrun_timeout=timedelta(minutes=30),
    tags=["mldr", "ml", "example"],
    default_args={
        "owner": "ml-platform",
        "retries": 1,
        "retry_delay": timedelta(seconds=30),
        "execution_timeout": timedelta(minutes=10),
        # a fence, a changed active region or a poor model is not cured by retrying in 30 s
        "retry_policy": ExceptionRetryPolicy(
            rules=[
                RetryRule(
                    exception=[
                        "mldr.errors.WriteFenced",
                        "mldr.errors.ConfigurationError",
                        "mldr.checks.active_region.ActiveRegionChanged",
                        "mldr.errors.CheckFailed",  # the model is below the accuracy threshold
                    ],
                    action=RetryAction.FAIL,
                    reason="needs a person or a new run, not a retry",
                )
            ]
        ),
    },
    params={
        "model_name": Param(
            "iris-classifier",
            type="string",
            pattern="^[a-z0-9][a-z0-9-]{0,62}$",
            title="Model name",
            description="registry name of the model (models/<name>/...)",
        ),
        "min_accuracy": Param(
            0.9,
            type="number",
            minimum=0,
            maximum=1,
            title="Minimum accuracy",
            description="below this on the held-out split, nothing is registered or rolled out",
        ),
        "rollout_wait_seconds": Param(
            60,
            type="integer",
            minimum=0,
            maximum=600,
            title="Roll-out wait (seconds)",
            description="how long to wait for the inference servers to report the new version; 0 = don't",
        ),
    },
)
def ml_training_pipeline() -> None:
    @task
    def resolve_region() -> dict[str, Any]:
        from mldr.ml import pipeline

        return pipeline.resolve_region(*_clients())

    @task
    def ingest(target: dict[str, Any], **context: Any) -> dict[str, Any]:
        from mldr.ml import pipeline

        return pipeline.ingest(*_clients(), region=target["region"], snapshot_id=_names(context).snapshot_id)

    @task
    def train(target: dict[str, Any], snapshot: dict[str, Any], **context: Any) -> dict[str, Any]:
        from mldr.ml import pipeline

        return pipeline.train_model(
            *_clients(),
            region=target["region"],
            snapshot=snapshot,
            version=_names(context).version,
            model_name=context["params"]["model_name"],
        )

    @task
    def evaluate(
        target: dict[str, Any], snapshot: dict[str, Any], artifact: dict[str, Any], **context: Any
    ) -> dict[str, float]:
        from mldr.ml import pipeline

        return pipeline.evaluate(
            *_clients(),
            region=target["region"],
            snapshot=snapshot,
            artifact=artifact,
            min_accuracy=float(context["params"]["min_accuracy"]),
        )

    @task
    def register(
        target: dict[str, Any],
        snapshot: dict[str, Any],
        artifact: dict[str, Any],
        metrics: dict[str, float],
        **context: Any,
    ) -> dict[str, Any]:
        from mldr.ml import pipeline

        return pipeline.register(
            *_clients(),
            region=target["region"],
            version=_names(context).version,
            snapshot=snapshot,
            artifact=artifact,
            metrics=metrics,
            model_name=context["params"]["model_name"],
            created_at=context["dag_run"].run_after,
        )

    @task
    def roll_out(target: dict[str, Any], registered: dict[str, Any], **context: Any) -> dict[str, Any]:
        from mldr.ml import pipeline

        return pipeline.roll_out(
            *_clients(),
            region=target["region"],
            version=registered["version"],
            model_name=registered["model_name"],
            wait_seconds=float(context["params"]["rollout_wait_seconds"]),
        )

    target = resolve_region()
    snapshot = ingest(target)
    artifact = train(target, snapshot)
    metrics = evaluate(target, snapshot, artifact)
    roll_out(target, register(target, snapshot, artifact, metrics))


ml_training_pipeline()
