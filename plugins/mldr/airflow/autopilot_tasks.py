"""The `dr_autopilot` DAG's one task: the same evaluation as `mldr autopilot evaluate`."""

from __future__ import annotations

import logging
from typing import Any

from mldr.errors import MldrError

log = logging.getLogger(__name__)


def evaluate_autopilot() -> dict[str, Any]:
    """Look once and act per the policy in force. Its XCom is what each observer saw, the
    verdict and why; the task fails when autopilot started a failover that did not complete,
    so the grid shows it (the operation's record says where it stopped)."""
    from mldr.airflow.tasks import task_context
    from mldr.runbooks.autopilot.evaluate import evaluate

    topology, cloud = task_context()
    result = evaluate(cloud, topology)
    d = result.decision
    log.info("autopilot %s: %s%s", d.verdict.value, d.why, f"; command: {d.command}" if d.command else "")
    for o in result.round.observations if result.round else ():
        log.info("  %s: %s - %s", o.observer.value, "ok" if o.ok else "FAILING", o.detail)
    if result.operation_status is not None and result.operation_status != "completed":
        raise MldrError(
            f"autopilot's failover {result.operation_id or '(not started)'} {result.operation_status}: "
            f"{result.operation_message}. `mldr status` and `mldr history` show it; resume it with "
            f"`mldr failover --resume <id> ...` or abort it with `mldr abort`"
        )
    return result.public()
