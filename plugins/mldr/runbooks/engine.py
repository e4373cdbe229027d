"""Runbooks as sequences of idempotent step functions whose progress survives a crash.

A step is a plain function `def fence(ctx: Context) -> FenceResult`, registered with `@step`
(its description, whether it runs under the lease). It returns a frozen dataclass; later steps
read it typed, `ctx.result(preflight).source`. A step's name is its function's name: the DAG
task id, the key in the operation record, the value of MLDR_CRASH_AFTER_STEP.

An operation (a failover, a failback) has an id and a record in the control-state table:
its parameters, and per step its status, timings and result. Running an operation runs
every step not yet done, in order, so a run that crashed resumes where it stopped, and a
finished operation run again does nothing and says so. The same steps run from the CLI,
from a DAG task (one step per task) and from tests.

One run at a time: each process run of an operation is a `fencing.Run` (a nonce). The record
is saved only if nobody saved it since this run read it (its `version`), and a resumed run
claims the operation (`claim`: saves the record, takes the lease over), so an older run still
going - a zombie task, a CLI that was presumed dead - is refused at its next save or lease
change instead of overwriting the newer run's progress.

Results and params become JSON only here, where the record is stored, and are parsed back
into their types when a step reads them.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar, cast, get_type_hints, runtime_checkable

from pydantic import TypeAdapter

from mldr.actions import fencing
from mldr.cloud import Cloud, ControlStore
from mldr.cloud.control import now_iso
from mldr.errors import ConfigurationError, FencingConflict, MldrError, SimulatedCrash, StaleRecord
from mldr.runbooks.audit import AuditLog
from mldr.runbooks.heartbeat import Heartbeat, read_heartbeat, read_heartbeats
from mldr.runbooks.params import OperationParams
from mldr.topology import Topology

log = logging.getLogger(__name__)

#: Fault injection for crash-safety tests and drills: stop the process right after this step.
CRASH_AFTER_ENV = "MLDR_CRASH_AFTER_STEP"
#: Harder: kill the process (SIGKILL) right after this step - nothing of it runs after, not even
#: the failure handling that records a crash, as when a laptop dies or a pod is evicted.
KILL_AFTER_ENV = "MLDR_KILL_AFTER_STEP"

R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

#: A step: a function of the run's context that returns a frozen dataclass.
StepFn = Callable[["Context"], Any]


@dataclass(frozen=True)
class StepInfo:
    description: str
    holds_lease: bool  # the step runs under the operation's lease (after the lease is taken)


_STEP_INFO: dict[Callable[..., Any], StepInfo] = {}


def step(description: str, *, holds_lease: bool = True) -> Callable[[F], F]:
    """Declare a function a runbook step; it stays a plain function an editor can follow."""

    def register(fn: F) -> F:
        _STEP_INFO[fn] = StepInfo(description, holds_lease)
        return fn

    return register


def step_info(fn: StepFn) -> StepInfo:
    try:
        return _STEP_INFO[fn]
    except KeyError:
        raise ConfigurationError(f"{fn.__module__}.{fn.__name__} is not declared a step (@step)") from None


def step_name(fn: StepFn) -> str:
    return fn.__name__


@functools.cache
def _result_adapter(fn: StepFn) -> TypeAdapter[Any]:
    """Converts the step's return type (its annotation) to and from JSON."""
    return TypeAdapter(get_type_hints(fn)["return"])


def result_to_json(fn: StepFn, result: object) -> dict[str, Any]:
    data = _result_adapter(fn).dump_python(result, mode="json")
    if not isinstance(data, dict):
        raise ConfigurationError(f"step {step_name(fn)} must return a dataclass, not {type(result).__name__}")
    return data


def result_from_json(fn: Callable[[Context], R], data: dict[str, Any]) -> R:
    return cast(R, _result_adapter(fn).validate_python(data))


def result_from_fields(cls: type[R], data: Mapping[str, object]) -> R:
    """A result type built (and checked) from an action's dict of the same fields."""
    return TypeAdapter(cls).validate_python(dict(data))


@runtime_checkable
class Summarised(Protocol):
    """The result of a runbook's last step: its summary becomes the operation's message."""

    @property
    def summary(self) -> str: ...


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
    ABORTED = "aborted"  # ended by `mldr abort`: fences restored, lease released; not resumable
    REJECTED = "rejected"  # its approval was rejected, timed out or lost: nothing changed; not resumable


@dataclass
class StepRecord:
    name: str
    status: StepStatus = StepStatus.PENDING
    started_at: str | None = None
    ended_at: str | None = None
    seconds: float | None = None
    result: dict[str, Any] = field(default_factory=dict)  # the step's result as stored (JSON)
    error: str | None = None


