"""Airflow adapters for the failover and failback runbooks: one DAG task runs one step.

Task bodies stay a line or two; everything they do is here and in `mldr.runbooks`. The
operation id is derived from the DAG run, so a retried task resumes the same operation.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mldr.errors import AlreadyDone, ConfigurationError
from mldr.topology import REGION_PATTERN, TOPOLOGY_ENV, load_topology_file

if TYPE_CHECKING:
    from mldr.airflow.approval_text import Decision
    from mldr.runbooks.engine import Runbook, StepFn
    from mldr.runbooks.params import OperationParams
    from mldr.topology import Topology

log = logging.getLogger(__name__)


def local_topology() -> Topology | None:
    """The topology, when it is a local file: what a DAG file may read while it is parsed.

    DAG files must parse with no network and no credentials, so this reads only a file named
    by MLDR_TOPOLOGY (the sandbox's, or one shipped with the deployment); None otherwise.
    """
    import os

    path = os.environ.get(TOPOLOGY_ENV)
    if not path or not Path(path).is_file():
        return None
    try:
        return load_topology_file(path)
    except ConfigurationError:
        return None


def region_choices() -> list[str] | None:
    """The topology's regions for a Param enum, when the topology is a local file; otherwise the
    Param takes any region name and preflight checks it against the topology."""
    topology = local_topology()
    return topology.region_names if topology is not None else None


def region_param_schema() -> dict[str, Any]:
    choices = region_choices()
    return {"enum": choices} if choices else {"pattern": REGION_PATTERN}


def operation_id(kind: str, run_id: str) -> str:
    return f"{kind}-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", run_id)[:80]


def _params(kind: str, params: dict[str, Any], triggered_by: str | None) -> OperationParams:
    from mldr.runbooks.params import OperationParams, validate_mode, validate_reason

    return OperationParams(
        kind=kind,
        target_region=str(params["target_region"]),
        mode=validate_mode(str(params.get("mode", "planned"))),
        reason=validate_reason(params.get("reason")),
        requested_by=triggered_by or "airflow",
        dry_run=bool(params.get("dry_run", False)),
        force=bool(params.get("force", False)),
        require_approval=bool(params.get("require_approval", True)),
        restore=params.get("restore"),
    )


def restore_params(cloud: Any, params: dict[str, Any], *, run_started: float | None) -> dict[str, Any]:
    """A restore's params as the runbook takes them: the active region, and its time fixed once.

    A relative `to` (-2h) is read against the DAG run's start, not the task's clock: every task
    of the run must name the same moment (a resumed operation is refused if its params change).
    """
    from mldr.checks.point_in_time import parse_restore_time
    from mldr.runbooks.params import RestoreTarget

    into = params.get("into_prefix") or None
    target = RestoreTarget(
        dataset=str(params["dataset"]),
        at=parse_restore_time(str(params["to"]), now=run_started),
        prefix=str(params.get("prefix") or ""),
        into_prefix=str(into) if into is not None else None,
    )
    return {
        **params,
        "target_region": cloud.control().read_lease().active_region,
        "mode": "planned",
        "restore": target,
    }


def approver_from_hitl(response: Any) -> str | None:
    """Who approved, from the await_approval task's XCom (the HITL response): the responding user,
    not the one who triggered the run. None when nobody approved (no response, Reject, timeout)."""
    from mldr.airflow.approval_text import decision

    answer = decision("operation", response)
    return answer.responder if answer.approved else None


def run_step(
    runbook: Runbook,
    step: StepFn,
    *,
    params: dict[str, Any],
    run_id: str,
    triggered_by: str | None = None,
    run_started: float | None = None,
    approver: str | None = None,
    unapproved: Decision | None = None,
) -> dict[str, Any]:
    """Run one runbook step for this DAG run's operation; returns the step's result as JSON (XCom).
    `approver`: who approved in await_approval (read by the approval step); `unapproved`: the
    answer was no (or none came): the operation is closed instead of running the step."""
    from airflow.sdk.exceptions import AirflowSkipException

    from mldr.cloud.aws.cloud import AwsCloud
    from mldr.runbooks.engine import OperationStatus, result_to_json, step_name
    from mldr.runbooks.operations import finish, open_operation, run_one
    from mldr.runbooks.shared_steps import refuse_unapproved
    from mldr.topology import load_topology

    kind = runbook.kind
    topology = load_topology()
    cloud = AwsCloud.from_airflow(topology)
    if kind == "failback":
        params = {**params, "target_region": topology.primary_region, "mode": "planned"}
    elif kind == "restore":
        params = restore_params(cloud, params, run_started=run_started)
    op_params = _params(kind, params, triggered_by)
    refuse_unapproved(topology, human_asked=op_params.require_approval, dry_run=op_params.dry_run)
    ctx = open_operation(topology, cloud, op_params, operation_id=operation_id(kind, run_id), say=log.info)
    ctx.approver = approver
    if unapproved is not None:
        # Rejected, timed out or lost: close the operation (nothing was changed: the approval
        # comes before every step that changes state), audited with who answered.
        ctx.audit.record(ctx.record.id, unapproved.event, responder=unapproved.responder)
        finish(ctx, OperationStatus.REJECTED, unapproved.message)
        log.info("%s", unapproved.message)
        return {"approved": False, "event": unapproved.event, "message": unapproved.message}
    try:
        result = result_to_json(step, run_one(ctx, step))
    except AlreadyDone as exc:
        # Failing over to the region that is already active: say so, change nothing, succeed.
        log.info("%s", exc)
        raise AirflowSkipException(str(exc)) from exc
    if step is runbook.preflight and op_params.dry_run:
        finish(ctx, OperationStatus.PLANNED, "dry run: preflight only, nothing was changed")
        log.info("dry run, plan:\n%s", "\n".join(runbook.plan()))
        raise AirflowSkipException("dry run: preflight done, nothing changed; the plan is in the log")
    log.info("%s %s: %s", kind, step_name(step), json.dumps(result, default=str)[:2000])
    return result
