"""One autopilot evaluation: look, decide, act or alert, remember. `mldr autopilot evaluate` and
the `dr_autopilot` DAG both run `evaluate`.

`act` starts the unplanned failover through the same lease and engine as `mldr failover`
(`open_operation` + `execute`), as `mldr-autopilot`; `recommend`, a blocked failover and a
recommended failback send an alert naming the exact command instead. An evaluation that changes
its mind (a new verdict) is audited with what each observer saw, the decision and why; the
same is kept in the control store for `mldr autopilot status` and the dashboard.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from mldr.actions.heartbeat import write_heartbeat
from mldr.checks.observers import observe
from mldr.cloud import Cloud
from mldr.cloud.control import Lease, now_iso
from mldr.errors import MldrError
from mldr.runbooks.audit import AuditLog
from mldr.runbooks.autopilot.decision import (
    ALERTING,
    MAX_ROUND_GAP,
    Decision,
    Round,
    Situation,
    Verdict,
    decide,
)
from mldr.runbooks.autopilot.policy import (
    AUDIT_ID,
    PolicyRecord,
    State,
    read_policy,
    read_state,
    save_state,
)
from mldr.runbooks.engine import OperationStatus, OperationStore
from mldr.runbooks.notify import notify
from mldr.runbooks.operations import execute, open_operation
from mldr.runbooks.params import Mode, OperationParams
from mldr.topology import AutopilotMode, Topology

log = logging.getLogger(__name__)

#: Who autopilot's failovers are started by, in the lease, the operation record and the audit.
AUTOPILOT = "mldr-autopilot"


@dataclass(frozen=True)
class Evaluation:
    policy: PolicyRecord
    round: Round | None
    decision: Decision
    changed_mind: bool
    alerted: tuple[str, ...] = ()  # the regions whose alert topic took the alert
    operation_id: str | None = None
    operation_status: str | None = None
    operation_message: str = ""

    def public(self) -> dict[str, object]:
        return {
            "policy": self.policy.public(),
            "observations": [o.public() for o in self.round.observations] if self.round else [],
            "watched_region": self.round.region if self.round else None,
            **self.decision.public(),
            "changed_mind": self.changed_mind,
            "alerted": list(self.alerted),
            "operation_id": self.operation_id,
            "operation_status": self.operation_status,
            "operation_message": self.operation_message,
        }


def _epoch(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def last_recovery_at(cloud: Cloud) -> float | None:
    """When the last failover or failback completed: the block window runs from there."""
    done = [
        r
        for r in OperationStore(cloud.control()).history(limit=50)
        if r.kind in ("failover", "failback")
        and r.status is OperationStatus.COMPLETED
        and not r.params.dry_run
    ]
    ends = [t for t in (_epoch(r.updated_at) for r in done) if t is not None]
    return max(ends, default=None)


def _situation(topology: Topology, lease: Lease, cloud: Cloud, state: State, now: float) -> Situation:
    return Situation(
        now=now,
        primary_region=topology.primary_region,
        standby_region=topology.secondary_region,
        active_region=lease.active_region,
        operation_in_progress=lease.operation.id if lease.operation else None,
        last_recovery_at=last_recovery_at(cloud),
        autopilot_failovers=tuple(state.failovers),
        approval_required=topology.approval.required,
    )


def _look(cloud: Cloud, topology: Topology, lease: Lease) -> Round:
    region = topology.primary_region
    serving = lease.active_region == region
    started = time.time()  # what the observers saw, they saw from here on (a timeout ends later)
    observations = observe(
        cloud,
        topology,
        region,
        send_heartbeat=lambda: write_heartbeat(cloud, topology, region),
        serving=serving,
    )
    return Round(at=started, region=region, observations=observations)


def _alert(cloud: Cloud, topology: Topology, decision: Decision, seen: Round | None) -> tuple[str, ...]:
    lines = [decision.why]
    if decision.command:
        lines += ["", "Command:", f"  {decision.command}"]
    if seen is not None:
        lines += ["", f"What the observers saw of {seen.region}:"]
        lines += [
            f"  {o.observer.value}: {'ok' if o.ok else 'FAILING'} - {o.detail}" for o in seen.observations
        ]
    subject = f"mldr autopilot ({topology.name}): {decision.verdict.value}"
    return tuple(notify(cloud, topology, subject=subject, message="\n".join(lines)))


def _fail_over(cloud: Cloud, topology: Topology, decision: Decision, state: State) -> tuple[str, str, str]:
    """Start the unplanned failover as `mldr failover` would: (operation id, status, message)."""
    params = OperationParams(
        kind="failover",
        target_region=topology.secondary_region,
        mode=Mode.UNPLANNED,
        reason=f"autopilot: {decision.why}"[:1000],
        requested_by=AUTOPILOT,
        require_approval=False,
    )
    try:
        ctx = open_operation(topology, cloud, params, say=log.info)
    except MldrError as exc:  # the lease is held, a drill runs: nothing was started
        return "", "refused", str(exc)
    ctx.approver = AUTOPILOT  # the policy in force is the approval (`mldr autopilot enable --mode act`)
    # Counted before it runs: a failover that crashes half-way still counts against max_per_day.
    state.failovers.append(time.time())
    save_state(cloud.control(), state)
    try:
        record = execute(ctx)
    except MldrError as exc:
        return ctx.record.id, OperationStatus.FAILED.value, str(exc)
    return record.id, record.status.value, record.message


def evaluate(cloud: Cloud, topology: Topology) -> Evaluation:
    """Look once and act per the policy in force."""
    control = cloud.control()
    policy = read_policy(control, topology)
    state = read_state(control)
    lease = control.read_lease()
    seen: Round | None = None
    if policy.policy.mode is not AutopilotMode.OFF and lease.operation is None:
        seen = _look(cloud, topology, lease)
        state.add(seen, required=policy.policy.observers_required)
    now = time.time()
    state.keep_recent(now, horizon=policy.policy.for_seconds + 2 * MAX_ROUND_GAP)
    decision = decide(policy.policy, state.rounds, _situation(topology, lease, cloud, state, now))
    changed = state.last is None or state.last.verdict is not decision.verdict
    state.last, state.decided_at = decision, now_iso()
    alerted: tuple[str, ...] = ()
    if decision.verdict not in ALERTING:
        state.alerted = ""
    elif state.alerted != decision.verdict.value:
        # Sent once per verdict, not every minute; but an alert no topic took is sent again.
        alerted = _alert(cloud, topology, decision, seen)
        state.alerted = decision.verdict.value if alerted else ""
    save_state(control, state)
    op_id = op_status = None
    op_message = ""
    if decision.verdict is Verdict.FAILOVER:
        op_id, op_status, op_message = _fail_over(cloud, topology, decision, state)
        log.warning("autopilot failover %s: %s. %s", op_id or "-", op_status, op_message)
    result = Evaluation(policy, seen, decision, changed, alerted, op_id or None, op_status, op_message)
    if changed or op_status:
        fields = result.public()
        fields["failover_operation_id"] = fields.pop("operation_id")  # the audit's own key names the log
        AuditLog(cloud, topology, control).record(AUDIT_ID, "evaluation", by=AUTOPILOT, **fields)
    return result
