"""Benchmark: the drill's measured RTO against the detection window, and Airflow's overhead.

    .venv/bin/python bench/drill.py [--runs 3] [--dag-runs 2] [--hold 2] [--out bench/RESULTS-drill.md]

On a sandbox of its own (started here, stopped at the end), with an Airflow home of its own:

1. `--runs` region-outage drills through the CLI (`mldr drill --json`, a subprocess, wall time):
   measured RTO (client-observed downtime), detection time, and the ratio RTO / detection window
   (the sandbox's health-check interval x failure threshold: Route 53's detection window);
2. `--dag-runs` region-outage drills through the `dr_drill` DAG (`dag.test()`, in process, after
   Airflow is imported and its DB migrated): wall time of the DAG run vs the CLI's;
3. one replication-stall and one planned-switchover drill through the CLI, for the RPO measured
   against the stall and the downtime of a graceful move.

Writes a Markdown table to `--out` and prints it. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))


def cli_drill(env: dict[str, str], out: Path, *args: str) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "mldr.cli", "drill", "--json", "--out", str(out), *args],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - started
    if result.returncode not in (0, 1):  # 1 = the drill ran and its verdict is fail
        raise SystemExit(f"mldr drill {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout), wall


def dag_drill(hold: float) -> tuple[dict[str, Any], float]:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["dr_drill"]
    started = time.monotonic()
    run = dag.test(run_conf={"hold_seconds": hold})
    wall = time.monotonic() - started
    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter(
                XComModel.run_id == run.run_id, XComModel.task_id == "drill", XComModel.key == "return_value"
            )
            .one()
        )
        value = json.loads(row.value) if isinstance(row.value, str) else row.value
    return value, wall


def row(kind: str, summary: dict[str, Any], wall: float) -> dict[str, Any]:
    detection = summary.get("detection") or {}
    return {
        "via": kind,
        "scenario": summary["scenario"],
        "verdict": summary["verdict"],
        "rto": summary["rto_seconds"],
        "detected": detection.get("detected_after_seconds"),
        "window": detection.get("window_seconds"),
        "ratio": detection.get("rto_over_window"),
        "rpo": summary["rpo_seconds"],
        "lost": summary["lost_objects"],
        "lost_after_failback": summary["lost_after_failback"],
        "failover_s": round(sum((summary.get("steps") or {}).get("failover", {}).values()), 1),
        "failback_s": round(sum((summary.get("steps") or {}).get("failback", {}).values()), 1),
        "drill_s": summary.get("duration_seconds"),
        "wall_s": round(wall, 1),
    }


def table(rows: list[dict[str, Any]]) -> str:
    headers = list(rows[0])
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join("" if r[h] is None else str(r[h]) for h in headers) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="region-outage drills via the CLI")
    parser.add_argument("--dag-runs", type=int, default=2, help="region-outage drills via the DAG")
    parser.add_argument("--hold", type=float, default=2.0, help="seconds to stay failed over")
    parser.add_argument("--out", default=str(REPO / "bench" / "RESULTS-drill.md"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mldr-bench-drill-"))
    os.environ.update(
        {
            "MLDR_SANDBOX_DIR": str(work / "sandbox"),
            "AIRFLOW_HOME": str(work / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
    )
    from mldr.sandbox.location import read_env_file
    from mldr.sandbox.manager import Sandbox

    load_before = os.getloadavg()
    sandbox = Sandbox(work / "sandbox")
    state, _ = sandbox.up(progress=lambda m: print(f"  {m}", flush=True))
    rows: list[dict[str, Any]] = []
    try:
        os.environ.update(read_env_file(state.env_path))
        env = {**os.environ, "PYTHONPATH": str(REPO / "plugins")}
        hold = f"{args.hold:g}"
        for i in range(args.runs):
            summary, wall = cli_drill(env, work / "reports", "--hold-seconds", hold)
            rows.append(row("cli", summary, wall))
            print(f"cli region-outage {i + 1}/{args.runs}: {rows[-1]}", flush=True)
        if args.dag_runs:
            from airflow.utils.db import initdb

            initdb()
            for i in range(args.dag_runs):
                summary, wall = dag_drill(args.hold)
                rows.append(row("dag", summary, wall))
                print(f"dag region-outage {i + 1}/{args.dag_runs}: {rows[-1]}", flush=True)
        for scenario in ("replication-stall", "planned-switchover"):
            summary, wall = cli_drill(env, work / "reports", "--scenario", scenario, "--hold-seconds", hold)
            rows.append(row("cli", summary, wall))
            print(f"cli {scenario}: {rows[-1]}", flush=True)
    finally:
        sandbox.down()
    load_after = os.getloadavg()

    outage = [r for r in rows if r["scenario"] == "region-outage" and r["rto"] is not None]
    cli = [r["wall_s"] for r in outage if r["via"] == "cli"]
    dag = [r["wall_s"] for r in outage if r["via"] == "dag"]
    ratios = [r["ratio"] for r in outage if r["ratio"] is not None]
    within_goal = sum(1 for r in outage if r["rto"] <= r["window"] + 5)
    lines = [
        "# Drill benchmark",
        "",
        f"`bench/drill.py --runs {args.runs} --dag-runs {args.dag_runs} --hold {args.hold:g}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, load average "
        f"{load_before[0]:.1f} before / {load_after[0]:.1f} after (other work shares the machine).",
        "",
        table(rows),
        "",
        "- **RTO vs the detection window** (region-outage, sandbox health check "
        f"{outage[0]['window'] if outage else '?'} s = 1 s interval x 3 failures): median RTO "
        f"{statistics.median(r['rto'] for r in outage):.2f} s, median ratio RTO / window "
        f"{statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f}); "
        f"{within_goal}/{len(outage)} drills within the goal window + 5 s."
        if outage and ratios
        else "- no region-outage drill recovered",
    ]
    if cli and dag:
        lines.append(
            f"- **Airflow orchestration overhead**: drill wall time via the DAG (`dag.test()`, in process, "
            f"Airflow already imported and migrated) median {statistics.median(dag):.1f} s vs via the CLI "
            f"(`mldr drill`, a new process) median {statistics.median(cli):.1f} s: ratio DAG / CLI "
            f"{statistics.median(dag) / statistics.median(cli):.2f}."
        )
    lines += [
        "- `rto` = client-observed downtime (first failed request to first success from the target); "
        "`detected` = fault to the health check turning unhealthy; `ratio` = rto / window; "
        "`failover_s` / `failback_s` = sum of the runbooks' step durations; `drill_s` = the drill "
        "itself; `wall_s` = the whole command or DAG run.",
        "",
    ]
    text = "\n".join(lines)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
