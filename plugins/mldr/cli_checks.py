"""`mldr verify` and `mldr lag`: the data-protection checks without Airflow.

The same library code as the `dr_backup_verification` and `dr_replication_lag` DAGs: the
report is stored in the ops bucket of each region that answers and the CloudWatch metrics are
published, so a manual run shows up where a scheduled one would. Exit codes: 0 all good, 1 a
check failed (or could not run), 2 bad input (nothing was checked or written).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from mldr.cli_base import add_command, number, say, whole
from mldr.html import prepare


def _context() -> tuple[Any, Any]:
    from mldr.cloud.aws.cloud import AwsCloud
    from mldr.topology import load_topology

    topology = load_topology(use_airflow=False)
    return topology, AwsCloud.from_environment(topology)


#: The longest anyone waits for a canary: a bound, so a typo (or `inf`) cannot hang the check.
MAX_CANARY_TIMEOUT = 3600.0
_non_negative_int = whole(minimum=0)
_positive_seconds = number(minimum=0, exclusive_minimum=True)
_canary_timeout = number(minimum=0, exclusive_minimum=True, maximum=MAX_CANARY_TIMEOUT)


def _who() -> str:
    import getpass
    import os

    return os.environ.get("MLDR_OPERATOR") or getpass.getuser()


def _keep(
    cloud: Any,
    topology: Any,
    kind: str,
    names: list[str] | None,
    document: dict[str, Any],
    html: str,
    metrics: dict[str, Any],
) -> dict[str, str]:
    from mldr.checks.results import keep_check_results

    label = "cli-" + ("-".join(names) if names else "all")
    return keep_check_results(
        cloud, topology, kind=kind, label=label, document=document, html=html, metrics=metrics
    )


def cmd_verify(args: argparse.Namespace) -> int:
    from mldr.checks.verification import (
        Mode,
        VerifyOptions,
        breach_lines,
        render_html,
        verification_metrics,
        verify,
    )
    from mldr.reports import base_url_from_env, first_report_url, report_lines

    options = VerifyOptions(
        sample=args.sample, mode=Mode(args.mode), pending_threshold_seconds=args.threshold
    )
    topology, cloud = _context()
    names = args.dataset or None
    topology.datasets_named(names)  # unknown names: exit 2 before anything is read or written
    if not args.no_report:
        prepare("verification.html")  # compiled while the buckets are listed
    report = verify(cloud, topology, datasets=names, options=options)
    document = report.to_dict()
    if not args.no_report:
        document["reports"] = _keep(
            cloud,
            topology,
            "verification",
            names,
            document,
            render_html(document),
            {d.name: verification_metrics(d) for d in report.datasets},
        )
        document["report_url"] = first_report_url(document["reports"], base_url_from_env())
    if args.json:
        print(json.dumps(document, indent=2, default=str))
    else:
        for d in document["datasets"]:
            basis = ", ".join(f"{k} {v}" for k, v in d["basis"].items()) or "-"
            restore = d.get("restore") or {}
            print(
                f"{d['name']:<20} {'OK' if d['ok'] else 'FAILED':<7} {d['objects_checked']} objects "
                f"(compared on: {basis}); "
                f"restore test {restore.get('verified', 0)}/{restore.get('sampled', 0)}; "
                f"{len(d['pending'])} pending"
            )
            for line in breach_lines(d):
                print(f"  {line}")
        for line in report_lines(document.get("reports", {}), base_url_from_env()):
            print(line)
    if not report.ok:
        say("mldr: verification FAILED; see runbooks/backup-verification-failed.md")
    return 0 if report.ok else 1


def cmd_lag(args: argparse.Namespace) -> int:
    from mldr.checks.replication import LagOptions, lag_metrics, measure_lag, render_html
    from mldr.reports import base_url_from_env, first_report_url, report_lines
    from mldr.runbooks.fence_duty import complete_fence_duties

    options = LagOptions(threshold_seconds=args.threshold, canary_timeout_seconds=args.canary_timeout)
    topology, cloud = _context()
    names = args.dataset or None
    topology.datasets_named(names)
    # Before measuring: an old primary that answers again is fenced and its outgoing replication
    # stopped (a duty an unplanned failover left), so nothing more it takes can diverge.
    duties = complete_fence_duties(topology, cloud, by=_who())
    for outcome in duties:
        say(f"mldr: {outcome.line()}")
    if not args.no_report:
        prepare("replication_lag.html")  # compiled while the canaries travel
    report = measure_lag(cloud, topology, datasets=names, options=options)
    document = report.to_dict()
    if duties:
        document["fence_duties"] = [outcome.public() for outcome in duties]
    if not args.no_report:
        document["reports"] = _keep(
            cloud,
            topology,
            "replication-lag",
            names,
            document,
            render_html(document),
            {d.name: lag_metrics(d) for d in report.datasets},
        )
        document["report_url"] = first_report_url(document["reports"], base_url_from_env())
    if args.json:
        print(json.dumps(document, indent=2, default=str))
    else:
        for d in document["datasets"]:
            lag = "n/a" if d["lag_seconds"] is None else f"{d['lag_seconds']:.2f}s"
            if d["lag_seconds"] is None and (d.get("canary") or {}).get("timed_out"):
                lag = f">= {d['canary']['waited_seconds']:.0f}s (canary not arrived)"
            oldest = d["oldest_pending_age_seconds"]
            print(
                f"{d['name']:<20} {'OK' if d['ok'] else 'BREACH':<7} lag {lag}; "
                f"{d['pending_objects']} pending "
                f"({d['pending_bytes']} bytes, oldest {'-' if oldest is None else f'{oldest:.0f}s'}); "
                f"{d['failed_objects']} failed; threshold {d['threshold_seconds']:.0f}s"
            )
            for line in d["problems"]:
                print(f"  {line}")
        for line in report_lines(document.get("reports", {}), base_url_from_env()):
            print(line)
    if not report.ok:
        say("mldr: replication lag over the threshold; see runbooks/replication-lag.md")
    return 0 if report.ok else 1


CHECK_EXIT_CODES = {
    0: "every dataset passed",
    1: "a check failed, or could not run (the report says which and why)",
    2: "bad input (unknown dataset, bad flag): nothing was checked or written",
}


def register(sub: Any) -> None:
    verify = add_command(
        sub,
        "verify",
        help="backup verification: is the standby complete, identical and restorable?",
        examples=[
            "mldr verify",
            "mldr verify --dataset features --mode sampled --sample 20 --json",
            "mldr verify --no-report   # check only: store no report, publish no metric",
        ],
        exit_codes=CHECK_EXIT_CODES,
        json_help="print the report document (one JSON document on stdout)",
    )
    verify.add_argument(
        "--dataset", action="append", metavar="NAME", help="a dataset (repeatable; default: all)"
    )
    verify.add_argument(
        "--sample",
        type=_non_negative_int,
        default=10,
        metavar="N",
        help="objects to restore-test from the replica, newest included (default 10; 0 = none)",
    )
    verify.add_argument(
        "--mode",
        choices=["full", "sampled"],
        default="full",
        help="full: every key's content compared; sampled: checksum requests for a sample only",
    )
    verify.add_argument(
        "--threshold",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="pending replication older than this is an error (default: each dataset's RPO)",
    )
    verify.add_argument("--no-report", action="store_true", help="do not store the report or publish metrics")
    verify.set_defaults(handler=cmd_verify)

    lag = add_command(
        sub,
        "lag",
        help="replication lag now: canary round trip and backlog, per dataset (first, fences an old "
        "primary that answers again after an unplanned failover: the duty `mldr status` shows)",
        examples=["mldr lag", "mldr lag --dataset features --threshold 60 --json"],
        exit_codes=CHECK_EXIT_CODES,
        json_help="print the report document (one JSON document on stdout)",
    )
    lag.add_argument(
        "--dataset", action="append", metavar="NAME", help="a dataset (repeatable; default: all)"
    )
    lag.add_argument(
        "--threshold",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="breach when lag or the oldest pending object is older (default: each dataset's RPO)",
    )
    lag.add_argument(
        "--canary-timeout",
        type=_canary_timeout,
        default=None,
        metavar="SECONDS",
        help="how long to wait for the canary (default: the threshold, at most 30 s)",
    )
    lag.add_argument("--no-report", action="store_true", help="do not store the report or publish metrics")
    lag.set_defaults(handler=cmd_lag)
