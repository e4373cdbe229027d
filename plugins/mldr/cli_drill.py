"""`mldr drill`: the DR drill without Airflow (the same code the `dr_drill` DAG runs).

Progress goes to stderr as the drill runs; the summary table (or `--json`) to stdout; the
report is stored in both regions' ops buckets and written under `--out` (default
`reports/drill/`). Exit code 0 when the verdict is pass, 1 when it is fail.
`mldr drill --recover` only undoes an interrupted drill.
"""

from __future__ import annotations

import argparse
from typing import Any

from mldr.cli_base import add_command, number, print_json, say
from mldr.extras import require_extra

DEFAULT_OUT = "reports/drill"
#: An objective is a positive, finite number of seconds: a drill judged against `nan` "passes".
_objective = number(minimum=0, exclusive_minimum=True)


def cmd_drill(args: argparse.Namespace) -> int:
    # the drill injects its faults through the sandbox (in AWS it refuses: see drill/faults.py)
    require_extra("sandbox", needed_by="`mldr drill`")
    from mldr.cli_ops import _context, _who
    from mldr.reports import base_url_from_env, first_report_url
    from mldr.runbooks import drill
    from mldr.runbooks.drill.publish import publish, summary
    from mldr.runbooks.drill.recover import recover
    from mldr.runbooks.drill.report import format_summary

    topology, cloud = _context()
    if args.recover:
        done = recover(topology, cloud, say=say)
        if args.json:
            print_json({"recovered": done})
        else:
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
    document = drill.run_drill(topology, cloud, params, say=say)
    document = publish(topology, cloud, document, local_dir=args.out)
    result: dict[str, Any] = summary(document)
    result["report_url"] = first_report_url(document.get("reports") or {}, base_url_from_env())
    if args.json:
        print_json(result)
    else:
        print(format_summary(result))
    return 0 if document["verdict"] == "pass" else 1


def register(sub: Any) -> None:
    from mldr.runbooks.drill.scenarios import Scenario  # light: the drill itself is imported only to run one

    d = add_command(
        sub,
        "drill",
        help="DR drill: fail over under a measured fault, fail back, report RTO/RPO/parity",
        description=__doc__.split("\n")[0] if __doc__ else None,
        examples=[
            "mldr drill",
            "mldr drill --scenario replication-stall --hold-seconds 5 --json",
            "mldr drill --recover   # undo an interrupted drill",
        ],
        exit_codes={
            0: "the verdict is pass (or --recover: recovered, or nothing to recover)",
            1: "the verdict is fail, or the drill could not run",
        },
        json_help="print the summary (or, with --recover, what was undone) as one JSON document",
    )
    d.add_argument(
        "--scenario",
        choices=[s.value for s in Scenario],
        default=Scenario.REGION_OUTAGE.value,
        help=f"the fault the drill injects (default {Scenario.REGION_OUTAGE.value})",
    )
    d.add_argument("--to", metavar="REGION", default=None, help="target region (default: the secondary)")
    d.add_argument(
        "--hold-seconds", type=number(minimum=0), default=10.0, help="stay failed over this long (default 10)"
    )
    d.add_argument("--no-failback", action="store_true", help="stay on the target region afterwards")
    d.add_argument(
        "--stall-seconds",
        type=number(minimum=0),
        default=3.0,
        help="replication-stall: replication paused this long before the outage (default 3)",
    )
    d.add_argument(
        "--rto-objective", type=_objective, default=None, help="override the topology's RTO (seconds)"
    )
    d.add_argument(
        "--rpo-objective", type=_objective, default=None, help="override the topology's RPO (seconds)"
    )
    d.add_argument("--keep-canaries", action="store_true", help="leave the drill's canary objects in place")
    d.add_argument(
        "--out", default=DEFAULT_OUT, help=f"where to write the report locally (default {DEFAULT_OUT})"
    )
    d.add_argument("--recover", action="store_true", help="only undo an interrupted drill, then exit")
    d.set_defaults(handler=cmd_drill)
