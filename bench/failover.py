"""Benchmark: failover durations, and failback resync throughput against `rclone sync`.

    uv run python bench/failover.py [--objects 5000] [--size 4096] [--skip-airflow] [--skip-resync]

In one run on a fresh sandbox (its own directory, stopped at the end):
1. planned and unplanned failover (and the failback after each) via the CLI, wall time;
2. the same four through Airflow: `make up` (airflow standalone, LocalExecutor) in a directory
   of its own, each DAG run triggered through the REST API and timed until it finished;
3. resync throughput: a delta of N new objects written in the active region while
   replication is paused, copied back by mldr's resync, then another delta of the same size
   copied by `rclone sync` (Debian's rclone, S3 provider Other, same parallelism: 32
   transfers and checkers) between the same bucket pair. Prints objects/s, MB/s and the
   ratio mldr / rclone.

Not a test: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

from mldr.sandbox.location import read_env_file  # noqa: E402
from mldr.sandbox.manager import Sandbox  # noqa: E402
from mldr.sandbox.provision import client  # noqa: E402

OPERATIONS = ("planned_failover", "failback_after_planned", "unplanned_failover", "failback_after_unplanned")


def sh(*args: str, env: dict[str, str] | None = None) -> float:
    started = time.monotonic()
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return time.monotonic() - started


def mldr(env: dict[str, str], *args: str) -> float:
    return sh(sys.executable, "-m", "mldr.cli", *args, env=env)


def fill(s3: Any, bucket: str, prefix: str, n: int, size: int) -> float:
    payload = os.urandom(size)

    def put(i: int) -> None:
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{i:06d}.bin", Body=payload[:-8] + i.to_bytes(8, "big"))

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        list(pool.map(put, range(n)))
    return time.monotonic() - started


def rclone_env(state: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}  # rclone rejects it here
    for name, region in (("PRI", state.primary), ("SEC", state.secondary)):
        env |= {
            f"RCLONE_CONFIG_{name}_TYPE": "s3",
            f"RCLONE_CONFIG_{name}_PROVIDER": "Other",
            f"RCLONE_CONFIG_{name}_ENDPOINT": state.moto[region],
            f"RCLONE_CONFIG_{name}_ACCESS_KEY_ID": "testing",
            f"RCLONE_CONFIG_{name}_SECRET_ACCESS_KEY": "testing",
            f"RCLONE_CONFIG_{name}_REGION": region,
            f"RCLONE_CONFIG_{name}_FORCE_PATH_STYLE": "true",
        }
    return env


def airflow_figures(directory: Path) -> dict[str, float]:
    """The CLI's four operations again, as DAG runs on `airflow standalone`."""
    from airflow_stack import AirflowStack  # bench/ is on sys.path: this script's directory

    print("failover via Airflow (airflow standalone, LocalExecutor; trigger -> run finished)", flush=True)
    figures: dict[str, float] = {}
    with AirflowStack(directory) as stack:
        sandbox = Sandbox(directory / "sandbox")
        state = sandbox.state
        assert state is not None
        p, s = state.primary, state.secondary

        def run(name: str, dag_id: str, conf: dict[str, Any]) -> None:
            finished = stack.run_dag(dag_id, {"require_approval": False, **conf})
            if finished.state != "success":
                raise SystemExit(f"{dag_id} run {finished.run_id} {finished.state}; see the Airflow UI/logs")
            figures[f"airflow_{name}"] = finished.wall_seconds
            print(
                f"  {name:<28} {finished.wall_seconds:6.1f} s (run {finished.run_seconds:.1f} s, "
                f"queued {finished.queued_seconds:.1f} s)",
                flush=True,
            )

        failover = {"target_region": s, "reason": "bench failover through airflow"}
        run("planned_failover", "dr_failover", {**failover, "mode": "planned"})
        run("failback_after_planned", "dr_failback", {"reason": "bench failback through airflow"})
        sandbox.region_outage(p)
        try:
            run("unplanned_failover", "dr_failover", {**failover, "mode": "unplanned"})
        finally:
            sandbox.heal(p)
        run("failback_after_unplanned", "dr_failback", {"reason": "bench failback through airflow"})
    return figures


def sandbox_env(state: Any) -> dict[str, str]:
    env = dict(os.environ)
    env.update(read_env_file(state.env_path))
    env["PYTHONPATH"] = str(REPO / "plugins")
    os.environ.update({k: v for k, v in env.items() if k.startswith(("AIRFLOW_CONN_", "MLDR_"))})
    return env


def cli_figures(sandbox: Sandbox, state: Any, env: dict[str, str]) -> dict[str, float]:
    print("failover via the CLI (wall time, including the CLI's own start-up)", flush=True)
    p, s = state.primary, state.secondary
    figures: dict[str, float] = {}
    planned = ("--to", s, "--mode", "planned", "--reason", "bench planned failover", "--yes")
    figures["cli_planned_failover"] = mldr(env, "failover", *planned)
    figures["cli_failback_after_planned"] = mldr(env, "failback", "--reason", "bench failback", "--yes")
    sandbox.region_outage(p)
    try:
        unplanned = ("--to", s, "--mode", "unplanned", "--reason", "bench unplanned failover", "--yes")
        figures["cli_unplanned_failover"] = mldr(env, "failover", *unplanned)
    finally:
        sandbox.heal(p)
    figures["cli_failback_after_unplanned"] = mldr(env, "failback", "--reason", "bench failback", "--yes")
    for k, v in figures.items():
        print(f"  {k:<32} {v:6.1f} s", flush=True)
    return figures


