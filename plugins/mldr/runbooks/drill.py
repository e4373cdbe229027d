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
changes is announced in the control-state table first (`mldr.drill.state`), so `recover()`
undoes an interrupted drill: heal, resume replication, finish the operation in progress, fail
back. Measurements are pure functions in `mldr.drill.metrics`.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import httpx

from mldr import http
from mldr.checks.dns import dns_answer
from mldr.checks.health import endpoint_healthy, region_health
from mldr.checks.replication_status import status_source
from mldr.cloud.aws.clients import ClientFactory
from mldr.control_state import ControlStateStore
from mldr.drill import metrics
from mldr.drill.faults import FaultInjector, fault_injector
from mldr.drill.load import (
    CANARY_TIMEOUTS,
    CanaryWriter,
    InferenceLoad,
    LeaseFollower,
    canary_prefix,
    delete_canaries,
    list_canary_keys,
    read_canaries,
)
from mldr.drill.monitor import DetectionWindow, HealthMonitor, first_transition, health_monitor
from mldr.drill.scenarios import Scenario
from mldr.drill.state import DrillState, DrillStateStore, Phase
from mldr.errors import ConfigurationError, FailoverPreconditionFailed, LeaseHeld, MldrError
from mldr.ml.golden import golden_set
from mldr.runbooks.common import Mode, OperationParams
from mldr.runbooks.engine import OperationRecord, OperationStatus, OperationStore
from mldr.runbooks.operations import execute, open_operation
from mldr.topology import Dataset, DatasetKind, Topology

log = logging.getLogger(__name__)

REPORT_KIND = "drill"
DOCUMENT_VERSION = 1
MAX_HOLD_SECONDS = 3600.0
QUIESCE_TIMEOUT = 20.0
HEAL_TIMEOUT = 30.0
WARMUP_TIMEOUT = 30.0
CHECK_TIMEOUT = 10.0  # replication lag is ~1 s; a canary missing after 10 s is missing


class DrillInProgress(LeaseHeld):
    """Another process is running a drill against this topology right now."""


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


def golden_answer(topology: Topology, region: str, *, timeout: float = 3.0) -> dict[str, Any]:
    """The golden set predicted by one region's own endpoint (not through the DNS name)."""
    url = topology.region(region).endpoint_url.rstrip("/") + "/predict"
    try:
        response = http.post(url, json={"instances": golden_set()}, timeout=timeout)
    except httpx.HTTPError as exc:
        return {"region": region, "error": f"{url}: no answer ({type(exc).__name__})"}
    if response.status_code != 200:
        return {"region": region, "error": f"{url}: HTTP {response.status_code} {response.text[:120]}"}
    body = response.json()
    return {
        "region": body.get("region", region),
        "model_version": body.get("model_version"),
        "predictions": body.get("predictions"),
    }


def _operation_params(kind: str, target: str, mode: Mode, reason: str, by: str) -> OperationParams:
    return OperationParams(
        kind=kind, target_region=target, mode=mode, reason=reason, requested_by=by, require_approval=False
    )


def _run_operation(
    topology: Topology,
    factory: ClientFactory,
    params: OperationParams,
    say: Callable[[str], None],
    on_open: Callable[[str], None] = lambda _id: None,
) -> OperationRecord:
    ctx = open_operation(topology, factory, params, say=say)
    on_open(ctx.record.id)
    record = execute(ctx)
    if record.status not in (OperationStatus.COMPLETED, OperationStatus.NOOP):
        raise MldrError(f"{params.kind} {record.id} ended {record.status.value}: {record.message}")
    return record


def check_ready(
    topology: Topology, factory: ClientFactory, scenario: Scenario, *, faults: FaultInjector | None = None
) -> None:
    """Refuse to start (changing nothing) unless the primary is active, unfenced, unleased, both
    regions are healthy, the DNS name answers the primary and the fault can be injected."""
    source = topology.primary_region
    if scenario.injects_outage:
        (faults or fault_injector(topology)).preflight(scenario.value)
    control = ControlStateStore(factory)
    lease = control.read_lease()
    if lease.operation is not None:
        raise LeaseHeld(f"the DR lease is held by {lease.operation.kind} {lease.operation.id}: no drill now")
    if lease.active_region != source or lease.fenced_regions:
        raise FailoverPreconditionFailed(
            f"a drill starts from the primary {source} active and unfenced; the lease says "
            f"{lease.active_region} (fenced: {', '.join(lease.fenced_regions) or 'none'}). "
            "Fail back first: `mldr failback --reason ... --yes`"
        )
    health = [region_health(factory, topology, r) for r in topology.region_names]
    problems = [h.summary() for h in health if not h.healthy]
    answer = dns_answer(factory, topology)
    if answer != source:
        problems.append(f"the DNS name answers {answer}, not {source}")
    if problems:
        raise FailoverPreconditionFailed("drill preflight: " + "; ".join(problems))
    state = DrillStateStore(control).load()
    if state is not None and state.running_elsewhere():
        raise DrillInProgress(
            f"drill {state.drill_id} is running (pid {state.pid} on {state.host}, phase {state.phase})"
        )


