"""Benchmark: `mldr restore` against rclone reading the bucket as it was (`--s3-version-at`).

Not a test. In one run, on a sandbox of its own (started here, stopped at the end):

1. fill two identical buckets in the primary region with N small objects (`shards/...`), wait
   a moment T, then damage both the same way: 30% overwritten, 10% deleted, 5% new keys;
2. restore one with `mldr restore --dataset bench --to T --yes --json` (plan from the version
   history, server-side copies checked by SHA-256, delete markers), the other with
   `rclone sync "P,version_at=T:<bucket>" P:<bucket>` (rclone reads the bucket as it was at T and
   syncs that state back over it: downloads and uploads the changed keys, deletes the new ones);
3. check both buckets now hold exactly the state at T (every key, SHA-256 of its bytes);
4. print keys/s for both and the ratio mldr/rclone throughput (goal: at least 2).

    .venv/bin/python bench/restore.py                 # 10,000 objects
    .venv/bin/python bench/restore.py --objects 2000

Needs rclone: `apt-get update && apt-get install -y rclone`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import verify as vb  # bench/verify.py: the sandbox set-up, signed puts, timed runs

from mldr.sandbox import provision as prov
from mldr.sandbox.location import read_env_file
from mldr.sandbox.manager import Sandbox
from mldr.topology import Dataset, DatasetKind, load_topology_file

DATASET = "bench"


def buckets(state: Any) -> tuple[str, str]:
    return f"mldr-bench-mldr-{state.primary}", f"mldr-bench-rclone-{state.primary}"


def body(i: int, generation: int) -> bytes:
    return vb.body_of(i) + f"generation {generation}".encode()


def damage_plan(n: int, rng: random.Random) -> tuple[set[int], set[int], range]:
    """Which keys are overwritten (30%), deleted (10%), and the new ones (5%)."""
    order = list(range(n))
    rng.shuffle(order)
    changed = set(order[: n * 30 // 100])
    deleted = set(order[n * 30 // 100 : n * 40 // 100])
    return changed, deleted, range(n, n + n * 5 // 100)


def write_all(state: Any, jobs: Sequence[tuple[str, str, bytes | None]], workers: int = 24) -> float:
    """PUT (or DELETE when the body is None) each (bucket, key, body) in the primary; seconds."""
    putter = vb.FastPut(state.moto[state.primary], state.primary)
    s3 = prov.client("s3", state.moto[state.primary], state.primary)
    began = time.perf_counter()

    def one(job: tuple[str, str, bytes | None]) -> None:
        bucket_name, key, data = job
        if data is None:
            s3.delete_object(Bucket=bucket_name, Key=key)
        else:
            putter.put(bucket_name, key, data)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, jobs))
    return time.perf_counter() - began


def state_of(state: Any, bucket_name: str) -> dict[str, str]:
    s3 = prov.client("s3", state.moto[state.primary], state.primary)
    keys = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket_name)
        for obj in page.get("Contents", [])
    ]

    def digest(key: str) -> tuple[str, str]:
        return key, hashlib.sha256(s3.get_object(Bucket=bucket_name, Key=key)["Body"].read()).hexdigest()

    with ThreadPoolExecutor(max_workers=16) as pool:
        return dict(pool.map(digest, keys))


def create(state: Any, names: list[str]) -> None:
    for region in state.regions:
        s3 = prov.client("s3", state.moto[region], region)
        for name in names:
            name = name.replace(state.primary, region)
            kwargs: dict[str, Any] = {"Bucket": name}
            if region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            s3.create_bucket(**kwargs)
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.objects < 100:
        parser.error("--objects must be at least 100")
    if shutil.which("rclone") is None:
        print("rclone is not installed: apt-get update && apt-get install -y rclone", file=sys.stderr)
        return 2
    rclone_version = subprocess.run(
        ["rclone", "version"], capture_output=True, text=True
    ).stdout.splitlines()[0]
    rng = random.Random(args.seed)
    n = args.objects
    directory = Path(tempfile.mkdtemp(prefix="mldr-bench-restore-"))
    box = Sandbox(directory)
    try:
        print(f"starting a sandbox in {directory}", file=sys.stderr)
        state, _ = box.up(progress=lambda m: print(f"  {m}", file=sys.stderr))
        for_mldr, for_rclone = buckets(state)
        create(state, [for_mldr, for_rclone])
        topology = load_topology_file(state.topology_path)
        bench = Dataset(
            name=DATASET,
            kind=DatasetKind.TRAINING_DATA,
            prefix="",
            rpo_seconds=3600,
            buckets={r: for_mldr.replace(state.primary, r) for r in state.regions},
            # a restore reads no replication settings; the schema wants them, so borrow a dataset's
            replication=topology.datasets[0].replication,
        )
        vb.grant_operator(state, topology.datasets[0], bench)
        topology = topology.model_copy(update={"datasets": [*topology.datasets, bench]})
        topology_path = directory / "bench-topology.json"
        topology_path.write_text(topology.to_json())
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
        env.update(read_env_file(state.env_path))
        env["MLDR_TOPOLOGY"] = str(topology_path)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed tools run: bytecode cached
        env["PYTHONPYCACHEPREFIX"] = str(directory / "pycache")

        first = [(b, vb.key_of(i), body(i, 1)) for b in (for_mldr, for_rclone) for i in range(n)]
        print(f"filling {n:,} objects in each of two buckets", file=sys.stderr)
        fill_seconds = write_all(state, first)
        time.sleep(1.1)  # stores keep a version's time to the second
        moment = time.time()
        time.sleep(1.1)
        expected = state_of(state, for_mldr)
        assert expected == state_of(state, for_rclone)
        changed, deleted, new = damage_plan(n, rng)
        damage = [
            *((b, vb.key_of(i), body(i, 2)) for b in (for_mldr, for_rclone) for i in sorted(changed)),
            *((b, vb.key_of(i), None) for b in (for_mldr, for_rclone) for i in sorted(deleted)),
            *((b, vb.key_of(i), body(i, 2)) for b in (for_mldr, for_rclone) for i in new),
        ]
        write_all(state, damage)
        print(
            f"damaged: {len(changed):,} overwritten, {len(deleted):,} deleted, {len(new):,} new "
            f"(fill {fill_seconds:.0f}s)",
            file=sys.stderr,
        )
        at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment % 1 * 1000):03d}Z"
        servers = [state.processes[f"moto-{state.primary}"].pid]
        mldr = [
            str(vb.REPO / ".venv" / "bin" / "mldr"),
            "restore",
            "--dataset",
            DATASET,
            "--to",
            at,
            "--reason",
            "benchmark of the restore",
            "--yes",
            "--json",
        ]
        rclone_at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(moment))
        rclone = [
            "env",
            "-u",
            "AWS_CA_BUNDLE",
            "rclone",
            "sync",
            f"P,version_at='{rclone_at}':{for_rclone}",
            f"P:{for_rclone}",
            "--transfers",
            "16",
            "--checkers",
            "16",
            "--log-level",
            "ERROR",
        ]
        runs = {
            "mldr": vb.timed("mldr", mldr, env, servers),
            "rclone": vb.timed("rclone", rclone, vb.rclone_env(state), servers),
        }
        results = {"mldr": state_of(state, for_mldr), "rclone": state_of(state, for_rclone)}
    finally:
        box.down()
        shutil.rmtree(directory, ignore_errors=True)
    touched = len(changed) + len(deleted) + len(new)
    print(
        f"\nrestore of {n:,} objects ({len(changed):,} overwritten, {len(deleted):,} deleted, "
        f"{len(new):,} new since T) on {platform.node()}, {os.cpu_count()} cores; {rclone_version}\n"
    )
    print("| tool | seconds | keys restored / s | client CPU | S3 server CPU | peak RSS | exact state at T |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    exact = {}
    for tool, run in runs.items():
        exact[tool] = results[tool] == expected
        print(
            f"| {tool} | {run.seconds:.2f} | {touched / run.seconds:.0f} | {run.client_cpu:.2f} s | "
            f"{run.server_cpu:.1f} s | {run.max_rss_mb:.0f} MB | {'yes' if exact[tool] else 'NO'} |"
        )
    ratio = runs["rclone"].seconds / runs["mldr"].seconds
    print(f"\nthroughput mldr / rclone: **{ratio:.2f}x** (goal: at least 2x)")
    if not all(exact.values()):
        for tool, ok in exact.items():
            if not ok:
                diff = set(results[tool].items()) ^ set(expected.items())
                print(
                    f"{tool} did not restore the state at T exactly: {len(diff)} differences", file=sys.stderr
                )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
