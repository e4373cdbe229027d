"""Fault injection for drills: pluggable, so the same drill runs on the sandbox and in AWS.

The sandbox implementation stops a region's processes (SIGSTOP: S3 and inference stop
answering, data survives) and pauses the replicator. In a real account there is no safe
default: a region outage must be an AWS Fault Injection Service experiment (or, for the traffic
part only, an inverted Route 53 health check on the drill's record) that the account owner
has set up and approved. `AwsFaults` therefore refuses with instructions rather than pretending.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mldr.errors import ConfigurationError, FaultInjectionUnavailable, SandboxError
from mldr.topology import TOPOLOGY_ENV, Topology

if TYPE_CHECKING:
    # imported when a sandbox is located: the drill must import without the sandbox extra
    from mldr.sandbox.manager import Sandbox


class FaultInjector(Protocol):
    kind: str

    def describe(self, fault: str) -> str: ...

    def preflight(self, fault: str) -> None:
        """Raise `FaultInjectionUnavailable` now if `fault` cannot be injected (before any change)."""
        ...

    def region_outage(self, region: str) -> None: ...

    def heal(self, region: str) -> None: ...

    def pause_replication(self) -> None: ...

    def resume_replication(self) -> None: ...


class SandboxFaults:
    """Faults in the local sandbox (`Sandbox.region_outage` / `heal` / `replication`)."""

    kind = "sandbox"

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def describe(self, fault: str) -> str:
        return {
            "region-outage": "the region's S3 and inference processes stopped (SIGSTOP): requests time out",
            "replication-stall": "the sandbox replicator paused: nothing is copied between regions",
        }.get(fault, fault)

    def preflight(self, fault: str) -> None:
        self.sandbox.running_state()

    def region_outage(self, region: str) -> None:
        self.sandbox.region_outage(region)

    def heal(self, region: str) -> None:
        self.sandbox.heal(region)

    def pause_replication(self) -> None:
        self.sandbox.replication("pause")

    def resume_replication(self) -> None:
        self.sandbox.replication("resume")


_AWS_HOWTO = {
    "region-outage": (
        "a region outage in a real account is an AWS Fault Injection Service experiment you create and "
        "approve: e.g. an experiment template with `aws:network:disrupt-connectivity` on the inference "
        "subnets and `aws:ecs:stop-task` on the service, with a CloudWatch stop condition. For the traffic "
        "part alone, invert the Route 53 health check of a drill record (`update-health-check "
        "--inverted`) so Route 53 fails the name over without touching production. Wire the experiment "
        "in as a FaultInjector (see runbooks/dr-drill.md, 'Drills in a real account')"
    ),
    "replication-stall": (
        "a replication stall in a real account means disabling the replication rule on the source "
        "buckets (`put-bucket-replication` with Status Disabled) for the drill's duration; do it from a "
        "FaultInjector you own, with the re-enable in its heal"
    ),
}


class AwsFaults:
    """A real account: every fault needs an experiment the account owner configured."""

    kind = "aws"

    def __init__(self, topology: Topology) -> None:
        self.topology = topology

    def describe(self, fault: str) -> str:
        return _AWS_HOWTO.get(fault, fault)

    def _refuse(self, fault: str) -> FaultInjectionUnavailable:
        return FaultInjectionUnavailable(
            f"no fault injector for {fault!r} in topology {self.topology.name!r} (not a sandbox): "
            f"{_AWS_HOWTO[fault]}. The planned-switchover scenario needs no fault and runs as is."
        )

    def preflight(self, fault: str) -> None:
        raise self._refuse(fault)

    def region_outage(self, region: str) -> None:
        raise self._refuse("region-outage")

    def heal(self, region: str) -> None:
        raise self._refuse("region-outage")

    def pause_replication(self) -> None:
        raise self._refuse("replication-stall")

    def resume_replication(self) -> None:
        raise self._refuse("replication-stall")


def locate_sandbox(topology: Topology) -> Sandbox:
    """The running sandbox this topology describes.

    `MLDR_SANDBOX_DIR` first, then the directory of the topology file (the sandbox writes it
    next to its state); the edge URL must match, so a drill never stops another sandbox.
    """
    if topology.sandbox is None:
        raise ConfigurationError(f"topology {topology.name!r} is not a sandbox topology")
    from mldr.sandbox.manager import Sandbox, sandbox_dir

    candidates = [sandbox_dir()]
    topology_file = os.environ.get(TOPOLOGY_ENV)
    if topology_file:
        candidates.append(Path(topology_file).resolve().parent)
    seen = []
    for directory in dict.fromkeys(candidates):
        box = Sandbox(directory)
        state = box.state
        seen.append(f"{directory} ({'edge ' + state.edge_url if state else 'no sandbox'})")
        if state is not None and state.edge_url == topology.sandbox.edge_url:
            return box
    raise SandboxError(
        f"no running sandbox matches topology {topology.name!r} (edge {topology.sandbox.edge_url}); "
        f"looked in {', '.join(seen)}. Set MLDR_SANDBOX_DIR to the sandbox's directory."
    )


def fault_injector(topology: Topology) -> FaultInjector:
    if topology.sandbox is not None:
        return SandboxFaults(locate_sandbox(topology))
    return AwsFaults(topology)
