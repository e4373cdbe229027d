"""Whether a drill may start now: checked before it changes anything."""

from __future__ import annotations

from mldr.checks.health import region_health
from mldr.cloud import Cloud
from mldr.errors import DrillInProgress, FailoverPreconditionFailed, LeaseHeld
from mldr.runbooks.drill.faults import FaultInjector, fault_injector
from mldr.runbooks.drill.lock import running_drill
from mldr.runbooks.drill.scenarios import Scenario
from mldr.topology import Topology


def check_ready(
    topology: Topology,
    cloud: Cloud,
    scenario: Scenario,
    *,
    faults: FaultInjector | None = None,
    drill_id: str | None = None,
) -> None:
    """Refuse to start (changing nothing) unless no other drill runs, the primary is active,
    unfenced, unleased, both regions are healthy, the DNS name answers the primary and the fault
    can be injected. `drill_id`: the drill asking (its own lock is no obstacle)."""
    source = topology.primary_region
    if scenario.injects_outage:
        (faults or fault_injector(topology)).preflight(scenario.value)
    control = cloud.control()
    running = running_drill(control, except_drill=drill_id)
    if running is not None:
        raise DrillInProgress(f"another DR drill is running: {running.describe()}. {running.how_to_stop()}")
    lease = control.read_lease()
    if lease.operation is not None:
        raise LeaseHeld(f"the DR lease is held by {lease.operation.kind} {lease.operation.id}: no drill now")
    if lease.active_region != source or lease.fenced_regions:
        raise FailoverPreconditionFailed(
            f"a drill starts from the primary {source} active and unfenced; the lease says "
            f"{lease.active_region} (fenced: {', '.join(lease.fenced_regions) or 'none'}). "
            "Fail back first: `mldr failback --reason ... --yes`"
        )
    health = [region_health(cloud, topology, r) for r in topology.region_names]
    problems = [h.summary() for h in health if not h.healthy]
    answer = cloud.traffic().answer()
    if answer != source:
        problems.append(f"the DNS name answers {answer}, not {source}")
    if problems:
        raise FailoverPreconditionFailed("drill preflight: " + "; ".join(problems))
