"""Benchmark: autopilot's outage-to-serving time against its detection window, and false failovers.

    uv run python bench/autopilot.py [--outages 10] [--blips 50] [--for-seconds 5] [--json]

On a fresh sandbox of its own (its own directory, stopped at the end), autopilot in `act` mode
(3 of 4 observers, `--for-seconds`, no block window, no daily limit), `evaluate` driven in a
loop as the DAG would run it (every `--every` seconds, not every minute):

1. N outages: the primary's processes stopped (SIGSTOP). Measured from the stop: when the
   standby first serves a golden-set prediction through the DNS name (the edge), and when
   autopilot's failover completed. Then the primary is healed and failed back by hand.
   The detection window it is held against: Route 53's (probe interval x failure threshold)
   + `for_seconds`; the goal is a median within the window + 10 s.
2. M blips: the primary stopped for one evaluation (shorter than `for_seconds`), then healed;
   counted: the failovers autopilot started (goal: 0).

Not a test: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

from mldr import http  # noqa: E402
from mldr.cloud.aws.clients import ClientFactory  # noqa: E402
from mldr.cloud.aws.cloud import AwsCloud  # noqa: E402
from mldr.cloud.traffic import DetectionWindow  # noqa: E402
from mldr.errors import FailoverPreconditionFailed  # noqa: E402
from mldr.ml.golden import golden_set  # noqa: E402
from mldr.runbooks.autopilot.decision import Verdict  # noqa: E402
from mldr.runbooks.autopilot.evaluate import evaluate  # noqa: E402
from mldr.runbooks.autopilot.policy import change_policy  # noqa: E402
from mldr.runbooks.operations import execute, open_operation  # noqa: E402
from mldr.runbooks.params import Mode, OperationParams  # noqa: E402
from mldr.sandbox.manager import Sandbox  # noqa: E402
from mldr.topology import AutopilotMode, Topology, load_topology  # noqa: E402


def _env(path: str) -> None:
    for line in Path(path).read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export ") :].partition("=")
            os.environ[key] = value.strip("'")


def served_by_standby(topology: Topology, region: str) -> bool:
    url = topology.inference.client_url.rstrip("/") + "/predict"
    try:
        r = http.post(url, json={"instances": golden_set()}, timeout=2.0)
    except Exception:
        return False
    return r.status_code == 200 and r.headers.get("x-mldr-served-by") == region


def failback(topology: Topology, factory: ClientFactory) -> None:
    params = OperationParams(
        kind="failback",
        target_region=topology.primary_region,
        mode=Mode.PLANNED,
        reason="bench/autopilot.py: back to the primary",
        requested_by="bench",
        require_approval=False,
    )
    for _attempt in range(3):  # a busy machine times a healthy region out now and then
        try:
            record = execute(open_operation(topology, AwsCloud(factory), params))
            break
        except FailoverPreconditionFailed as exc:
            print(f"failback refused ({exc}); again in 10 s", file=sys.stderr)
            time.sleep(10)
    else:
        raise SystemExit("failback refused three times")
    if record.status.value != "completed":
        raise SystemExit(f"failback {record.id}: {record.status.value}: {record.message}")


def settle(topology: Topology, factory: ClientFactory, every: float, timeout: float = 120.0) -> None:
    """Evaluate until every observer sees the primary healthy again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if evaluate(AwsCloud(factory), topology).decision.verdict is Verdict.HEALTHY:
            return
        time.sleep(every)
    raise SystemExit("the primary did not look healthy again within 120 s")


def one_outage(
    sandbox: Sandbox, topology: Topology, factory: ClientFactory, every: float
) -> dict[str, float]:
    primary, standby = topology.primary_region, topology.secondary_region
    settle(topology, factory, every)
    served: dict[str, float] = {}
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set() and "served" not in served:
            if served_by_standby(topology, standby):
                served["served"] = time.monotonic()
            stop.wait(0.25)

    started = time.monotonic()
    sandbox.region_outage(primary)
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        while True:
            result = evaluate(AwsCloud(factory), topology)
            if result.operation_status is not None:
                done = time.monotonic()
                break
            if time.monotonic() - started > 300:
                raise SystemExit("autopilot did not fail over within 300 s")
            time.sleep(every)
        poller.join(timeout=60)
    finally:
        stop.set()
        sandbox.heal(primary)
    if result.operation_status != "completed":
        raise SystemExit(f"autopilot's failover {result.operation_status}: {result.operation_message}")
    failback(topology, factory)
    return {
        "served_seconds": served.get("served", float("nan")) - started,
        "failover_done_seconds": done - started,
    }


