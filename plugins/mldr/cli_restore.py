"""`mldr restore`: bring a dataset back to its state at a time, or a model to a version.

`--dataset`: point-in-time recovery (`mldr.runbooks.restore`): the plan is shown first (keys to
revert, to delete, unchanged; bytes; the newest change it undoes) and approved like a failover.
`--model`: a model rollback (`mldr.runbooks.rollback`): serve a version again (`--version`, or
the one served at `--to`), its recovery point brought back. Both are operations under the DR
lease, resumable with `--resume`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from mldr.cli_base import add_command, say
from mldr.errors import ConfigurationError

EXIT_CODES = {
    0: "restored, planned (--dry-run) or nothing to do",
    1: "the restore failed or was refused (lease held, approval declined); see its record",
    2: "bad input (flags, unknown dataset, a time in the future): nothing was changed",
}


def _approve(ctx: Any) -> bool:
    from mldr.runbooks.engine import step_name

    print(ctx.record.steps[step_name(ctx.runbook.preflight)].result["summary"], file=sys.stderr)
    if not sys.stdin.isatty():
        raise ConfigurationError("approval needed but stdin is not a terminal: pass --yes to approve")
    print("proceed with the restore? type 'yes': ", end="", file=sys.stderr, flush=True)
    if input().strip().lower() != "yes":
        return False
    from mldr.cli_ops import _who

    ctx.approver = _who()  # the approval step records who typed yes
    return True


def cmd_restore(args: argparse.Namespace) -> int:
    from mldr.checks.point_in_time import check_prefixes, parse_restore_time
    from mldr.cli_ops import _context, _who
    from mldr.runbooks.engine import OperationStatus
    from mldr.runbooks.operations import execute, open_operation
    from mldr.runbooks.params import Mode, OperationParams, RestoreTarget, RollbackTarget, validate_reason

    reason = validate_reason(args.reason)
    at = parse_restore_time(args.to) if args.to is not None else None
    restore = rollback = None
    if args.model is not None:
        if (args.version is None) == (at is None):
            raise ConfigurationError("--model takes --version or --to (the version served then), one of them")
        if args.prefix or args.into_prefix is not None:
            raise ConfigurationError("--prefix and --into-prefix restore a dataset, not a model")
        rollback = RollbackTarget(model=args.model, version=args.version, at=at)
    else:
        if at is None:
            raise ConfigurationError("--dataset needs --to TIME: the moment to restore the dataset to")
        if args.version is not None:
            raise ConfigurationError("--version names a model version: use it with --model")
        check_prefixes(args.prefix, args.into_prefix)
        restore = RestoreTarget(dataset=args.dataset, at=at, prefix=args.prefix, into_prefix=args.into_prefix)
    topology, cloud = _context()
    if restore is not None:
        topology.dataset(restore.dataset)  # an unknown dataset is bad input, named before anything is read
    from mldr.runbooks.shared_steps import refuse_unapproved

    refuse_unapproved(topology, human_asked=not args.yes, dry_run=args.dry_run)
    region = cloud.control().read_lease().active_region
    params = OperationParams(
        kind="rollback" if rollback else "restore",
        target_region=region,
        mode=Mode.PLANNED,
        reason=reason,
        requested_by=_who(),
        dry_run=args.dry_run,
        require_approval=not args.yes,
        restore=restore,
        rollback=rollback,
    )
    ctx = open_operation(
        topology, cloud, params, operation_id=args.resume, resume=args.resume is not None, say=say
    )
    what = args.dataset if restore else f"model {args.model}"
    say(f"{params.kind} {ctx.record.id}: {what} in {region}{' DRY RUN' if args.dry_run else ''}")
    if args.yes:
        ctx.approver = _who()  # --yes is the caller's approval, given up front
    record = execute(ctx, approve=None if (args.yes or args.dry_run) else _approve)
    if args.json:
        print(json.dumps(record.public(), indent=2, default=str))
    else:
        print(f"{record.id}: {record.status.value}. {record.message}")
        for name, seconds in record.step_seconds().items():
            print(f"  {name:<18} {seconds:7.2f}s")
    ok = (OperationStatus.COMPLETED, OperationStatus.PLANNED, OperationStatus.NOOP)
    return 0 if record.status in ok else 1


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "restore",
        help="restore a dataset (or a prefix of it) to its state at a time, or a model to a version",
        examples=[
            "mldr restore --dataset training-data --to -2h --reason 'bad pipeline run INC-7' --dry-run",
            "mldr restore --dataset features --to 2026-12-03T10:15:00Z --prefix daily/ "
            "--reason 'features job deleted daily/' --yes --json",
            "mldr restore --dataset training-data --to -30m --into-prefix restored/ "
            "--reason 'compare with yesterday before restoring'",
            "mldr restore --model iris-classifier --to -2h --reason 'broken model registered INC-7' --yes",
        ],
        exit_codes=EXIT_CODES,
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--dataset", help="a dataset of the topology")
    what.add_argument("--model", help="a model of the registry: serve an earlier version again")
    parser.add_argument(
        "--to", metavar="TIME", help="RFC 3339 (2026-12-03T10:15:00Z) or relative (-2h, -30m)"
    )
    parser.add_argument("--version", help="--model: the version to serve (instead of --to)")
    parser.add_argument("--prefix", default="", help="restore only keys under this prefix")
    parser.add_argument(
        "--into-prefix", help="write the old state under this prefix, beside the live data, not over it"
    )
    parser.add_argument("--reason", required=True, help="why (at least 10 characters; audited)")
    parser.add_argument("--dry-run", action="store_true", help="show the plan only; change nothing")
    parser.add_argument("--yes", action="store_true", help="approve without a prompt")
    parser.add_argument("--resume", metavar="OPERATION_ID", help="continue this unfinished restore")
    parser.set_defaults(handler=cmd_restore)