def resync_figures(
    sandbox: Sandbox, state: Any, env: dict[str, str], objects: int, size: int, rounds: int = 2
) -> None:
    """Deltas of the same size copied back by mldr's resync and by `rclone sync --checksum`,
    alternating which goes first (each run lists a bucket pair one delta larger than the last)."""
    print(f"failback resync: {objects} objects of {size} B written while failed over", flush=True)
    p, s = state.primary, state.secondary
    mldr(env, "failover", "--to", s, "--mode", "planned", "--reason", "bench resync setup", "--yes")
    sandbox.replication("pause")  # the delta must be left for the resync, not replicated
    bucket_s = f"mldr-training-data-{s}"
    bucket_p = f"mldr-training-data-{p}"
    s3s = client("s3", state.moto[s], s)
    from mldr.actions import write_fence
    from mldr.actions.resync import resync_dataset
    from mldr.cloud.aws.cloud import AwsCloud
    from mldr.topology import load_topology

    topology = load_topology(use_airflow=False)
    cloud = AwsCloud.from_environment(topology)
    # as failback's fence step does: the standby must take the resync's writes
    write_fence.lift(cloud.objects(p), bucket_p)
    # rclone at its fastest for this job: --checksum compares the listings' MD5 ETags (as mldr
    # compares ETag and size), so unchanged keys cost no HEAD request each.
    rclone = ["env", "-u", "AWS_CA_BUNDLE", "rclone", "sync", f"SEC:{bucket_s}", f"PRI:{bucket_p}"]
    rclone += ["--checksum", "--transfers", "32", "--checkers", "32", "--s3-upload-cutoff", "100M"]
    mb = objects * size / 1e6
    seconds: dict[str, list[float]] = {"mldr": [], "rclone": []}

    def run_mldr() -> float:
        dataset, since = topology.dataset("training-data"), time.time() - 3600
        report = resync_dataset(cloud, dataset, active_region=s, standby_region=p, since=since)
        copied = sum(report.copied_to.values())
        if copied != objects or report.failures:
            raise SystemExit(f"mldr resync copied {copied} of {objects}: {report.failures[:3]}")
        print(
            f"    ({report.keys_compared} keys compared, {report.server_side_copies} by cross-region "
            f"CopyObject, {report.keys_looked_up} history lookups)",
            flush=True,
        )
        return report.seconds

    tools = {"mldr": run_mldr, "rclone": lambda: sh(*rclone, env=rclone_env(state))}
    for r in range(rounds):
        for tool in ("mldr", "rclone") if r % 2 == 0 else ("rclone", "mldr"):
            filled = fill(s3s, bucket_s, f"bench-{r}-{tool}", objects, size)
            took = tools[tool]()
            seconds[tool].append(took)
            print(
                f"  round {r + 1}: {tool:<6} {took:6.2f}s = {objects / took:4.0f} objects/s, "
                f"{mb / took:.1f} MB/s (fill {filled:.0f}s)",
                flush=True,
            )
    rate = {tool: objects * len(runs) / sum(runs) for tool, runs in seconds.items()}
    print(f"  mldr resync: {rate['mldr']:.0f} objects/s; rclone sync --checksum: {rate['rclone']:.0f}/s")
    print(f"  throughput ratio mldr / rclone: {rate['mldr'] / rate['rclone']:.2f}x (goal >= 2)")
    # No failback afterwards: the sandbox is stopped next, with its backlog.


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--skip-airflow", action="store_true", help="no airflow standalone part")
    parser.add_argument("--skip-resync", action="store_true", help="no resync-vs-rclone part")
    args = parser.parse_args()
    if shutil.which("rclone") is None and not args.skip_resync:
        raise SystemExit("rclone is missing: apt-get install -y rclone")
    directory = Path(tempfile.mkdtemp(prefix="mldr-bench-failover-"))
    try:
        # Airflow first, on a sandbox of its own, stopped before the CLI's starts: one at a time.
        airflow = {} if args.skip_airflow else airflow_figures(directory / "airflow")
        os.environ["MLDR_SANDBOX_DIR"] = str(directory)
        sandbox = Sandbox(directory)
        state, _ = sandbox.up()
        try:
            env = sandbox_env(state)
            cli = cli_figures(sandbox, state, env)
            if airflow:
                print("\n  operation                    CLI      Airflow   goal (unplanned)")
                for op in OPERATIONS:
                    goal = "CLI < 10 s, Airflow < 45 s" if op == "unplanned_failover" else ""
                    print(f"  {op:<26} {cli[f'cli_{op}']:6.1f} s {airflow[f'airflow_{op}']:8.1f} s   {goal}")
            if not args.skip_resync:
                resync_figures(sandbox, state, env, args.objects, args.size)
        finally:
            sandbox.down()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