@dataclass
class OperationRecord:
    id: str
    kind: str
    params: OperationParams
    status: OperationStatus = OperationStatus.RUNNING
    steps: dict[str, StepRecord] = field(default_factory=dict)
    created_at: str = field(default_factory=now_iso)
    created_epoch: float = field(default_factory=time.time)
    updated_at: str = field(default_factory=now_iso)
    message: str = ""
    #: How many times the record was saved (0: never). Kept beside the document, not in it:
    #: saves are conditional on it (`OperationStore.save`).
    version: int = 0
    #: Its run's last heartbeat, as read with the record (not part of it: see `heartbeat`).
    heard: Heartbeat | None = None

    def to_json(self) -> str:
        data = {**asdict(self), "params": self.params.to_dict()}
        del data["version"], data["heard"]
        return json.dumps(data, default=str)

    @classmethod
    def from_json(cls, text: str) -> OperationRecord:
        # Records written before params were typed (no deployment has any) are not read back.
        data = json.loads(text)
        data["params"] = OperationParams.from_dict(data["params"])
        data["status"] = OperationStatus(data["status"])
        data["steps"] = {
            name: StepRecord(**{**step, "status": StepStatus(step["status"])})
            for name, step in data["steps"].items()
        }
        return cls(**data)

    def result_if_done(self, step: Callable[[Context], R]) -> R | None:
        """The step's result, rebuilt as its return type; None if it has not completed."""
        state = self.steps.get(step_name(step))
        if state is None or state.status is not StepStatus.DONE:
            return None
        return result_from_json(step, state.result)

    def result(self, step: Callable[[Context], R]) -> R:
        """The result of a step that must have completed (one run before the reader)."""
        result = self.result_if_done(step)
        if result is None:
            raise MldrError(
                f"operation {self.id}: step {step_name(step)} has not completed, no result to read"
            )
        return result

    def step_seconds(self) -> dict[str, float]:
        return {name: s.seconds for name, s in self.steps.items() if s.seconds is not None}

    def public(self) -> dict[str, Any]:
        return json.loads(self.to_json())  # type: ignore[no-any-return]


def _record_key(operation_id: str) -> str:
    return f"op#{operation_id}"


def _from_item(item: Mapping[str, object]) -> OperationRecord:
    record = OperationRecord.from_json(str(item["doc"]))
    version = item.get("version", 0)
    record.version = version if isinstance(version, int) else 0
    return record


class OperationStore:
    """Operation records in the control-state table, saved by one run of the operation."""

    def __init__(self, store: ControlStore, run: fencing.Run | None = None) -> None:
        self.store = store
        self.run = run or fencing.Run()

    def load(self, operation_id: str) -> OperationRecord | None:
        item = self.store.get_record(_record_key(operation_id))
        if not item:
            return None
        record = _from_item(item)
        record.heard = read_heartbeat(self.store, operation_id)
        return record

    def save(self, record: OperationRecord) -> None:
        """Save `record` if nobody saved it since this run did (or read it); else `StaleRecord`
        naming the run that did - the newer run's progress is never overwritten."""
        record.updated_at = now_iso()
        key = _record_key(record.id)
        try:
            self.store.put_record(
                key,
                {
                    "doc": record.to_json(),
                    "kind": record.kind,
                    "created_at": record.created_at,
                    "run": self.run.id,
                },
                expected_version=record.version,
            )
        except StaleRecord:
            stored = self.store.get_record(key) or {}
            raise StaleRecord(
                f"operation {record.id}: its record was saved by run {stored.get('run', '?')} "
                f"(version {stored.get('version', '?')}) since this run ({self.run.id}) read it at version "
                f"{record.version}: another run of this operation is going (a resumed CLI, a retried task). "
                "This run stops here and changes nothing more; `mldr status` shows the operation"
            ) from None
        record.version += 1
        if not self.run.rank:
            self.run.rank = record.version  # the run's place in line: see fencing.take_over

    def history(self, limit: int = 20) -> list[OperationRecord]:
        records = [_from_item(item) for item in self.store.records(_record_key(""))]
        heard = read_heartbeats(self.store)
        for record in records:
            record.heard = heard.get(record.id)
        return sorted(records, key=lambda r: r.created_epoch, reverse=True)[:limit]


