"""`mldr drill`: the DR drill without Airflow (the same code the `dr_drill` DAG runs).

Progress goes to stderr as the drill runs; the summary table (or `--json`) to stdout; the
report is stored in both regions' ops buckets and written under `--out` (default
`reports/drill/`). Exit code 0 when the verdict is pass, 1 when it is fail.
`mldr drill --recover` only undoes an interrupted drill.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

DEFAULT_OUT = "reports/drill"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_drill(args: argparse.Namespace) -> int:
    from mldr.cli_ops import _context, _who
    from mldr.cloud.aws.cloud import factory_of
    from mldr.runbooks import drill
    from mldr.runbooks.drill.report import format_summary

    topology, cloud = _context()
    if args.recover:
        done = drill.recover(topology, cloud, say=_say)
        print("recovered: " + "; ".join(done) if done else "no interrupted drill: nothing to recover")
        return 0
    params = drill.DrillParams.from_mapping(
        {
            "scenario": args.scenario,
            "target_region": args.to,
            "hold_seconds": args.hold_seconds,
            "failback": not args.no_failback,
            "stall_seconds": args.stall_seconds,
            "rto_objective_seconds": args.rto_objective,
            "rpo_objective_seconds": args.rpo_objective,
            "keep_canaries": args.keep_canaries,
            "requested_by": _who(),
        }
    )
    document = drill.run_drill(topology, cloud, params, say=_say)
    # TRANSITION (branch `platform`): publishing reports is the `cloud` branch's to convert
    document = drill.publish(topology, factory_of(cloud), document, local_dir=args.out)
    result: dict[str, Any] = drill.summary(document)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(format_summary(result))
    return 0 if document["verdict"] == "pass" else 1


def register(sub: Any) -> None:
    from mldr.runbooks.drill.scenarios import Scenario

    d = sub.add_parser(
        "drill",
        help="DR drill: fail over under a measured fault, fail back, report RTO/RPO/parity",
        description=__doc__.split("\n")[0] if __doc__ else None,
    )
    d.add_argument("--scenario", choices=[s.value for s in Scenario], default=Scenario.REGION_OUTAGE.value)
    d.add_argument("--to", metavar="REGION", default=None, help="target region (default: the secondary)")
    d.add_argument("--hold-seconds", type=float, default=10.0, help="stay failed over this long (default 10)")
    d.add_argument("--no-failback", action="store_true", help="stay on the target region afterwards")
    d.add_argument(
        "--stall-seconds",
        type=float,
        default=3.0,
        help="replication-stall: replication paused this long before the outage (default 3)",
    )
    d.add_argument("--rto-objective", type=float, default=None, help="override the topology's RTO (seconds)")
    d.add_argument("--rpo-objective", type=float, default=None, help="override the topology's RPO (seconds)")
    d.add_argument("--keep-canaries", action="store_true", help="leave the drill's canary objects in place")
    d.add_argument(
        "--out", default=DEFAULT_OUT, help=f"where to write the report locally (default {DEFAULT_OUT})"
    )
    d.add_argument("--json", action="store_true", help="print the summary as JSON")
    d.add_argument("--recover", action="store_true", help="only undo an interrupted drill, then exit")
    d.set_defaults(handler=cmd_drill)
