"""`mldr status | failover | failback | history`: the break-glass path when Airflow is down.

The same runbook code as the DAGs; progress is printed as the steps run.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from mldr.errors import ConfigurationError

if TYPE_CHECKING:
    from mldr.cloud.aws.cloud import AwsCloud
    from mldr.topology import Topology


def _context() -> tuple[Topology, AwsCloud]:
    from mldr.cloud.aws.cloud import AwsCloud
    from mldr.topology import load_topology

    topology = load_topology(use_airflow=False)
    return topology, AwsCloud.from_environment(topology)


def _who() -> str:
    return os.environ.get("MLDR_OPERATOR") or getpass.getuser()


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_status(args: argparse.Namespace) -> int:
    topology, cloud = _context()
    lease = cloud.control().read_lease()
    data = lease.public()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"active region:  {lease.active_region}  (primary in topology: {topology.primary_region})")
    print(f"fencing token:  {lease.fencing_token}")
    print(f"fenced regions: {', '.join(lease.fenced_regions) or 'none'}")
    op = lease.operation
    doing = "none" if op is None else f"{op.id} {op.kind} {op.source}->{op.target} at step {op.step}"
    print(f"operation:      {doing}")
    return 0


def _approve_interactively(ctx: Any) -> bool:
    pre = ctx.record.result("preflight")
    print(
        json.dumps({k: pre.get(k) for k in ("source", "target", "mode", "target_health", "forced")}, indent=2)
    )
    if not sys.stdin.isatty():
        raise ConfigurationError("approval needed but stdin is not a terminal: pass --yes to approve")
    answer = input(f"proceed with {ctx.record.kind} to {ctx.params['target_region']}? type 'yes': ")
    return answer.strip().lower() == "yes"


def _run(args: argparse.Namespace, kind: str, target: str, mode: str) -> int:
    from mldr.runbooks.common import OperationParams, validate_mode, validate_reason
    from mldr.runbooks.engine import OperationStatus
    from mldr.runbooks.operations import execute, open_operation

    reason = validate_reason(args.reason)
    topology, cloud = _context()
    topology.require_region(target)
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
    ctx = open_operation(topology, cloud, params, say=_say)
    _say(f"{kind} {ctx.record.id}: to {target} ({mode}){' DRY RUN' if args.dry_run else ''}")
    approve = None if (args.yes or args.dry_run) else _approve_interactively
    record = execute(ctx, approve=approve)
    if args.json:
        print(json.dumps(record.public(), indent=2, default=str))
    else:
        print(f"{record.id}: {record.status.value}. {record.message}")
        for name, seconds in record.step_seconds().items():
            print(f"  {name:<10} {seconds:7.2f}s")
        if record.status is OperationStatus.PLANNED:
            for line in record.result("preflight").get("plan", []):
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


def cmd_history(args: argparse.Namespace) -> int:
    from mldr.runbooks.engine import OperationStore

    _, cloud = _context()
    records = OperationStore(cloud.control()).history(limit=args.limit)
    if args.json:
        print(json.dumps([r.public() for r in records], indent=2, default=str))
        return 0
    for r in records:
        total = sum(r.step_seconds().values())
        print(
            f"{r.created_at}  {r.id:<44} {r.status.value:<9} to {r.params.get('target_region')} "
            f"({r.params.get('mode')}, {total:.1f}s) by {r.params.get('requested_by')}: "
            f"{r.params.get('reason')}"
        )
    if not records:
        print("no operations yet")
    return 0


def register(sub: Any) -> None:
    status = sub.add_parser("status", help="active region, fencing token, operation in progress")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_status)

    fo = sub.add_parser("failover", help="move the service and its data to another region")
    fo.add_argument("--to", required=True, metavar="REGION")
    fo.add_argument("--mode", required=True, choices=["planned", "unplanned"])
    fo.add_argument("--reason", required=True, help="why (at least 10 characters; audited)")
    fo.add_argument("--dry-run", action="store_true", help="preflight and plan only; change nothing")
    fo.add_argument("--force", action="store_true", help="override a failed preflight (recorded)")
    fo.add_argument("--yes", action="store_true", help="approve without a prompt")
    fo.add_argument("--json", action="store_true")
    fo.set_defaults(handler=cmd_failover)

    fb = sub.add_parser("failback", help="resync and return to the primary region")
    fb.add_argument("--reason", required=True)
    fb.add_argument("--dry-run", action="store_true")
    fb.add_argument("--yes", action="store_true")
    fb.add_argument("--json", action="store_true")
    fb.set_defaults(handler=cmd_failback)

    history = sub.add_parser("history", help="past operations")
    history.add_argument("--limit", type=int, default=20)
    history.add_argument("--json", action="store_true")
    history.set_defaults(handler=cmd_history)