@dataclass(frozen=True)
class Runbook:
    """A procedure: its kind (the record's `kind`) and its step functions, in order.

    The first step is the preflight (a dry run stops after it); the last step's result is
    `Summarised`: its summary is the message of the completed operation.
    """

    kind: str
    steps: tuple[StepFn, ...]

    def __post_init__(self) -> None:
        names = [step_name(s) for s in self.steps]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"runbook {self.kind}: step names repeat: {names}")
        for fn in self.steps:
            step_info(fn)  # every step is declared with @step

    @property
    def preflight(self) -> StepFn:
        return self.steps[0]

    @property
    def last(self) -> StepFn:
        return self.steps[-1]

    def plan(self) -> tuple[str, ...]:
        """One line per step, for a dry run's output and the approver."""
        return tuple(f"{step_name(s)}: {step_info(s).description}" for s in self.steps)


@dataclass
class Context:
    """Everything a step needs; built once per run."""

    topology: Topology
    cloud: Cloud
    control: ControlStore
    operations: OperationStore
    audit: AuditLog
    record: OperationRecord
    runbook: Runbook
    say: Callable[[str], None] = lambda _m: None
    approver: str | None = None  # who approved this run (HITL responder, CLI caller); read by `approval`

    @property
    def run(self) -> fencing.Run:
        """This process run of the operation (its nonce and rank)."""
        return self.operations.run

    @property
    def params(self) -> OperationParams:
        return self.record.params

    def result(self, step: Callable[[Context], R]) -> R:
        """An earlier step's result, typed: `ctx.result(preflight).source`."""
        return self.record.result(step)

    def result_if_done(self, step: Callable[[Context], R]) -> R | None:
        return self.record.result_if_done(step)

    @classmethod
    def create(
        cls,
        topology: Topology,
        cloud: Cloud,
        record: OperationRecord,
        runbook: Runbook,
        say: Callable[[str], None],
    ) -> Context:
        control = cloud.control()
        return cls(
            topology,
            cloud,
            control,
            OperationStore(control, fencing.Run()),
            AuditLog(cloud, topology, control),
            record,
            runbook,
            say,
        )


def claim(ctx: Context) -> None:
    """Make this run the one running a resumed operation: save its record (refused if another
    run saved it since it was read) and take the lease over if the operation holds it. From
    here on an older run of the operation is refused at its next save or lease change."""
    if ctx.record.status is not OperationStatus.RUNNING and ctx.record.status is not OperationStatus.FAILED:
        return  # finished: nothing left to run, nothing to claim
    ctx.operations.save(ctx.record)
    with fencing.acting_as(ctx.run):
        fencing.take_over(ctx.control, ctx.record.id)


def run_step(ctx: Context, step: Callable[[Context], R]) -> R:
    """Run one step unless it is already done; persist its outcome either way it ends."""
    with fencing.acting_as(ctx.run):
        return _run_step(ctx, step)


def _run_step(ctx: Context, step: Callable[[Context], R]) -> R:
    record, name, info = ctx.record, step_name(step), step_info(step)
    state = record.steps.setdefault(name, StepRecord(name))
    if state.status is StepStatus.DONE:
        ctx.say(f"  {name}: already done, skipping")
        return result_from_json(step, state.result)
    state.status, state.started_at, state.error = StepStatus.RUNNING, now_iso(), None
    ctx.operations.save(record)
    token = None
    if info.holds_lease:
        try:
            token = fencing.update(ctx.control, record.id, step=name).fencing_token
        except FencingConflict as exc:
            state.status, state.error = StepStatus.FAILED, str(exc)
            _save_unless_superseded(ctx)
            raise
    ctx.audit.record(
        record.id,
        "step-start",
        step=name,
        kind=record.kind,
        token=token,
        by=record.params.requested_by,
        reason=record.params.reason,
    )
    ctx.say(f"  {name}: {info.description}")
    started = time.monotonic()
    try:
        result = step(ctx)
    except MldrError as exc:
        state.status, state.error = StepStatus.FAILED, str(exc)
        state.ended_at, state.seconds = now_iso(), round(time.monotonic() - started, 3)
        _save_unless_superseded(ctx)
        ctx.audit.record(record.id, "step-failed", step=name, error=str(exc), token=token)
        raise
    stored = result_to_json(step, result)
    state.status, state.result = StepStatus.DONE, stored
    state.ended_at, state.seconds = now_iso(), round(time.monotonic() - started, 3)
    ctx.operations.save(record)
    ctx.audit.record(record.id, "step-end", step=name, seconds=state.seconds, result=stored, token=token)
    if os.environ.get(KILL_AFTER_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(CRASH_AFTER_ENV) == name:
        raise SimulatedCrash(f"simulated crash after step {name} ({CRASH_AFTER_ENV})")
    return result


def _save_unless_superseded(ctx: Context) -> None:
    """Record a failure, unless another run holds the operation now: its record is not ours to
    write (the save would be refused anyway, hiding why this run stopped)."""
    try:
        ctx.operations.save(ctx.record)
    except StaleRecord as exc:
        log.warning("%s", exc)