# --- recovery ---------------------------------------------------------------------------------


def recover(
    topology: Topology,
    factory: ClientFactory,
    *,
    faults: FaultInjector | None = None,
    say: Callable[[str], None] = log.info,
) -> list[str]:
    """Undo what an interrupted drill left behind; returns what was done (empty: nothing to do).

    Heals the region it stopped, resumes replication it paused, finishes the failover or
    failback it had started (the runbooks resume from their records), fails back to the
    primary, and removes its canaries. Idempotent; refuses while the drill's process lives.
    """
    control = ControlStateStore(factory)
    drills = DrillStateStore(control)
    state = drills.load()
    if state is None or state.phase.finished:
        return []
    if state.running_elsewhere():
        raise DrillInProgress(
            f"drill {state.drill_id} is running (pid {state.pid} on {state.host}, phase {state.phase}); "
            "wait for it, or stop that process and run `mldr drill --recover`"
        )
    say(
        f"recovering interrupted drill {state.drill_id} ({state.scenario}, stopped in phase "
        f"{state.phase}, pid {state.pid})"
    )
    done: list[str] = []
    if state.fault_region or state.replication_paused:
        faults = faults or fault_injector(topology)
        if state.fault_region:
            faults.heal(state.fault_region)
            done.append(f"healed {state.fault_region}")
        if state.replication_paused:
            faults.resume_replication()
            done.append("resumed replication")
        state.fault_region, state.replication_paused = None, False
        drills.save(state)
    ours = set(state.operations.values())
    lease = control.read_lease()
    op = lease.operation
    if op is not None:
        if op.id not in ours:
            raise LeaseHeld(
                f"the DR lease is held by {op.kind} {op.id} ({op.reason!r}), not by drill {state.drill_id}; "
                "resolve it first (`mldr status`), then run `mldr drill --recover` again"
            )
        if op.kind == "failback":
            _wait_healthy(topology, op.target)  # its remaining steps need the primary answering
        say(f"finishing the drill's interrupted {op.kind} {op.id} ({op.source} -> {op.target})")
        _run_operation(
            topology,
            factory,
            _operation_params(op.kind, op.target, Mode(op.mode), op.reason, op.started_by),
            say,
        )
        done.append(f"finished interrupted {op.kind} {op.id} to {op.target}")
    operations = OperationStore(control)
    for op_id in ours:
        record = operations.load(op_id)
        if record is not None and record.status is OperationStatus.RUNNING:
            # Killed before it took the lease: nothing was changed; say so in its record.
            record.status = OperationStatus.FAILED
            record.message = (
                f"abandoned: drill {state.drill_id} was interrupted before this operation changed anything"
            )
            operations.save(record)
            done.append(f"marked {op_id} abandoned (it had changed nothing)")
    lease = control.read_lease()
    primary = topology.primary_region
    if lease.active_region != primary or lease.fenced_regions:
        _wait_healthy(topology, primary)
        reason = f"DR drill {state.drill_id}: recovery after interruption"
        record = _run_operation(
            topology,
            factory,
            _operation_params("failback", primary, Mode.PLANNED, reason, "drill-recovery"),
            say,
        )
        done.append(f"failed back to {primary} ({record.id})")
    removed = _cleanup_canaries(topology, factory, state.drill_id)
    if removed:
        done.append(f"removed {removed} canary object(s)")
    state.phase = Phase.RECOVERED
    state.message = "; ".join(done) or "nothing to undo"
    drills.save(state)
    say(f"drill {state.drill_id} recovered: {state.message}")
    return done


def _wait_healthy(topology: Topology, region: str, timeout: float = HEAL_TIMEOUT) -> float:
    started = time.monotonic()
    why = ""
    while time.monotonic() - started < timeout:
        ok, why = endpoint_healthy(topology, region, timeout=1.0)
        if ok:
            return time.monotonic() - started
        time.sleep(0.2)
    raise MldrError(f"{region} not healthy {timeout:.0f}s after healing: {why}")


