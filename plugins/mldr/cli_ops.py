"""`mldr status | failover | failback | abort | history`: the break-glass path when Airflow is down.

The same runbook code as the DAGs; progress is printed (stderr) as the steps run. Light: the
runbooks need botocore, pydantic and httpx only, so `pip install mldr` without extras runs these.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from mldr.cli_base import add_command, say, whole
from mldr.errors import ConfigurationError

if TYPE_CHECKING:
    from mldr.cloud.aws.cloud import AwsCloud
    from mldr.runbooks.autopilot.policy import State
    from mldr.topology import Topology


def _context() -> tuple[Topology, AwsCloud]:
    from mldr.cloud.aws.cloud import AwsCloud
    from mldr.topology import load_topology

    topology = load_topology(use_airflow=False)
    return topology, AwsCloud.from_environment(topology)


def _who() -> str:
    return os.environ.get("MLDR_OPERATOR") or getpass.getuser()


def _say(message: str) -> None:
    say(message)


def cmd_status(args: argparse.Namespace) -> int:
    from mldr.checks.fence_duty import pending_fence_duties
    from mldr.runbooks.autopilot.policy import read_policy, read_state
    from mldr.runbooks.drill.lock import running_drill
    from mldr.runbooks.engine import OperationStore
    from mldr.runbooks.progress_view import awaiting_approval, stalled

    topology, cloud = _context()
    control = cloud.control()
    lease = control.read_lease()
    duties = pending_fence_duties(control, lease)
    drill = running_drill(control)
    # Awaiting approval holds no lease (the fence takes it after the answer), and a run that died
    # before the fence holds none either: both are found in the records.
    records = OperationStore(control).history(limit=20)
    waiting = [r for r in records if awaiting_approval(r, topology) is not None]
    dead = [s for r in records if (s := stalled(r, topology)) is not None]
    data = {
        **lease.public(),
        "fence_duties": [d.public() for d in duties],
        "drill": drill.describe() if drill else None,
        "awaiting_approval": [{"operation": r.id, **vars(awaiting_approval(r, topology))} for r in waiting],
        "stalled": [vars(s) for s in dead],
        "autopilot": _autopilot(read_policy(control, topology).public(), read_state(control)),
    }
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"active region:  {lease.active_region}  (primary in topology: {topology.primary_region})")
    print(f"fencing token:  {lease.fencing_token}")
    print(f"fenced regions: {', '.join(lease.fenced_regions) or 'none'}")
    op = lease.operation
    doing = "none" if op is None else f"{op.id} {op.kind} {op.source}->{op.target} at step {op.step}"
    if op is not None and op.run:
        doing += f", run {op.run}"  # which process runs it: a resume takes it over
    print(f"operation:      {doing}")
    for record in waiting:
        print(f"AWAITING:       {record.id} {record.kind} to {record.params.target_region}: ", end="")
        print(awaiting_approval(record, topology).describe())  # type: ignore[union-attr]
    for dead_run in dead:
        print(f"STALLED:        {dead_run.operation}: {dead_run.describe()}")
    for duty in duties:
        print(f"PENDING DUTY:   {duty.describe()}")
    running = "none" if drill is None else f"{drill.describe()}: failover and failback wait for it"
    print(f"drill:          {running}")
    pilot = data["autopilot"]
    verdict = (
        f"last verdict {pilot['last_verdict']} at {pilot['decided_at']}: {pilot['why']}"
        if pilot["last_verdict"]
        else "no verdict yet"
    )
    print(f"autopilot:      {pilot['mode']} (policy from the {pilot['source']}); {verdict}")
    return 0


def _autopilot(policy: dict[str, object], state: State) -> dict[str, object]:
    """Autopilot at a glance for `mldr status`: its mode and last verdict (`mldr autopilot status`
    shows the rest: thresholds, observers)."""
    last = state.last
    return {
        "mode": policy["mode"],
        "source": policy["source"],
        "last_verdict": last.verdict.value if last else None,
        "decided_at": state.decided_at or None,
        "why": last.why if last else None,
        "command": last.command if last else None,
    }


def _approve_interactively(ctx: Any) -> bool:
    from mldr.runbooks.engine import step_name

    pre = ctx.record.steps[step_name(ctx.runbook.preflight)].result  # as stored: JSON
    # the plan and the prompt go to stderr: stdout holds only the result (one document under --json)
    print(
        json.dumps(
            {k: pre.get(k) for k in ("source", "target", "mode", "target_health", "forced")}, indent=2
        ),
        file=sys.stderr,
    )
    if not sys.stdin.isatty():
        raise ConfigurationError("approval needed but stdin is not a terminal: pass --yes to approve")
    print(
        f"proceed with {ctx.record.kind} to {ctx.params.target_region}? type 'yes': ",
        end="",
        file=sys.stderr,
        flush=True,
    )
    if input().strip().lower() != "yes":
        return False
    ctx.approver = _who()  # who typed yes: on a resume, not necessarily who started it
    return True


def _run(args: argparse.Namespace, kind: str, target: str, mode: str) -> int:
    from mldr.runbooks.engine import OperationStatus
    from mldr.runbooks.operations import execute, open_operation
    from mldr.runbooks.params import OperationParams, validate_mode, validate_reason
    from mldr.runbooks.shared_steps import refuse_unapproved

    reason = validate_reason(args.reason)
    topology, cloud = _context()
    topology.require_region(target)
    refuse_unapproved(topology, human_asked=not args.yes, dry_run=args.dry_run)
    params = OperationParams(
        kind=kind,
        target_region=target,
        mode=validate_mode(mode),
        reason=reason,
        requested_by=_who(),
        dry_run=args.dry_run,
        force=getattr(args, "force", False),
        require_approval=not args.yes,
    )
    ctx = open_operation(
        topology, cloud, params, operation_id=args.resume, resume=args.resume is not None, say=_say
    )
    _say(f"{kind} {ctx.record.id}: to {target} ({mode}){' DRY RUN' if args.dry_run else ''}")
    if args.yes:
        ctx.approver = _who()  # --yes is the caller's approval, given up front
    approve = None if (args.yes or args.dry_run) else _approve_interactively
    record = execute(ctx, approve=approve)
    if args.json:
        print(json.dumps(record.public(), indent=2, default=str))
    else:
        print(f"{record.id}: {record.status.value}. {record.message}")
        for name, seconds in record.step_seconds().items():
            print(f"  {name:<10} {seconds:7.2f}s")
        if record.status is OperationStatus.PLANNED:
            for line in ctx.runbook.plan():
                print(f"  plan: {line}")
    return (
        0
        if record.status in (OperationStatus.COMPLETED, OperationStatus.PLANNED, OperationStatus.NOOP)
        else 1
    )


def cmd_failover(args: argparse.Namespace) -> int:
    return _run(args, "failover", args.to, args.mode)


def cmd_failback(args: argparse.Namespace) -> int:
    topology, _ = _context()
    return _run(args, "failback", topology.primary_region, "planned")


def cmd_abort(args: argparse.Namespace) -> int:
    from mldr.runbooks.abort import abort
    from mldr.runbooks.params import validate_reason

    reason = validate_reason(args.reason)
    topology, cloud = _context()
    if not args.yes:
        lease = cloud.control().read_lease()
        op = lease.operation
        if op is not None and args.operation in (None, op.id):
            if not sys.stdin.isatty():
                raise ConfigurationError(
                    "confirmation needed but stdin is not a terminal: pass --yes to abort"
                )
            print(
                f"abort {op.kind} {op.id} at step {op.step}? {lease.active_region} will serve and take "
                "writes. type 'yes': ",
                end="",
                file=sys.stderr,
                flush=True,
            )
            if input().strip().lower() != "yes":
                print("not aborted; nothing was changed", file=sys.stderr)
                return 1
    result = abort(topology, cloud, operation_id=args.operation, reason=reason, requested_by=_who(), say=_say)
    if args.json:
        print(json.dumps(result.public(), indent=2))
    else:
        print(result.summary())
    return 1 if result.pending else 0


def cmd_history(args: argparse.Namespace) -> int:
    from mldr.runbooks.engine import OperationStore
    from mldr.runbooks.progress_view import awaiting_approval, stalled, took

    topology, cloud = _context()
    records = OperationStore(cloud.control()).history(limit=args.limit)
    if args.json:
        out = [{**r.public(), "stalled": vars(s) if (s := stalled(r, topology)) else None} for r in records]
        print(json.dumps(out, indent=2, default=str))
        return 0
    for r in records:
        waiting = awaiting_approval(r, topology)
        dead = stalled(r, topology)
        status = "stalled" if dead else "awaiting-approval" if waiting else r.status.value
        print(
            f"{r.created_at}  {r.id:<44} {status:<9} to {r.params.target_region} "
            f"({r.params.mode.value}, took {took(r).describe()}) by {r.params.requested_by}: "
            f"{r.params.reason}"
        )
        if dead:
            print(f"    {dead.describe()}")
        elif waiting:
            print(f"    {waiting.describe()}")
    if not records:
        print("no operations yet")
    return 0


OPERATION_EXIT_CODES = {
    0: "completed, planned (--dry-run) or nothing to do",
    1: "the operation failed or was refused (preflight, approval declined); see its record",
}


RESUME_HELP = (
    "continue this unfinished operation (from `mldr status`) at the step where it stopped, with "
    "the params it was started with; without it, a call while an operation holds the DR lease is refused"
)


def register(sub: Any) -> None:
    add_command(
        sub,
        "status",
        help="active region, fencing token, operation in progress",
        examples=["mldr status", "mldr status --json"],
        exit_codes={0: "the control state was read", 1: "it could not be read (control store unreachable)"},
    ).set_defaults(handler=cmd_status)

    fo = add_command(
        sub,
        "failover",
        help="move the service and its data to another region",
        examples=[
            "mldr failover --to us-west-2 --mode planned --reason 'maintenance in us-east-1' --dry-run",
            "mldr failover --to us-west-2 --mode unplanned --reason 'us-east-1 outage INC-42' --yes --json",
            "mldr failover --to us-west-2 --mode planned --reason 'maintenance in us-east-1' "
            "--resume failover-20261203T101500Z-1a2b3c",
        ],
        exit_codes=OPERATION_EXIT_CODES,
    )
    fo.add_argument("--to", required=True, metavar="REGION", help="the region to move to")
    fo.add_argument(
        "--mode",
        required=True,
        choices=["planned", "unplanned"],
        help="planned: fence writes, drain replication (RPO 0); unplanned: the source is impaired",
    )
    fo.add_argument("--reason", required=True, help="why (at least 10 characters; audited)")
    fo.add_argument("--dry-run", action="store_true", help="preflight and plan only; change nothing")
    fo.add_argument("--force", action="store_true", help="override a failed preflight (recorded)")
    fo.add_argument("--yes", action="store_true", help="approve without a prompt")
    fo.add_argument("--resume", metavar="OPERATION_ID", help=RESUME_HELP)
    fo.set_defaults(handler=cmd_failover)

    fb = add_command(
        sub,
        "failback",
        help="resync and return to the primary region",
        examples=[
            "mldr failback --reason 'us-east-1 recovered' --dry-run",
            "mldr failback --reason 'us-east-1 recovered' --yes --json",
        ],
        exit_codes=OPERATION_EXIT_CODES,
    )
    fb.add_argument("--reason", required=True, help="why (at least 10 characters; audited)")
    fb.add_argument("--dry-run", action="store_true", help="resync plan and preflight only; change nothing")
    fb.add_argument("--yes", action="store_true", help="approve without a prompt")
    fb.add_argument("--resume", metavar="OPERATION_ID", help=RESUME_HELP)
    fb.set_defaults(handler=cmd_failback)

    ab = add_command(
        sub,
        "abort",
        help="end the running failover/failback: one region serves and takes writes, the lease is freed",
        examples=[
            "mldr abort --reason 'failback stuck at resync, staying on us-west-2' --yes",
            "mldr abort --operation failback-20261203T101500Z-1a2b3c --reason 'INC-42 rollback' --json --yes",
        ],
        exit_codes={
            0: "aborted: the active region serves and takes writes, the other is fenced as it should be",
            1: "aborted, but a region did not answer: what is pending is listed; or not confirmed",
            2: "no such operation is running (nothing was changed)",
        },
    )
    ab.add_argument(
        "--operation", metavar="OPERATION_ID", help="the operation to abort (default: the running one)"
    )
    ab.add_argument("--reason", required=True, help="why (at least 10 characters; audited)")
    ab.add_argument("--yes", action="store_true", help="abort without a prompt")
    ab.set_defaults(handler=cmd_abort)

    history = add_command(
        sub,
        "history",
        help="past operations",
        examples=["mldr history", "mldr history --limit 5 --json"],
        exit_codes={0: "the history was read", 1: "it could not be read (control store unreachable)"},
    )
    history.add_argument(
        "--limit", type=whole(minimum=1, maximum=1000), default=20, help="at most this many (default 20)"
    )
    history.set_defaults(handler=cmd_history)
