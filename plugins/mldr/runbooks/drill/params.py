"""What a drill is asked to do: its parameters, validated against the topology, its id, and
the dataset its canaries go to."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from mldr.errors import ConfigurationError
from mldr.runbooks.drill import metrics
from mldr.runbooks.drill.scenarios import Scenario
from mldr.topology import Dataset, DatasetKind, Topology

MAX_HOLD_SECONDS = 3600.0


@dataclass(frozen=True)
class DrillParams:
    scenario: Scenario = Scenario.REGION_OUTAGE
    target_region: str | None = None  # default: the region that is not the primary
    hold_seconds: float = 10.0  # how long to stay failed over, load running
    failback: bool = True
    stall_seconds: float = 3.0  # replication-stall: how long replication is paused before the outage
    rto_objective_seconds: float | None = None  # default: the topology's objectives
    rpo_objective_seconds: float | None = None
    request_interval: float = 0.2
    request_timeout: float = 1.0
    canary_interval: float = 0.25
    warmup_seconds: float = 1.5
    keep_canaries: bool = False
    requested_by: str = "drill"
    drill_id: str | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> DrillParams:
        """From DAG params or CLI flags; unknown keys are an error (a typo must not be ignored)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigurationError(f"unknown drill parameter(s) {unknown}: expected {sorted(known)}")
        values = {k: v for k, v in data.items() if v is not None or k in ("target_region", "drill_id")}
        if "scenario" in values:
            try:
                values["scenario"] = Scenario(values["scenario"])
            except ValueError:
                raise ConfigurationError(
                    f"scenario must be one of {', '.join(s.value for s in Scenario)}, "
                    f"not {values['scenario']!r}"
                ) from None
        return cls(**values)

    def validated(self, topology: Topology) -> DrillParams:
        target = self.target_region or topology.other_region(topology.primary_region)
        topology.require_region(target)
        if target == topology.primary_region:
            raise ConfigurationError(
                f"target region {target} is the primary: a drill fails over away from it, to "
                f"{topology.other_region(target)}"
            )
        checks = [
            ("hold seconds", self.hold_seconds, 0.0, MAX_HOLD_SECONDS),
            ("stall seconds", self.stall_seconds, 0.5, 300.0),
            ("request interval", self.request_interval, 0.05, 5.0),
            ("request timeout", self.request_timeout, 0.2, 10.0),
            ("canary interval", self.canary_interval, 0.05, 5.0),
            ("warm-up seconds", self.warmup_seconds, 0.0, 60.0),
        ]
        for name, value, low, high in checks:
            if not low <= float(value) <= high:
                raise ConfigurationError(f"{name} must be between {low:g} and {high:g}, got {value!r}")
        for name, objective in (("RTO", self.rto_objective_seconds), ("RPO", self.rpo_objective_seconds)):
            if objective is not None and objective <= 0:
                raise ConfigurationError(f"{name} objective must be > 0 seconds, got {objective!r}")
        return replace(self, target_region=target, drill_id=self.drill_id or new_drill_id())

    def objectives(self, topology: Topology) -> metrics.Objectives:
        return metrics.Objectives(
            rto_seconds=float(self.rto_objective_seconds or topology.objectives.rto_seconds),
            rpo_seconds=float(self.rpo_objective_seconds or topology.objectives.rpo_seconds),
        )

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data["scenario"] = self.scenario.value
        return data


def new_drill_id() -> str:
    return f"drill-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:6]}"


def canary_dataset(topology: Topology) -> Dataset:
    """Canaries go where the pipeline's own writes go: the training data."""
    found = topology.datasets_of_kind(DatasetKind.TRAINING_DATA)
    return found[0] if found else topology.datasets[0]
