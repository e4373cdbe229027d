"""The DR drill: fail over under a real fault, fail back, and measure what clients felt.

    preflight -> load (requests + canaries) -> [quiesce] -> [stall] -> fault -> detection
      -> failover (the runbook, unplanned; planned for a switchover) -> hold -> heal
      -> failback (the runbook: resync, freeze, switch back) -> check -> verdict

Scenarios:
- `region-outage`: the source region stops answering (sandbox: SIGSTOP of its S3 and
  inference; AWS: a Fault Injection Service experiment you configure). The fault is injected
  at a replication-quiescent moment: the canary writer pauses and the drill waits until every
  acknowledged canary is in the target (and the replicator's backlog is empty) - so the RPO
  measured is what the failover loses, not the ~1 s of replication that is always in flight.
  The report says so.
- `replication-stall`: replication is paused `stall_seconds` before the outage while canaries
  keep being written; the drill measures exactly what was lost (objects and seconds).
- `planned-switchover`: no fault; a planned failover (fence, drain: RPO 0) and back.

The failover and failback are the same runbooks an operator runs (`mldr.runbooks.operations`),
started with the reason "DR drill <id>: <scenario>" and no approval step. Everything the drill
changes is announced in the control-state table first (`state`), so `recover()`
undoes an interrupted drill: heal, resume replication, finish the operation in progress, fail
back. Measurements are pure functions in `metrics`
over what the client observed, so they are tested on synthetic timelines.

The package, by job: `params` (what a drill is asked to do), `preflight` (may it start),
`runner` (the `Drill` itself), `document` (its result document), `publish` (the stored report
and summary), `recover` (undoing an interrupted drill); and the drill's parts: `load` (requests
and canaries), `faults` (injection: the sandbox, or an experiment in AWS), `monitor` (health
checks and DNS answers seen during the drill), `metrics`, `report` (the HTML page), `state`
(persisted in the control table), `scenarios`. The thin adapters are `mldr.cli_drill` and
`mldr.airflow.drill_tasks`. Importing the package does not import the sandbox.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mldr.errors import DrillInProgress
    from mldr.runbooks.drill.params import DrillParams, canary_dataset, new_drill_id
    from mldr.runbooks.drill.preflight import check_ready
    from mldr.runbooks.drill.runner import Drill, run_drill
    from mldr.runbooks.drill.scenarios import Scenario

#: `publish`, `summary` and `recover` are imported from their modules (`...drill.publish`,
#: `...drill.recover`): a name equal to a submodule's is replaced by that module on its import.
#: Where each public name lives. Imported when first used, not with the package: every `mldr`
#: command imports `scenarios` for its flags, and the whole drill (runner, health checks, HTTP)
#: cost each of them ~0.4 s.
_HOMES = {
    "DrillInProgress": "mldr.errors",
    "DrillParams": "mldr.runbooks.drill.params",
    "canary_dataset": "mldr.runbooks.drill.params",
    "new_drill_id": "mldr.runbooks.drill.params",
    "check_ready": "mldr.runbooks.drill.preflight",
    "Drill": "mldr.runbooks.drill.runner",
    "run_drill": "mldr.runbooks.drill.runner",
    "Scenario": "mldr.runbooks.drill.scenarios",
}

__all__ = [
    "Drill",
    "DrillInProgress",
    "DrillParams",
    "Scenario",
    "canary_dataset",
    "check_ready",
    "new_drill_id",
    "run_drill",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
