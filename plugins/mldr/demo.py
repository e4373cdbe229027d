"""`make demo`: an ML inference service in two local regions surviving a region outage.

Starts the sandbox in `.sandbox-demo/` (so a sandbox you run yourself is left alone), sends a
prediction through the DNS-style edge, stops the primary region, measures how long the edge
takes to answer from the secondary, heals, stops everything and prints a summary.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from mldr import http
from mldr.sandbox.manager import Sandbox


def say(message: str) -> None:
    print(message, flush=True)


def predict(edge_url: str, instance: list[float]) -> dict[str, Any]:
    response = http.post(f"{edge_url}/predict", json={"instances": [instance]}, timeout=5)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def run(directory: Path) -> int:
    sandbox = Sandbox(directory)
    say("1/5 starting the two-region sandbox (moto, replicator, inference servers, edge)")
    state, _ = sandbox.up(progress=lambda m: say(f"      {m}"))
    edge = state.edge_url
    rows: list[tuple[str, str]] = []
    try:
        model = http.get(f"{edge}/model", timeout=5).json()
        instance = model["example_instance"]
        before = predict(edge, instance)
        say(
            f"2/5 prediction through the edge: {before['predictions']} from {before['region']} "
            f"(model {before['model_version']})"
        )
        rows.append(("served before the outage by", before["region"]))

        resolved = http.get(f"{edge}/resolve", timeout=5).json()
        check = resolved["checks"][state.primary]
        window = check["interval_seconds"] * check["failure_threshold"]
        say(
            f"3/5 region outage: stopping {state.primary} (S3 + inference); health check every "
            f"{check['interval_seconds']:g}s, {check['failure_threshold']} failures to unhealthy"
        )
        sandbox.region_outage(state.primary)
        fault_at = time.monotonic()
        answer = state.primary
        while answer != state.secondary and time.monotonic() - fault_at < window + 20:
            time.sleep(0.1)
            answer = http.get(f"{edge}/resolve", timeout=5).json()["answer"]
        detected = time.monotonic() - fault_at
        if answer != state.secondary:
            say(f"      the edge still answers {answer} after {detected:.1f}s: failover did not happen")
            return 1
        after = predict(edge, instance)
        same = after["predictions"] == before["predictions"]
        say(
            f"4/5 edge answers {answer} after {detected:.1f}s; prediction {after['predictions']} from "
            f"{after['region']} ({'same' if same else 'DIFFERENT'} answer)"
        )
        rows += [
            ("detection window (interval x threshold)", f"{window:.1f} s"),
            ("measured time to DNS failover", f"{detected:.1f} s"),
            ("served after the outage by", after["region"]),
            ("same prediction in both regions", "yes" if same else "NO"),
        ]
        sandbox.heal(state.primary)
        say(f"5/5 healing {state.primary}; stopping the sandbox")
    finally:
        sandbox.down()
    width = max(len(k) for k, _ in rows)
    say("\nsummary")
    for key, value in rows:
        say(f"  {key.ljust(width)}  {value}")
    return 0


def main() -> int:
    directory = Path(os.environ.get("MLDR_DEMO_DIR", ".sandbox-demo")).resolve()
    started = time.monotonic()
    code = run(directory)
    say(f"\ndemo finished in {time.monotonic() - started:.0f}s")
    return code


if __name__ == "__main__":
    sys.exit(main())
