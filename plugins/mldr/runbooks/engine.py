"""Runbooks as sequences of named, idempotent steps whose progress survives a crash.

An operation (a failover, a failback) has an id and a record in the control-state table:
its parameters, and per step its status, timings and result. Running an operation runs
every step not yet done, in order, so a run that crashed resumes where it stopped, and a
finished operation run again does nothing and says so. The same steps run from the CLI,
from a DAG task (one step per task) and from tests.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from mldr.actions import fencing
from mldr.cloud import Cloud, ControlStore
from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import factory_of
from mldr.cloud.control import now_iso
from mldr.errors import FencingConflict, MldrError
from mldr.runbooks.audit import AuditLog
from mldr.topology import Topology

log = logging.getLogger(__name__)

#: Fault injection for crash-safety tests and drills: stop the process right after this step.
CRASH_AFTER_ENV = "MLDR_CRASH_AFTER_STEP"


class SimulatedCrash(MldrError):
    """Raised after a step when MLDR_CRASH_AFTER_STEP names it (tests and drills only)."""


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class OperationStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    PLANNED = "planned"  # a dry run: preflight done, nothing changed
    NOOP = "noop"  # nothing to do (target already active)


@dataclass
class StepRecord:
    name: str
    status: StepStatus = StepStatus.PENDING
    started_at: str | None = None
    ended_at: str | None = None
    seconds: float | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class OperationRecord:
    id: str
    kind: str
    params: dict[str, Any]
    status: OperationStatus = OperationStatus.RUNNING
    steps: dict[str, StepRecord] = field(default_factory=dict)
    created_at: str = field(default_factory=now_iso)
    created_epoch: float = field(default_factory=time.time)
    updated_at: str = field(default_factory=now_iso)
    message: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> OperationRecord:
        data = json.loads(text)
        data["status"] = OperationStatus(data["status"])
        data["steps"] = {
            name: StepRecord(**{**step, "status": StepStatus(step["status"])})
            for name, step in data["steps"].items()
        }
        return cls(**data)

    def result(self, step: str) -> dict[str, Any]:
        record = self.steps.get(step)
        return record.result if record else {}

    def step_seconds(self) -> dict[str, float]:
        return {name: s.seconds for name, s in self.steps.items() if s.seconds is not None}

    def public(self) -> dict[str, Any]:
        return json.loads(self.to_json())  # type: ignore[no-any-return]


def _record_key(operation_id: str) -> str:
    return f"op#{operation_id}"


class OperationStore:
    """Operation records in the control-state table."""

    def __init__(self, store: ControlStore) -> None:
        self.store = store

    def load(self, operation_id: str) -> OperationRecord | None:
        item = self.store.get_record(_record_key(operation_id))
        return OperationRecord.from_json(str(item["doc"])) if item else None

    def save(self, record: OperationRecord) -> None:
        record.updated_at = now_iso()
        self.store.put_record(
            _record_key(record.id),
            {"doc": record.to_json(), "kind": record.kind, "created_at": record.created_at},
        )

    def history(self, limit: int = 20) -> list[OperationRecord]:
        records = [
            OperationRecord.from_json(str(item["doc"])) for item in self.store.records(_record_key(""))
        ]
        return sorted(records, key=lambda r: r.created_epoch, reverse=True)[:limit]


@dataclass
class Context:
    """Everything a step needs; built once per run."""

    topology: Topology
    cloud: Cloud
    control: ControlStore
    operations: OperationStore
    audit: AuditLog
    record: OperationRecord
    say: Callable[[str], None] = lambda _m: None

    @property
    def params(self) -> dict[str, Any]:
        return self.record.params

    @property
    def factory(self) -> ClientFactory:
        """TRANSITION (branch `platform`): the S3 calls the `cloud` branch converts to `cloud`
        still take a client factory; goes when both branches are merged."""
        return factory_of(self.cloud)

    @classmethod
    def create(
        cls, topology: Topology, cloud: Cloud, record: OperationRecord, say: Callable[[str], None]
    ) -> Context:
        control = cloud.control()
        return cls(
            topology,
            cloud,
            control,
            OperationStore(control),
            AuditLog(factory_of(cloud), topology, control),
            record,
            say,
        )


@dataclass(frozen=True)
class Step:
    name: str
    description: str
    run: Callable[[Context], dict[str, Any]]
    holds_lease: bool = True  # the step runs under the operation's lease (after `fence`)


def run_step(ctx: Context, step: Step) -> dict[str, Any]:
    """Run one step unless it is already done; persist its outcome either way it ends."""
    record = ctx.record
    state = record.steps.setdefault(step.name, StepRecord(step.name))
    if state.status is StepStatus.DONE:
        ctx.say(f"  {step.name}: already done, skipping")
        return state.result
    state.status, state.started_at, state.error = StepStatus.RUNNING, now_iso(), None
    ctx.operations.save(record)
    token = None
    if step.holds_lease:
        try:
            token = fencing.update(ctx.control, record.id, step=step.name).fencing_token
        except FencingConflict as exc:
            state.status, state.error = StepStatus.FAILED, str(exc)
            ctx.operations.save(record)
            raise
    ctx.audit.record(
        record.id,
        "step-start",
        step=step.name,
        kind=record.kind,
        token=token,
        by=record.params.get("requested_by"),
        reason=record.params.get("reason"),
    )
    ctx.say(f"  {step.name}: {step.description}")
    started = time.monotonic()
    try:
        result = step.run(ctx)
    except MldrError as exc:
        state.status, state.error = StepStatus.FAILED, str(exc)
        state.ended_at, state.seconds = now_iso(), round(time.monotonic() - started, 3)
        ctx.operations.save(record)
        ctx.audit.record(record.id, "step-failed", step=step.name, error=str(exc), token=token)
        raise
    state.status, state.result = StepStatus.DONE, result
    state.ended_at, state.seconds = now_iso(), round(time.monotonic() - started, 3)
    ctx.operations.save(record)
    ctx.audit.record(record.id, "step-end", step=step.name, seconds=state.seconds, result=result, token=token)
    if os.environ.get(CRASH_AFTER_ENV) == step.name:
        raise SimulatedCrash(f"simulated crash after step {step.name} ({CRASH_AFTER_ENV})")
    return result


def run_steps(ctx: Context, steps: list[Step], *, until: str | None = None) -> OperationRecord:
    """Run the steps in order (up to and including `until`), resuming where a run stopped."""
    for step in steps:
        run_step(ctx, step)
        if step.name == until:
            break
    return ctx.record