def one_blip(sandbox: Sandbox, topology: Topology, factory: ClientFactory, every: float) -> int:
    """The primary stopped for one evaluation; the failovers autopilot started (0 or 1)."""
    primary = topology.primary_region
    settle(topology, factory, every)
    sandbox.region_outage(primary)
    try:
        during = evaluate(AwsCloud(factory), topology)
    finally:
        sandbox.heal(primary)
    after = evaluate(AwsCloud(factory), topology)
    started = sum(1 for e in (during, after) if e.operation_id is not None)
    if started:
        failback(topology, factory)
    return started


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--outages", type=int, default=10, help="real outages to fail over from (default 10)")
    parser.add_argument("--blips", type=int, default=50, help="blips that must not fail over (default 50)")
    parser.add_argument("--for-seconds", type=int, default=5, help="autopilot's for_seconds (default 5)")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between evaluations (default 1)")
    parser.add_argument(
        "--probe-interval", type=float, default=1.0, help="the edge's probe interval (default 1)"
    )
    parser.add_argument(
        "--failure-threshold", type=int, default=3, help="failed probes to unhealthy (default 3)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON document")
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="mldr-bench-autopilot-"))
    os.environ["MLDR_SANDBOX_DIR"] = str(directory)
    sandbox = Sandbox(directory)
    try:
        state, _ = sandbox.up(probe_interval=args.probe_interval, failure_threshold=args.failure_threshold)
        _env(state.env_path)
        topology = load_topology(use_airflow=False)
        factory = ClientFactory.from_environment(topology)
        # The sandbox's health checks probe faster than the API's 10 s minimum (a tag says how
        # fast), so the window is the edge's own settings, not the health check's RequestInterval.
        window = DetectionWindow(args.probe_interval, args.failure_threshold)
        change_policy(
            AwsCloud(factory),
            topology,
            by="bench",
            reason="bench/autopilot.py measures autopilot",
            mode=AutopilotMode.ACT,
            observers_required=3,
            for_seconds=args.for_seconds,
            block_after_seconds=0,
            max_per_day=24,
        )
        outages = []
        for i in range(args.outages):
            outages.append(one_outage(sandbox, topology, factory, args.every))
            print(f"outage {i + 1}/{args.outages}: {json.dumps(outages[-1])}", file=sys.stderr)
        false = 0
        for i in range(args.blips):
            false += one_blip(sandbox, topology, factory, args.every)
            print(f"blip {i + 1}/{args.blips}: {false} failover(s) so far", file=sys.stderr)
    finally:
        sandbox.down()
    detection = window.seconds + args.for_seconds
    served = [o["served_seconds"] for o in outages]
    done = [o["failover_done_seconds"] for o in outages]
    figures = {
        "outages": args.outages,
        "blips": args.blips,
        "route53_window_seconds": window.seconds,
        "for_seconds": args.for_seconds,
        "detection_window_seconds": detection,
        "served_by_standby_median": round(statistics.median(served), 2) if served else None,
        "served_by_standby_p95": round(percentile(served, 0.95), 2) if served else None,
        "failover_done_median": round(statistics.median(done), 2) if done else None,
        "failover_done_p95": round(percentile(done, 0.95), 2) if done else None,
        "false_failovers": false,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"detection window: Route 53 {window.seconds:g} s + for_seconds {args.for_seconds} s "
        f"= {detection:g} s"
    )
    if outages:
        print(
            f"{args.outages} outages: predictions served by the standby after median "
            f"{figures['served_by_standby_median']} s (p95 {figures['served_by_standby_p95']} s); "
            "autopilot's "
            f"failover completed after median {figures['failover_done_median']} s "
            f"(p95 {figures['failover_done_p95']} s); goal: median <= window + 10 s = {detection + 10:g} s"
        )
    print(f"{args.blips} blips: {false} false failover(s) (goal 0)")


if __name__ == "__main__":
    main()
