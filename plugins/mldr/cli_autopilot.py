"""`mldr autopilot status | enable | disable | evaluate`: automated failover, switched without a deploy.

The policy in force lives in the DR control store (seeded from the topology's `autopilot`
block); `enable` and `disable` change it there, audited. `evaluate` looks once and acts per the
policy - the same code the `dr_autopilot` DAG runs every minute.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from mldr.cli_base import add_command, add_group, whole
from mldr.cli_ops import _context, _who

EVALUATE_EXIT_CODES = {
    0: "looked and decided (whatever the verdict: healthy, suspect, recommended, failed over)",
    1: "autopilot started a failover and it did not complete; see its record (`mldr history`)",
}


def _print_policy(public: dict[str, Any]) -> None:
    print(
        f"autopilot:  {public['mode']}  ({public['observers_required']} of {public['observers']} observers "
        f"for {public['for_seconds']:g}s; block {public['block_after_seconds']:g}s after a failover or "
        f"failback; at most {public['max_per_day']} a day)"
    )
    changed = f"{public['changed_by']} at {public['changed_at']}" if public["changed_at"] else "never"
    print(f"policy:     from the {public['source']}; last changed by {changed}")


def cmd_autopilot_status(args: argparse.Namespace) -> int:
    from mldr.runbooks.autopilot.policy import latest_round, read_policy, read_state

    topology, cloud = _context()
    control = cloud.control()
    policy = read_policy(control, topology)
    state = read_state(control)
    seen = latest_round(state)
    data = {
        "policy": policy.public(),
        "last_decision": state.last.public() if state.last else None,
        "decided_at": state.decided_at or None,
        "observations": [o.public() for o in seen.observations] if seen else [],
        "watched_region": seen.region if seen else None,
        "autopilot_failovers_24h": len(state.failovers),
    }
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    _print_policy(policy.public())
    if state.last is None:
        print("decision:   none yet (`mldr autopilot evaluate` looks once)")
        return 0
    print(f"decision:   {state.last.verdict.value} at {state.decided_at}: {state.last.why}")
    if state.last.command:
        print(f"command:    {state.last.command}")
    for o in seen.observations if seen else ():
        print(f"  {o.observer.value:<14} {'ok' if o.ok else 'FAILING':<8} {o.detail}")
    return 0


def _change(args: argparse.Namespace, mode: str) -> int:
    from mldr.runbooks.autopilot.policy import change_policy
    from mldr.topology import AutopilotMode

    topology, cloud = _context()
    record = change_policy(
        cloud,
        topology,
        by=_who(),
        reason=args.reason or "",
        mode=AutopilotMode(mode),
        observers_required=getattr(args, "observers_required", None),
        for_seconds=getattr(args, "for_seconds", None),
        block_after_seconds=getattr(args, "block_after_seconds", None),
        max_per_day=getattr(args, "max_per_day", None),
    )
    if args.json:
        print(json.dumps(record.public(), indent=2))
    else:
        _print_policy(record.public())
    return 0


def cmd_autopilot_enable(args: argparse.Namespace) -> int:
    return _change(args, args.mode)


def cmd_autopilot_disable(args: argparse.Namespace) -> int:
    return _change(args, "off")


def cmd_autopilot_evaluate(args: argparse.Namespace) -> int:
    from mldr.runbooks.autopilot.evaluate import evaluate

    topology, cloud = _context()
    result = evaluate(cloud, topology)
    if args.json:
        print(json.dumps(result.public(), indent=2, default=str))
    else:
        d = result.decision
        print(f"{d.verdict.value}: {d.why}")
        if d.command:
            print(f"command: {d.command}")
        for o in result.round.observations if result.round else ():
            print(f"  {o.observer.value:<14} {'ok' if o.ok else 'FAILING':<8} {o.detail}")
        if result.alerted:
            print(f"alert sent to the topics of {', '.join(result.alerted)}")
        if result.operation_status:
            print(f"failover {result.operation_id}: {result.operation_status}. {result.operation_message}")
    failed = result.operation_status is not None and result.operation_status != "completed"
    return 1 if failed else 0


def register(sub: Any) -> None:
    group = add_group(
        sub,
        "autopilot",
        help="automated failover: its policy, its last decision, one evaluation",
        examples=[
            "mldr autopilot status",
            "mldr autopilot enable --mode recommend",
            "mldr autopilot evaluate --json",
        ],
    )
    add_command(
        group,
        "status",
        help="the policy in force, the last decision and what each observer saw",
        examples=["mldr autopilot status", "mldr autopilot status --json"],
        exit_codes={0: "read", 1: "the control store could not be read"},
    ).set_defaults(handler=cmd_autopilot_status)

    enable = add_command(
        group,
        "enable",
        help="switch autopilot on (audited): recommend alerts with the command, act fails over",
        examples=[
            "mldr autopilot enable --mode recommend",
            "mldr autopilot enable --mode act --for-seconds 120 --reason 'INC-7: cover the night'",
        ],
        exit_codes={2: "a setting out of bounds: nothing was changed"},
    )
    enable.add_argument(
        "--mode",
        required=True,
        choices=["act", "recommend"],
        help="act: start the unplanned failover itself; recommend: alert with the command only",
    )
    enable.add_argument(
        "--observers-required",
        type=whole(minimum=2, maximum=4),
        help="how many of the 4 observers must see the primary failing (default: as now)",
    )
    enable.add_argument(
        "--for-seconds",
        type=whole(minimum=1, maximum=3600),
        help="for how long they must agree (default: as now)",
    )
    enable.add_argument(
        "--block-after-seconds",
        type=whole(minimum=0, maximum=7 * 86_400),
        help="no automatic failover this long after a failover or failback (default: as now)",
    )
    enable.add_argument(
        "--max-per-day",
        type=whole(minimum=1, maximum=24),
        help="at most this many automatic failovers in 24 hours (default: as now)",
    )
    enable.add_argument("--reason", help="why (audited with the change)")
    enable.set_defaults(handler=cmd_autopilot_enable)

    disable = add_command(
        group,
        "disable",
        help="switch autopilot off (audited); the DAG keeps running and only records 'off'",
        examples=["mldr autopilot disable --reason 'planned maintenance'"],
    )
    disable.add_argument("--reason", help="why (audited with the change)")
    disable.set_defaults(handler=cmd_autopilot_disable)

    add_command(
        group,
        "evaluate",
        help="look once and act per the policy: what the dr_autopilot DAG runs every minute",
        examples=["mldr autopilot evaluate", "mldr autopilot evaluate --json"],
        exit_codes=EVALUATE_EXIT_CODES,
    ).set_defaults(handler=cmd_autopilot_evaluate)