def _cleanup_canaries(topology: Topology, factory: ClientFactory, drill_id: str) -> int:
    dataset = canary_dataset(topology)
    prefix = canary_prefix(dataset.prefix, drill_id)
    removed = 0
    for region in topology.region_names:
        try:
            removed += delete_canaries(factory, region=region, bucket=dataset.buckets[region], prefix=prefix)
        except MldrError as exc:
            log.warning("canaries of %s not removed from %s: %s", drill_id, region, exc)
    return removed


# --- the drill --------------------------------------------------------------------------------


class Drill:
    """One run of the drill; `run()` returns the result document (see `document()`)."""

    def __init__(
        self,
        topology: Topology,
        factory: ClientFactory,
        params: DrillParams,
        *,
        faults: FaultInjector | None = None,
        say: Callable[[str], None] = log.info,
    ) -> None:
        self.topology = topology
        self.factory = factory
        self.params = params.validated(topology)
        self.scenario = self.params.scenario
        self.id = str(self.params.drill_id)
        self.source = topology.primary_region
        self.target = str(self.params.target_region)
        self._faults = faults
        self._say = say
        self.control = ControlStateStore(factory)
        self.drills = DrillStateStore(self.control)
        self.state = DrillState(
            drill_id=self.id, scenario=self.scenario.value, source=self.source, target=self.target
        )
        self.dataset = canary_dataset(topology)
        self.prefix = canary_prefix(self.dataset.prefix, self.id)
        self.t0 = time.time()
        self.events: dict[str, float] = {}
        self.durations: dict[str, float] = {}
        self.notes: list[str] = []
        self.records: dict[str, OperationRecord] = {}
        self.answers: dict[str, dict[str, Any]] = {}
        self.loss: metrics.DataLoss | None = None
        self.failback_loss: metrics.FailbackLoss | None = None
        self.quiesce: dict[str, Any] = {}
        self._window: DetectionWindow | None = None
        # Built here, started by start_load(): nothing below touches the network until then.
        self.monitor: HealthMonitor = health_monitor(factory, topology)
        self.load = InferenceLoad(
            topology.inference.client_url.rstrip("/") + "/predict",
            golden_set(),
            interval=self.params.request_interval,
            timeout=self.params.request_timeout,
        )
        self.writer = CanaryWriter(
            factory=factory,
            bucket_of=lambda region: self.dataset.buckets[region],
            key_prefix=self.prefix,
            drill_id=self.id,
            active_region=LeaseFollower(self.control, self.source),
            interval=self.params.canary_interval,
        )
        self.samples: list[metrics.RequestSample] = []
        self.canaries: list[metrics.CanaryWrite] = []

    @property
    def window(self) -> DetectionWindow:
        if self._window is None:
            raise MldrError("the detection window is read in preflight, which has not run")
        return self._window

    @property
    def faults(self) -> FaultInjector:
        if self._faults is None:
            self._faults = fault_injector(self.topology)
        return self._faults

    def say(self, message: str) -> None:
        self._say(f"[{time.time() - self.t0:6.1f}s] {message}")

    def mark(self, event: str, at: float | None = None) -> float:
        self.events[event] = at if at is not None else time.time()
        return self.events[event]

    def phase(self, phase: Phase, **changes: Any) -> None:
        self.state.phase = phase
        for key, value in changes.items():
            setattr(self.state, key, value)
        self.drills.save(self.state)

    # -- the procedure -------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.t0 = time.time()
        recovered = recover(self.topology, self.factory, faults=self._faults, say=self._say)
        if recovered:
            self.notes.append("before starting, recovered an interrupted drill: " + "; ".join(recovered))
        self.preflight()
        try:
            self.start_load()
            if self.scenario is Scenario.PLANNED_SWITCHOVER:
                self.planned_failover()
            else:
                self.outage_and_failover()
            self.hold()
            if self.scenario.injects_outage:
                self.heal()
            if self.params.failback:
                self.failback()
            self.check()
        except BaseException as exc:
            self.abort(exc)
            raise
        self.phase(Phase.DONE, message="completed")
        return self.document()

    def preflight(self) -> None:
        p = self.params
        self.say(
            f"drill {self.id}: {self.scenario.value}, {self.source} -> {self.target}, "
            f"hold {p.hold_seconds:g}s, {'then fail back' if p.failback else 'no failback'}"
        )
        check_ready(self.topology, self.factory, self.scenario, faults=self.faults)
        self._window = self.monitor.window(self.source)
        self.answers[f"{self.source} before"] = golden_answer(self.topology, self.source)
        self.drills.save(self.state)
        objectives = self.params.objectives(self.topology)
        self.say(
            f"preflight ok: detection window {self.window.seconds:g}s ({self.window.interval_seconds:g}s x "
            f"{self.window.failure_threshold}); objectives RTO {objectives.rto_seconds:g}s, "
            f"RPO {objectives.rpo_seconds:g}s. If interrupted: `mldr drill --recover` reverts it"
        )

    def start_load(self) -> None:
        p = self.params
        # Clients first: through Airflow's hooks a client costs a connection lookup and a session,
        # seconds on a busy machine, which must not show up as the first requests' latency.
        for region in self.topology.region_names:
            self.factory.client("s3", region, timeouts=CANARY_TIMEOUTS)
            self.factory.client("s3", region)
        self.control.read_lease()
        self.monitor.start()
        self.mark("load_started")
        self.load.start()
        self.writer.start()
        time.sleep(p.warmup_seconds)
        deadline = time.monotonic() + WARMUP_TIMEOUT
        while True:
            ok = [s for s in self.load.samples() if s.ok]
            acked = [c for c in self.writer.writes() if c.acked]
            if ok and acked:
                break
            if time.monotonic() > deadline:
                raise MldrError(
                    f"load generator: {len(ok)} successful request(s) and {len(acked)} acknowledged canary "
                    f"write(s) in {p.warmup_seconds + WARMUP_TIMEOUT:g}s; the service is not healthy enough "
                    "to drill"
                )
            time.sleep(0.1)
        self.say(
            f"load running: a request every {p.request_interval:g}s to {self.topology.inference.client_url}, "
            f"a canary every {p.canary_interval:g}s to s3://{self.dataset.buckets[self.source]}/{self.prefix}"
        )

    def quiesce_replication(self) -> None:
        """Pause the writer and wait until the target holds every acknowledged canary."""
        started = time.monotonic()
        self.writer.pause()
        acked = {c.key for c in self.writer.writes() if c.acked and c.region == self.source}
        bucket = self.dataset.buckets[self.target]
        statuses = status_source(self.topology, self.factory) if self.topology.sandbox is not None else None
        missing: set[str] = set(acked)
        backlog = 0
        while time.monotonic() - started < QUIESCE_TIMEOUT:
            missing = acked - list_canary_keys(
                self.factory, region=self.target, bucket=bucket, prefix=self.prefix
            )
            if statuses is not None:
                source_bucket = self.dataset.buckets[self.source]
                backlog = len(statuses.backlog(region=self.source, bucket=source_bucket))
            if not missing and backlog == 0:
                break
            time.sleep(0.1)
        waited = round(time.monotonic() - started, 3)
        self.durations["quiesce"] = waited
        self.quiesce = {
            "waited_seconds": waited,
            "unreplicated_at_fault": len(missing),
            "backlog_at_fault": backlog,
        }
        if missing or backlog:
            self.notes.append(
                f"replication did not catch up within {QUIESCE_TIMEOUT:g}s before the fault: "
                f"{len(missing)} canary(ies) not yet in {self.target}, backlog {backlog}; they count as "
                "lost if still missing"
            )
        else:
            self.notes.append(
                f"the fault was injected at a replication-quiescent moment: the canary writer paused "
                f"{waited:.1f}s until all {len(acked)} acknowledged canaries were in {self.target} and the "
                "replication backlog was empty, so the RPO measured is what the failover itself loses "
                "(replication-stall measures loss with writes in flight)"
            )

    def outage_and_failover(self) -> None:
        p = self.params
        self.quiesce_replication()
        if self.scenario is Scenario.REPLICATION_STALL:
            self.phase(Phase.STALL, replication_paused=True)
            self.faults.pause_replication()
            self.mark("stall_at")
            self.writer.resume()
            self.say(f"replication paused; canaries keep coming for {p.stall_seconds:g}s before the outage")
            time.sleep(p.stall_seconds)
        self.phase(Phase.FAULT, fault_region=self.source)
        with self.writer.between_writes():
            self.faults.region_outage(self.source)
            fault_at = self.mark("fault_at")
        self.load.kick()
        self.writer.resume()
        self.mark("writes_stopped_at", fault_at)
        self.say(f"FAULT: region outage in {self.source}: {self.faults.describe('region-outage')}")
        detected = self._wait_detection(fault_at)
        self.say(
            f"detected after {detected - fault_at:.1f}s: the {self.source} health check is unhealthy "
            f"(window {self.window.seconds:g}s)"
        )
        self.phase(Phase.FAILOVER)
        self.say(f"failover runbook, unplanned, to {self.target}")
        self._failover(Mode.UNPLANNED)

    def _wait_detection(self, fault_at: float) -> float:
        deadline = time.monotonic() + self.window.seconds + 30.0
        while time.monotonic() < deadline:
            at = first_transition(
                self.monitor.transitions(),
                what="check",
                value="unhealthy",
                region=self.source,
                after=fault_at,
            )
            if at is not None:
                return self.mark("detected_at", at)
            time.sleep(0.1)
        raise MldrError(
            f"the health check of {self.source} did not turn unhealthy within "
            f"{self.window.seconds + 30:.0f}s of the fault: detection is broken (check the health "
            "check's target and threshold)"
        )

    def planned_failover(self) -> None:
        self.phase(Phase.FAILOVER)
        self.mark("fault_at")  # the switchover starts: no fault, but the same reference point
        self.say(f"planned switchover to {self.target}: fence, drain, switch (no fault injected)")
        record = self._failover(Mode.PLANNED)
        self.mark(
            "writes_stopped_at", float(record.result("fence").get("fenced_at", self.events["fault_at"]))
        )

    def _failover(self, mode: Mode) -> OperationRecord:
        reason = f"DR drill {self.id}: {self.scenario.value}"

        def opened(op_id: str) -> None:
            self.state.operations["failover"] = op_id
            self.drills.save(self.state)

        started = self.mark("failover_started_at")
        record = _run_operation(
            self.topology,
            self.factory,
            _operation_params("failover", self.target, mode, reason, self.params.requested_by),
            lambda m: self.say(m.strip()),
            opened,
        )
        self.records["failover"] = record
        self.durations["failover"] = round(time.time() - started, 3)
        self.mark("failover_done_at")
        if "switched_at" in record.result("switch"):
            self.mark("failover_switched_at", float(record.result("switch")["switched_at"]))
        self.say(f"failover {record.id} completed in {self.durations['failover']:.1f}s")
        # Data loss is measured now, before the source comes back and replication catches up.
        self._wait_client_success(self.target, after=self.events["fault_at"])
        present = read_canaries(
            self.factory, region=self.target, bucket=self.dataset.buckets[self.target], prefix=self.prefix
        )
        self.loss = metrics.data_loss(
            self.writer.writes(),
            source=self.source,
            present_in_target=present,
            writes_stopped_at=self.events.get("writes_stopped_at", self.events["fault_at"]),
        )
        self.answers[f"{self.target} after failover"] = golden_answer(self.topology, self.target)
        self.say(
            f"data lost: {self.loss.lost_objects} of {self.loss.considered} acknowledged canaries missing in "
            f"{self.target} (RPO {self.loss.rpo_seconds:.1f}s)"
        )
        return record

    def _wait_client_success(self, region: str, *, after: float, timeout: float = 15.0) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sample = self.load.first_success(region, after=after)
            if sample is not None:
                return sample.sent_at
            time.sleep(0.1)
        self.notes.append(f"no client request was answered by {region} within {timeout:g}s")
        return None

    def hold(self) -> None:
        self.phase(Phase.HOLD)
        self.say(f"holding on {self.target} for {self.params.hold_seconds:g}s, load running")
        time.sleep(self.params.hold_seconds)

    def heal(self) -> None:
        self.faults.heal(self.source)
        if self.state.replication_paused:
            self.faults.resume_replication()
        self.mark("healed_at")
        self.phase(Phase.HEALED, fault_region=None, replication_paused=False)
        waited = _wait_healthy(self.topology, self.source)
        # Fail back only once the health check sees the region healthy again, as an operator
        # would: until then the DNS name keeps answering the target whatever the records say.
        deadline = time.monotonic() + HEAL_TIMEOUT
        while self.monitor.status(self.source) != "healthy":
            if time.monotonic() > deadline:
                raise MldrError(
                    f"{self.source} answers again but its health check is still "
                    f"{self.monitor.status(self.source)} {HEAL_TIMEOUT:.0f}s after healing; not failing back "
                    "into an unhealthy region"
                )
            time.sleep(0.1)
        self.mark("source_healthy_at")
        self.say(
            f"healed {self.source}: endpoint healthy after {waited:.1f}s, health check healthy after "
            f"{self.events['source_healthy_at'] - self.events['healed_at']:.1f}s"
            + (", replication resumed" if self.scenario is Scenario.REPLICATION_STALL else "")
        )

    def failback(self) -> None:
        self.phase(Phase.FAILBACK)
        self.say(f"failback runbook to {self.source}: resync, freeze, switch back")
        reason = f"DR drill {self.id}: failback after {self.scenario.value}"

        def opened(op_id: str) -> None:
            self.state.operations["failback"] = op_id
            self.drills.save(self.state)

        started = self.mark("failback_started_at")
        record = _run_operation(
            self.topology,
            self.factory,
            _operation_params("failback", self.source, Mode.PLANNED, reason, self.params.requested_by),
            lambda m: self.say(m.strip()),
            opened,
        )
        self.records["failback"] = record
        self.durations["failback"] = round(time.time() - started, 3)
        self.mark("failback_done_at")
        if "switched_at" in record.result("switch"):
            self.mark("failback_switched_at", float(record.result("switch")["switched_at"]))
        self.say(f"failback {record.id} completed in {self.durations['failback']:.1f}s")
        self._wait_client_success(self.source, after=self.events["failback_started_at"])
        time.sleep(min(1.0, self.params.hold_seconds))  # the timeline shows the primary serving again

    def check(self) -> None:
        self.phase(Phase.CHECK)
        self.canaries = self.writer.stop()
        self.samples = self.load.stop()
        self.mark("load_stopped")
        if self.params.failback:
            self.failback_loss = self._wait_canaries_everywhere()
            self.answers[f"{self.source} after failback"] = golden_answer(self.topology, self.source)
            self.answers[f"{self.target} after failback"] = golden_answer(self.topology, self.target)
            self.say(
                f"after failback: {self.failback_loss.lost} of {self.failback_loss.checked} acknowledged "
                "canaries missing or different in a region"
            )
        self.monitor.stop()
        if not self.params.keep_canaries:
            removed = _cleanup_canaries(self.topology, self.factory, self.id)
            self.notes.append(f"removed the drill's {removed} canary object version(s) from both regions")

    def _wait_canaries_everywhere(self) -> metrics.FailbackLoss:
        """Replication of the last canaries takes ~a second; wait for it (bounded) before judging."""
        deadline = time.monotonic() + CHECK_TIMEOUT
        while True:
            present = {
                region: read_canaries(
                    self.factory, region=region, bucket=self.dataset.buckets[region], prefix=self.prefix
                )
                for region in self.topology.region_names
            }
            loss = metrics.lost_after_failback(self.canaries, present)
            if loss.lost == 0 or time.monotonic() > deadline:
                return loss
            time.sleep(0.5)

    def _failback_detail(self) -> list[dict[str, Any]]:
        """Each canary missing after failback: where it was written, when, where it is missing.

        Also names the one pattern seen so far: writes the primary acknowledged right after the
        failback switched traffic back, before replication to the standby was restored - S3 does
        not replicate objects written before a rule exists, so they stay unprotected."""
        if self.failback_loss is None or not self.failback_loss.lost:
            return []
        t0 = self.events.get("load_started", self.t0)
        by_key = {c.key: c for c in self.canaries}
        detail: list[dict[str, Any]] = [
            {
                "key": key,
                "seq": by_key[key].seq,
                "written_to": by_key[key].region,
                "acked_after_seconds": round((by_key[key].acked_at or t0) - t0, 3),
                "missing_in": region,
            }
            for region, keys in self.failback_loss.missing.items()
            for key in keys
        ]
        start, end = self.events.get("failback_started_at"), self.events.get("failback_done_at")
        gap = [
            d
            for d in detail
            if d["missing_in"] == self.target
            and d["written_to"] == self.source
            and start is not None
            and end is not None
            and start - t0 <= d["acked_after_seconds"] <= end - t0
        ]
        if gap and len(gap) == len(detail):
            self.notes.append(
                f"protection gap in the failback runbook: {len(gap)} write(s) acknowledged by {self.source} "
                f"right after the failback switched writes to it, before replication {self.source} -> "
                f"{self.target} was restored, were never replicated (S3 does not replicate objects written "
                "before a replication rule exists). They are not lost from the primary, but a failover now "
                "would lose them: restore replication before switching writes (runbooks/dr-drill.md)"
            )
        return detail

    def abort(self, exc: BaseException) -> None:
        """Stop the load and undo the drill; the original error is re-raised by the caller."""
        for part in (self.writer, self.load, self.monitor):
            try:
                part.stop()
            except (MldrError, RuntimeError) as stop_error:
                log.warning("stopping %s: %s", type(part).__name__, stop_error)
        self.say(f"drill stopped at phase {self.state.phase}: {exc!r}; reverting")
        self.state.message = f"stopped: {exc}"
        # FAILED: any process may recover it from now on (the next drill, the DAG's teardown).
        self.state.phase, interrupted_phase = Phase.FAILED, self.state.phase
        try:
            self.drills.save(self.state)
            actions = recover(self.topology, self.factory, faults=self._faults, say=self._say)
        except (MldrError, httpx.HTTPError) as recover_error:
            self.say(
                f"could NOT revert the drill ({recover_error}); the sandbox/topology may still be failed "
                f"over or faulted (phase {interrupted_phase}). Run `mldr drill --recover`, or heal the "
                "region (`mldr sandbox fault heal --region ...`) and `mldr failback --reason ... --yes`"
            )
            return
        self.say("reverted: " + ("; ".join(actions) or "nothing to undo"))

    # -- results ------------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        objectives = self.params.objectives(self.topology)
        fault_at = self.events.get("fault_at", self.t0)
        downtime = metrics.client_downtime(self.samples, fault_at=fault_at, target=self.target)
        parity = metrics.prediction_parity(self.answers)
        loss = self.loss
        failback_lost = self.failback_loss.lost if self.failback_loss is not None else None
        verdict = metrics.verdict(
            rto_seconds=downtime.seconds,
            rpo_seconds=loss.rpo_seconds if loss is not None else None,
            parity=parity.ok,
            lost_after_failback=failback_lost,
            objectives=objectives,
            failed_back=self.params.failback,
            missing_by_region={r: len(k) for r, k in self.failback_loss.missing.items()}
            if self.failback_loss
            else None,
        )
        failback_detail = self._failback_detail()
        detection = metrics.detection_seconds(
            fault_at if self.scenario.injects_outage else None, self.events.get("detected_at")
        )
        transitions = self.monitor.transitions()
        dns_switch = first_transition(transitions, what="answer", value=self.target, after=fault_at)
        window = self._window
        failover_risk = (
            self.records["failover"].result("drain").get("data_at_risk")
            if "failover" in self.records
            else None
        )
        steps = {kind: record.step_seconds() for kind, record in self.records.items()}
        return {
            "kind": "mldr-dr-drill",
            "version": DOCUMENT_VERSION,
            "drill_id": self.id,
            "scenario": self.scenario.value,
            "topology": self.topology.name,
            "sandbox": self.topology.sandbox is not None,
            "source": self.source,
            "target": self.target,
            "started_at": _iso(self.t0),
            "finished_at": _iso(time.time()),
            "duration_seconds": round(time.time() - self.t0, 3),
            "params": self.params.public(),
            "objectives": {
                "rto_seconds": objectives.rto_seconds,
                "rpo_seconds": objectives.rpo_seconds,
                "overridden": self.params.rto_objective_seconds is not None
                or self.params.rpo_objective_seconds is not None,
            },
            "verdict": verdict.label,
            "verdict_reason": verdict.reason,
            "failed_criteria": list(verdict.failures),
            "rto_seconds": _round(downtime.seconds),
            "rpo_seconds": _round(loss.rpo_seconds) if loss is not None else None,
            "lost_objects": loss.lost_objects if loss is not None else None,
            "lost_after_failback": failback_lost,
            "failed_requests": downtime.failed_requests,
            "parity": parity.ok,
            "detection": {
                "window_seconds": window.seconds if window else None,
                "interval_seconds": window.interval_seconds if window else None,
                "failure_threshold": window.failure_threshold if window else None,
                "detected_after_seconds": _round(detection),
                "dns_switched_after_seconds": _round(dns_switch - fault_at) if dns_switch else None,
                "rto_over_window": _round(downtime.seconds / window.seconds, 2)
                if downtime.seconds is not None and window and self.scenario.injects_outage
                else None,
            },
            "downtime": {
                "first_failure_at": downtime.first_failure_at,
                "recovered_at": downtime.recovered_at,
                "seconds": _round(downtime.seconds),
                "requests": len(self.samples),
                "requests_failed_total": sum(1 for s in self.samples if not s.ok),
            },
            "data": {
                "canaries_written": len(self.canaries),
                "canaries_acknowledged": sum(1 for c in self.canaries if c.acked),
                "considered_for_rpo": loss.considered if loss is not None else None,
                "lost_keys": [c.key for c in loss.lost] if loss is not None else [],
                "lost_after_failback_keys": dict(self.failback_loss.missing) if self.failback_loss else None,
                "lost_after_failback_detail": failback_detail,
                "write_outage_seconds": _round(
                    metrics.write_outage_seconds(self.canaries, fault_at=fault_at)
                ),
                "data_at_risk_at_failover": failover_risk,
                "quiesce": self.quiesce or None,
                "stall_seconds": _round(fault_at - self.events["stall_at"])
                if "stall_at" in self.events
                else None,
            },
            "parity_detail": {
                "ok": parity.ok,
                "model_versions": dict(parity.model_versions),
                "problems": list(parity.problems),
                "answers": self.answers,
            },
            "steps": steps,
            "phases": self.durations,
            "operations": {kind: record.id for kind, record in self.records.items()},
            "events": {name: round(at, 3) for name, at in sorted(self.events.items(), key=lambda kv: kv[1])},
            "transitions": [t.public() for t in transitions],
            "notes": self.notes,
            "timeline": {
                "t0": self.events.get("load_started", self.t0),
                "requests": [
                    [round(s.sent_at, 3), int(s.ok), s.status, round(s.latency * 1000, 1), s.region]
                    for s in self.samples
                ],
                # [sent_at, acknowledged, region, seq, acknowledged_at]
                "canaries": [
                    [round(c.sent_at, 3), int(c.acked), c.region, c.seq, _round(c.acked_at)]
                    for c in self.canaries
                ],
            },
        }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def run_drill(
    topology: Topology,
    factory: ClientFactory,
    params: DrillParams,
    *,
    faults: FaultInjector | None = None,
    say: Callable[[str], None] = log.info,
) -> dict[str, Any]:
    """Run one drill end to end and return its result document (not yet stored)."""
    return Drill(topology, factory, params, faults=faults, say=say).run()


