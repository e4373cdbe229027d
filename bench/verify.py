"""Benchmark: `mldr verify --dataset X` against `rclone check` on the same bucket pair.

Not a test. In one run, on a sandbox of its own (started here, stopped at the end):

1. fill a bucket pair with N small objects, the same bytes on both sides (written straight into
   both buckets: the replicator is not what is measured, and its per-object cost would dominate
   the fill), in a realistic layout (`shards/shard-XX/part-NNNNNN.json`, 16 shards);
2. overwrite one replica with same-size different bytes (the edit `aws s3 sync --dryrun` misses);
3. time `mldr verify --dataset bench --json` (full mode, content compared on ETag/checksum, the
   default restore sample, report stored) and `rclone check` (Debian's rclone, S3 provider
   `Other`, run as `env -u AWS_CA_BUNDLE rclone`), alternating which goes first, several runs
   each; check that both report exactly the edited key;
4. grow the pair to the next size and repeat.

Prints medians, the ratio mldr/rclone, peak memory (max RSS of each child) and the fill times,
as a Markdown table.

    .venv/bin/python bench/verify.py                    # 10,000 then 50,000 objects, 5 runs each
    .venv/bin/python bench/verify.py --sizes 2000 --runs 2

Needs rclone: `apt-get update && apt-get install -y rclone`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

from mldr.sandbox import provision as prov  # noqa: E402
from mldr.sandbox.location import read_env_file  # noqa: E402
from mldr.sandbox.manager import Sandbox  # noqa: E402
from mldr.topology import Dataset, load_topology_file  # noqa: E402

DATASET = "bench"
SHARDS = 16
CREDENTIALS = Credentials("testing", "testing")


def bucket(region: str) -> str:
    return f"mldr-{DATASET}-{region}"


def key_of(i: int) -> str:
    return f"shards/shard-{i % SHARDS:02d}/part-{i:06d}.json"


def body_of(i: int) -> bytes:
    return json.dumps({"row": i, "value": (i * 2654435761) % 1000003, "pad": "x" * 40}).encode()


class FastPut:
    """Signed S3 PUTs over one pooled HTTP client: filling 100,000 objects through boto3
    would spend more time in botocore than in the server."""

    def __init__(self, endpoint: str, region: str) -> None:
        self.endpoint, self.region = endpoint.rstrip("/"), region
        self.http = httpx.Client(
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32), timeout=30
        )

    def put(self, bucket_name: str, key: str, body: bytes) -> None:
        url = f"{self.endpoint}/{bucket_name}/{quote(key, safe='/-_.~')}"
        request = AWSRequest(method="PUT", url=url, data=body, headers={"Content-Type": "application/json"})
        S3SigV4Auth(CREDENTIALS, "s3", self.region).add_auth(request)
        response = self.http.put(url, content=body, headers=dict(request.headers.items()))
        if response.status_code != 200:
            raise RuntimeError(f"PUT {url}: {response.status_code} {response.text[:200]}")


def fill(state: Any, start: int, stop: int, workers: int = 24) -> float:
    """Write objects start..stop-1 into both buckets; returns seconds."""
    putters = {r: FastPut(state.moto[r], r) for r in state.regions}
    done = [0]
    lock = threading.Lock()
    began = time.perf_counter()

    def one(i: int) -> None:
        for region, putter in putters.items():
            putter.put(bucket(region), key_of(i), body_of(i))
        with lock:
            done[0] += 1
            if done[0] % 5000 == 0:
                rate = done[0] / (time.perf_counter() - began)
                print(
                    f"  filled {start + done[0]:,} of {stop:,} ({rate:.0f} pairs/s)",
                    file=sys.stderr,
                    flush=True,
                )

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, range(start, stop)))
    return time.perf_counter() - began


def create_buckets(state: Any) -> None:
    for region in state.regions:
        s3 = prov.client("s3", state.moto[region], region)
        kwargs: dict[str, Any] = {"Bucket": bucket(region)}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**kwargs)
        s3.put_bucket_versioning(Bucket=bucket(region), VersioningConfiguration={"Status": "Enabled"})


def grant_operator(state: Any, like: Dataset, bench: Dataset) -> None:
    """Give the DR operator on the bench's buckets what infra/ gives it on a declared dataset's
    (`like`): the sandbox enforces the operator role's policy, which names the declared datasets'
    buckets only, so without this every mldr command here would be refused (AccessDenied)."""
    from mldr.sandbox.iam import OPERATOR, POLICY_NAME

    names = {f"arn:aws:s3:::{like.buckets[r]}": f"arn:aws:s3:::{bench.buckets[r]}" for r in state.regions}
    iam = prov.client("iam", state.moto["global"], "us-east-1")
    policy = iam.get_user_policy(UserName=OPERATOR, PolicyName=POLICY_NAME)["PolicyDocument"]
    for statement in policy["Statement"]:
        resources = statement["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        extra = [
            resource.replace(declared, ours, 1)
            for resource in resources
            for declared, ours in names.items()
            if resource == declared or resource.startswith(declared + "/")
        ]
        statement["Resource"] = [*resources, *extra]
    for endpoint in state.moto.values():  # each moto server has its own IAM
        prov.client("iam", endpoint, "us-east-1").put_user_policy(
            UserName=OPERATOR, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy)
        )


def edit_one_replica(state: Any, n: int, rng: random.Random) -> str:
    """Same size, different bytes, in the secondary only."""
    i = rng.randrange(n)
    original = body_of(i)
    edited = original.replace(b'"pad": "x', b'"pad": "y', 1)
    assert len(edited) == len(original) and edited != original
    FastPut(state.moto[state.secondary], state.secondary).put(bucket(state.secondary), key_of(i), edited)
    return key_of(i)


def restore_replica(state: Any, key: str) -> None:
    i = int(key.rsplit("-", 1)[1].split(".")[0])
    FastPut(state.moto[state.secondary], state.secondary).put(bucket(state.secondary), key, body_of(i))


@dataclass
class Run:
    tool: str
    seconds: float
    max_rss_mb: float
    client_cpu: float
    server_cpu: float  # both moto processes, during the run
    output: str
    code: int


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(tool: str, argv: list[str], env: dict[str, str], servers: list[int]) -> Run:
    """Run once; wall time, the child's peak RSS and CPU, and the S3 servers' CPU meanwhile.

    Peak RSS comes from /usr/bin/time: a child forked from this (large) Python process would
    report this process's RSS at fork time as its own peak.
    """
    with tempfile.TemporaryDirectory() as scratch:
        rss_file = Path(scratch) / "rss"
        wrapped = ["/usr/bin/time", "-f", "%M %U %S", "-o", str(rss_file), *argv]
        out_path, err_path = Path(scratch) / "out", Path(scratch) / "err"
        before = sum(_cpu_seconds(pid) for pid in servers)
        started = time.perf_counter()
        with out_path.open("wb") as out, err_path.open("wb") as err:
            code = subprocess.run(wrapped, env=env, stdout=out, stderr=err, check=False).returncode
        seconds = time.perf_counter() - started
        server = sum(_cpu_seconds(pid) for pid in servers) - before
        text = out_path.read_text(errors="replace")
        if code not in (0, 1):
            raise RuntimeError(f"{tool} failed ({code}): {err_path.read_text(errors='replace')[-2000:]}")
        rss_kb, user, system = rss_file.read_text().split()[-3:]
    return Run(tool, seconds, int(rss_kb) / 1024, float(user) + float(system), server, text, code)


def list_floor(state: Any, per_server: int = 2) -> float:
    """The floor of any bucket compare: one LIST pass over both buckets, one request per shard
    per side, `per_server` requests in flight per server, bodies read and not parsed, no process
    start-up. Seconds."""
    http = httpx.Client(limits=httpx.Limits(max_connections=16), timeout=60)

    def page(region: str, shard: int) -> int:
        """Every page of one shard (following continuation tokens); bytes read."""
        read, token = 0, None
        while True:
            query = f"list-type=2&max-keys=1000&prefix={quote(f'shards/shard-{shard:02d}/', safe='')}"
            if token:
                query = f"continuation-token={quote(token, safe='')}&{query}"
            url = f"{state.moto[region].rstrip('/')}/{bucket(region)}?{query}"
            request = AWSRequest(method="GET", url=url)
            S3SigV4Auth(CREDENTIALS, "s3", region).add_auth(request)
            body = http.get(url, headers=dict(request.headers.items())).content
            read += len(body)
            found = re.search(rb"<NextContinuationToken>([^<]+)</NextContinuationToken>", body)
            if found is None:
                return read
            token = found.group(1).decode()

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=per_server * len(state.regions)) as pool:
        list(pool.map(lambda job: page(*job), [(r, i) for i in range(SHARDS) for r in state.regions]))
    return time.perf_counter() - began


def rclone_env(state: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    for name, region in (("P", state.primary), ("S", state.secondary)):
        for field, value in {
            "TYPE": "s3",
            "PROVIDER": "Other",
            "ENDPOINT": state.moto[region],
            "REGION": region,
            "ACCESS_KEY_ID": "testing",
            "SECRET_ACCESS_KEY": "testing",
            "FORCE_PATH_STYLE": "true",
        }.items():
            env[f"RCLONE_CONFIG_{name}_{field}"] = value
    return env


def check_mldr(run: Run, n: int, edited: str) -> None:
    [d] = json.loads(run.output)["datasets"]
    found = (d["objects_checked"], d["missing"], d["extra"], d["mismatched"], d["failed"])
    if run.code != 1 or found != (n, [], [], [edited], []):
        raise RuntimeError(
            f"mldr verify did not report exactly the edited key {edited}: exit {run.code}, {found}"
        )


def check_rclone(run: Run, edited: str) -> None:
    differing = [line for line in run.output.splitlines() if line and not line.startswith("= ")]
    if run.code != 1 or differing != [f"* {edited}"]:
        raise RuntimeError(f"rclone check did not report exactly the edited key {edited}: {differing[:5]}")


def bench_size(
    state: Any, n: int, runs: int, mldr_env: dict[str, str], rng: random.Random, warm_up: bool
) -> dict[str, Any]:
    edited = edit_one_replica(state, n, rng)
    servers = [state.processes[f"moto-{r}"].pid for r in state.regions]
    mldr = [str(REPO / ".venv" / "bin" / "mldr"), "verify", "--dataset", DATASET, "--json"]
    rclone = [
        "env",
        "-u",
        "AWS_CA_BUNDLE",
        "rclone",
        "check",
        f"P:{bucket(state.primary)}",
        f"S:{bucket(state.secondary)}",
        "--combined",
        "-",
        "--log-level",
        "ERROR",
    ]
    order = [("mldr", mldr, mldr_env), ("rclone", rclone, rclone_env(state))]
    if warm_up:
        # untimed: mldr's bytecode cache is written, both tools' binaries are in the page cache
        for tool, argv, env in order:
            timed(tool, argv, env, servers)
    results: dict[str, list[Run]] = {"mldr": [], "rclone": []}
    for r in range(runs):
        for tool, argv, env in order if r % 2 == 0 else list(reversed(order)):
            run = timed(tool, argv, env, servers)
            (check_mldr(run, n, edited) if tool == "mldr" else check_rclone(run, edited))
            results[tool].append(run)
            print(
                f"  {n:>7,} objects, run {r + 1}/{runs}: {tool:<6} {run.seconds:6.2f}s wall, "
                f"{run.client_cpu:5.2f}s client CPU, {run.server_cpu:5.2f}s S3 server CPU, "
                f"{run.max_rss_mb:.0f} MB, load {os.getloadavg()[0]:.1f}",
                file=sys.stderr,
                flush=True,
            )
    restore_replica(state, edited)
    floor = statistics.median(list_floor(state) for _ in range(3))
    print(f"  {n:>7,} objects: floor (one LIST pass per side) {floor:.2f}s", file=sys.stderr, flush=True)

    def median(tool: str, field: str) -> float:
        return statistics.median(getattr(x, field) for x in results[tool])

    return {
        "objects": n,
        "mldr_median": median("mldr", "seconds"),
        "rclone_median": median("rclone", "seconds"),
        "ratio": median("mldr", "seconds") / median("rclone", "seconds"),
        "mldr_cpu": median("mldr", "client_cpu"),
        "rclone_cpu": median("rclone", "client_cpu"),
        "mldr_server_cpu": median("mldr", "server_cpu"),
        "rclone_server_cpu": median("rclone", "server_cpu"),
        "mldr_runs": [round(x.seconds, 2) for x in results["mldr"]],
        "rclone_runs": [round(x.seconds, 2) for x in results["rclone"]],
        "mldr_rss_mb": max(x.max_rss_mb for x in results["mldr"]),
        "rclone_rss_mb": max(x.max_rss_mb for x in results["rclone"]),
        "edited_key": edited,
        "floor": floor,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per tool and size (default 5)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if shutil.which("rclone") is None:
        print("rclone is not installed: apt-get update && apt-get install -y rclone", file=sys.stderr)
        return 2
    if not Path("/usr/bin/time").exists():
        print("/usr/bin/time is needed for peak memory: apt-get install -y time", file=sys.stderr)
        return 2
    rclone_version = subprocess.run(
        ["rclone", "version"], capture_output=True, text=True
    ).stdout.splitlines()[0]
    rng = random.Random(args.seed)
    directory = Path(tempfile.mkdtemp(prefix="mldr-bench-verify-"))
    box = Sandbox(directory)
    rows, fills = [], {}
    try:
        print(f"starting a sandbox in {directory}", file=sys.stderr)
        state, _ = box.up(progress=lambda m: print(f"  {m}", file=sys.stderr))
        create_buckets(state)
        topology = load_topology_file(state.topology_path)
        bench = Dataset(
            name=DATASET,
            kind="training_data",
            prefix="",
            rpo_seconds=3600,
            buckets={r: bucket(r) for r in state.regions},
            # verification reads no replication settings; the schema wants them, so borrow a dataset's
            replication=topology.datasets[0].replication,
        )
        grant_operator(state, topology.datasets[0], bench)
        topology = topology.model_copy(update={"datasets": [*topology.datasets, bench]})
        topology_path = directory / "bench-topology.json"
        topology_path.write_text(topology.to_json())
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
        env.update(read_env_file(state.env_path))
        env["MLDR_TOPOLOGY"] = str(topology_path)
        # As installed Python tools run: with their bytecode cached. (This machine sets
        # PYTHONDONTWRITEBYTECODE, which would make every run compile mldr and its
        # dependencies from source: ~3 s of CPU that no installed tool pays.)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(directory / "pycache")
        filled = 0
        for n in sorted(args.sizes):
            fills[n] = fill(state, filled, n)
            filled = n
            print(f"filled {n:,} objects per side in {fills[n]:.0f}s", file=sys.stderr)
            rows.append(bench_size(state, n, args.runs, env, rng, warm_up=not rows))
    finally:
        box.down()
        shutil.rmtree(directory, ignore_errors=True)
    print(
        f"\n`mldr verify --dataset {DATASET}` vs `rclone check`, sandbox (moto) on {platform.node()}, "
        f"{os.cpu_count()} cores; {rclone_version}; {args.runs} alternating runs each, medians\n"
    )
    print(
        "| objects | mldr verify | rclone check | ratio mldr/rclone | client CPU mldr / rclone "
        "| S3 server CPU mldr / rclone | peak RSS mldr / rclone | fill (both sides) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['objects']:,} | {row['mldr_median']:.2f} s | {row['rclone_median']:.2f} s | "
            f"**{row['ratio']:.2f}** | {row['mldr_cpu']:.2f} s / {row['rclone_cpu']:.2f} s | "
            f"{row['mldr_server_cpu']:.1f} s / {row['rclone_server_cpu']:.1f} s | "
            f"{row['mldr_rss_mb']:.0f} MB / {row['rclone_rss_mb']:.0f} MB | {fills[row['objects']]:.0f} s |"
        )
    print("\nthe floor - one LIST pass per side, unparsed, no start-up - against rclone check:")
    for row in rows:
        share = row["floor"] / row["rclone_median"]
        print(f"  {row['objects']:,}: {row['floor']:.2f} s = {share:.2f} x rclone")
    print("\nruns (s):")
    for row in rows:
        print(
            f"  {row['objects']:,}: mldr {row['mldr_runs']}, rclone {row['rclone_runs']}; "
            f"both reported exactly the same-size edit {row['edited_key']}"
        )
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        scale = b["objects"] / a["objects"]
        print(
            f"\nscaling {a['objects']:,} -> {b['objects']:,} objects (x{scale:.0f}): "
            f"mldr x{b['mldr_median'] / a['mldr_median']:.1f}, "
            f"rclone x{b['rclone_median'] / a['rclone_median']:.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
