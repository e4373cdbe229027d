"""The schedule tester: randomized fault schedules against a fresh sandbox, checked for safety.

    uv run python bench/chaos.py --seed 7 --schedules 3 --json
    uv run python bench/chaos.py --seed 7 --only 2          # replay schedule 2 of seed 7

Each schedule interleaves planned and unplanned failovers, failbacks, dry runs, resumes and
aborts (from the CLI and as DAG runs), crashes after any step, two callers at once, a region
outage and its heal, a partition between the regions, a stalled control store, and client
writes all along; then heals everything and fails back. A violation is a broken safety promise
(split brain, a token going back, an acknowledged write silently lost, an operation left
neither resumable nor aborted); each names the schedule that produced it, to replay.

Prints {"seed": S, "schedules": N, "violations": [...]} (with --json) and exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

from mldr.chaos.runner import ChaosRunner  # noqa: E402
from mldr.chaos.schedule import generate  # noqa: E402
from mldr.cloud.aws.cloud import AwsCloud  # noqa: E402
from mldr.sandbox.location import read_env_file  # noqa: E402
from mldr.sandbox.manager import Sandbox  # noqa: E402
from mldr.topology import load_topology_file  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument(
        "--schedules", type=int, default=1, help="how many schedules of this seed (default 1)"
    )
    parser.add_argument("--only", type=int, help="run only this schedule index (a replay)")
    parser.add_argument("--events", type=int, default=8, help="events per schedule (default 8)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.schedules < 1 or args.events < 1:
        parser.error("--schedules and --events must be at least 1")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    say = (lambda m: print(m, file=sys.stderr)) if args.json else print
    indexes = [args.only] if args.only is not None else list(range(args.schedules))
    results = []
    with tempfile.TemporaryDirectory(prefix="mldr-chaos-") as directory:
        os.environ["MLDR_SANDBOX_DIR"] = directory
        sandbox = Sandbox(Path(directory))
        try:
            state, _ = sandbox.up()
            os.environ.update(read_env_file(state.env_path))
            topology = load_topology_file(state.topology_path)
            runner = ChaosRunner(sandbox, topology, AwsCloud.from_environment(topology), say=say)
            for index in indexes:
                schedule = generate(
                    args.seed, index, primary=state.primary, secondary=state.secondary, events=args.events
                )
                say(f"schedule {index} of seed {args.seed}: {len(schedule.events)} events")
                started = time.monotonic()
                result = runner.run(schedule)
                results.append(result)
                seconds = time.monotonic() - started
                say(f"schedule {index}: {len(result.violations)} violation(s) in {seconds:.0f}s")
        finally:
            sandbox.down()
    violations: list[dict[str, Any]] = [
        {**v.public(), "schedule": r.schedule.public()} for r in results for v in r.violations
    ]
    document = {"seed": args.seed, "schedules": len(results), "violations": violations}
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        for v in violations:
            print(f"VIOLATION {v['rule']} after {v['after']}: {v['detail']}")
            print(f"  replay: {v['schedule']['replay']}")
        print(f"seed {args.seed}: {len(results)} schedule(s), {len(violations)} violation(s)")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