SUMMARY_FIELDS = (
    "drill_id",
    "scenario",
    "source",
    "target",
    "verdict",
    "verdict_reason",
    "failed_criteria",
    "rto_seconds",
    "rpo_seconds",
    "lost_objects",
    "lost_after_failback",
    "failed_requests",
    "parity",
    "objectives",
    "detection",
    "steps",
    "duration_seconds",
    "report",
    "reports",
)


def summary(document: Mapping[str, Any]) -> dict[str, Any]:
    """The small part of the document: CLI `--json`, XCom, the demo's table."""
    return {k: document.get(k) for k in SUMMARY_FIELDS if k in document}


def publish(
    topology: Topology,
    factory: ClientFactory,
    document: dict[str, Any],
    *,
    local_dir: str | os.PathLike[str] | None = None,
    history: int = 20,
) -> dict[str, Any]:
    """Render the report (with the trend across earlier drills), store it in both regions'
    ops buckets, and write it under `local_dir` when given. Returns the document with
    `reports` (region -> s3 URI of the HTML page) and `report` (the local HTML path) set."""
    from pathlib import Path

    from mldr import reports
    from mldr.drill.report import render_html

    try:
        earlier = [r.document for r in reports.latest_reports(factory, topology, REPORT_KIND, limit=history)]
    except MldrError as exc:
        log.warning("earlier drill reports not readable, the trend shows this drill only: %s", exc)
        earlier = []
    name = reports.report_name(f"{document['scenario']}-{_short(document['drill_id'])}")
    html_key = reports.report_key(REPORT_KIND, name, "html")
    document = {
        **document,
        "report_name": name,
        "reports": {r: f"s3://{topology.region(r).ops_bucket}/{html_key}" for r in topology.region_names},
    }
    html_path = Path(local_dir) / f"{name}.html" if local_dir is not None else None
    if html_path is not None:
        document["report"] = str(html_path)
    page = render_html(document, earlier)
    stored = reports.store_report(
        factory, topology, kind=REPORT_KIND, name=name, document=document, html=page
    )
    document["reports"] = {region: reports.html_uri(uri) for region, uri in stored.items()}
    if html_path is not None:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(page)
        html_path.with_suffix(".json").write_text(_json(document))
    return document


def _short(drill_id: str) -> str:
    """The random tail of a CLI drill id, or a short digest of a DAG-run-derived one."""
    import hashlib
    import re

    tail = drill_id[-6:]
    return tail if re.fullmatch(r"[0-9a-f]{6}", tail) else hashlib.sha256(drill_id.encode()).hexdigest()[:6]


def _json(document: Mapping[str, Any]) -> str:
    import json

    return json.dumps(document, indent=2, default=str)


__all__ = [
    "Drill",
    "DrillInProgress",
    "DrillParams",
    "Scenario",
    "publish",
    "recover",
    "run_drill",
    "summary",
]
