"""Benchmark: failover durations, and failback resync throughput against `rclone sync`.

    uv run python bench/failover.py [--objects 5000] [--size 4096] [--skip-airflow]

In one run on a fresh sandbox (its own directory, stopped at the end):
1. planned and unplanned failover (and the failback after each) via the CLI, wall time;
2. resync throughput: a delta of N new objects written in the active region while
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

from mldr.sandbox.manager import Sandbox  # noqa: E402
from mldr.sandbox.provision import client  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--size", type=int, default=4096)
    args = parser.parse_args()
    if shutil.which("rclone") is None:
        raise SystemExit("rclone is missing: apt-get install -y rclone")
    directory = Path(tempfile.mkdtemp(prefix="mldr-bench-failover-"))
    os.environ["MLDR_SANDBOX_DIR"] = str(directory)
    sandbox = Sandbox(directory)
    state, _ = sandbox.up()
    env = dict(os.environ)
    for line in Path(state.env_path).read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip("'")
    env["PYTHONPATH"] = str(REPO / "plugins")
    os.environ.update({k: v for k, v in env.items() if k.startswith(("AIRFLOW_CONN_", "MLDR_"))})
    p, s = state.primary, state.secondary
    figures: dict[str, Any] = {}
    try:
        print("failover via the CLI (wall time, including the CLI's own start-up)")
        figures["cli_planned_failover_s"] = mldr(
            env, "failover", "--to", s, "--mode", "planned", "--reason", "bench planned failover", "--yes"
        )
        figures["cli_failback_after_planned_s"] = mldr(env, "failback", "--reason", "bench failback", "--yes")
        sandbox.region_outage(p)
        figures["cli_unplanned_failover_s"] = mldr(
            env, "failover", "--to", s, "--mode", "unplanned", "--reason", "bench unplanned failover", "--yes"
        )
        sandbox.heal(p)
        figures["cli_failback_after_unplanned_s"] = mldr(
            env, "failback", "--reason", "bench failback", "--yes"
        )
        for k, v in figures.items():
            print(f"  {k:<32} {v:6.1f} s")

        print(f"failback resync: {args.objects} objects of {args.size} B written while failed over")
        mldr(env, "failover", "--to", s, "--mode", "planned", "--reason", "bench resync setup", "--yes")
        sandbox.replication("pause")  # the delta must be left for the resync, not replicated
        bucket_s = f"mldr-training-data-{s}"
        bucket_p = f"mldr-training-data-{p}"
        s3s = client("s3", state.moto[s], s)
        fill_a = fill(s3s, bucket_s, "bench-a", args.objects, args.size)
        from mldr.actions import write_fence
        from mldr.actions.resync import resync_dataset
        from mldr.aws import ClientFactory
        from mldr.topology import load_topology

        topology = load_topology(use_airflow=False)
        factory = ClientFactory.from_environment(topology)
        # as failback's fence step does: the standby must take the resync's writes
        write_fence.lift(factory.client("s3", p), bucket_p, p)
        since = time.time() - 3600
        report = resync_dataset(
            factory, topology.dataset("training-data"), active_region=s, standby_region=p, since=since
        )
        mb = args.objects * args.size / 1e6
        mldr_rate = sum(report.copied_to.values()) / report.seconds
        print(
            f"  fill {fill_a:.1f}s; mldr resync: {report.copied_to} in {report.seconds:.2f}s "
            f"= {mldr_rate:.0f} objects/s, {mb / report.seconds:.1f} MB/s "
            f"({report.keys_compared} keys compared)"
        )
        fill(s3s, bucket_s, "bench-b", args.objects, args.size)
        rclone = [
            "env",
            "-u",
            "AWS_CA_BUNDLE",
            "rclone",
            "sync",
            f"SEC:{bucket_s}",
            f"PRI:{bucket_p}",
            "--transfers",
            "32",
            "--checkers",
            "32",
            "--s3-upload-cutoff",
            "100M",
        ]
        rclone_s = sh(*rclone, env=rclone_env(state))
        rclone_rate = args.objects / rclone_s
        print(
            f"  rclone sync (32 transfers/checkers): {rclone_s:.2f}s = {rclone_rate:.0f} objects/s, "
            f"{mb / rclone_s:.1f} MB/s"
        )
        print(f"  throughput ratio mldr / rclone: {mldr_rate / rclone_rate:.2f}x")
        sandbox.replication("resume")
        mldr(env, "failback", "--reason", "bench resync teardown", "--yes")
    finally:
        sandbox.down()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
