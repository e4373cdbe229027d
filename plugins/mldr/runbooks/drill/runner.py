"""The drill itself: one run of the procedure, phase by phase, recorded as it goes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from mldr import http
from mldr.checks.replication_status import status_source
from mldr.cloud import Cloud
from mldr.errors import MldrError
from mldr.ml.golden import golden_set
from mldr.runbooks import failback, failover
from mldr.runbooks.drill import lock as drill_lock
from mldr.runbooks.drill import metrics
from mldr.runbooks.drill.document import drill_document
from mldr.runbooks.drill.faults import FaultInjector, fault_injector
from mldr.runbooks.drill.load import (
    CANARY_TIMEOUTS,
    CanaryWriter,
    InferenceLoad,
    LeaseFollower,
    canary_prefix,
    list_canary_keys,
    read_canaries,
)
from mldr.runbooks.drill.monitor import DetectionWindow, HealthMonitor, first_transition, health_monitor
from mldr.runbooks.drill.params import DrillParams, canary_dataset
from mldr.runbooks.drill.preflight import check_ready
from mldr.runbooks.drill.recover import (
    HEAL_TIMEOUT,
    cleanup_canaries,
    operation_params,
    recover,
    run_operation,
    wait_healthy,
)
from mldr.runbooks.drill.scenarios import Scenario
from mldr.runbooks.drill.state import DrillState, DrillStateStore, Phase
from mldr.runbooks.engine import OperationRecord
from mldr.runbooks.params import Mode
from mldr.topology import Topology

log = logging.getLogger(__name__)

QUIESCE_TIMEOUT = 20.0
WARMUP_TIMEOUT = 30.0
CHECK_TIMEOUT = 10.0  # replication lag is ~1 s; a canary missing after 10 s is missing


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


# --- the drill --------------------------------------------------------------------------------


class Drill:
    """One run of the drill; `run()` returns the result document (see `document()`)."""

    def __init__(
        self,
        topology: Topology,
        cloud: Cloud,
        params: DrillParams,
        *,
        faults: FaultInjector | None = None,
        say: Callable[[str], None] = log.info,
    ) -> None:
        self.topology = topology
        self.cloud = cloud
        self.params = params.validated(topology)
        self.scenario = self.params.scenario
        self.id = str(self.params.drill_id)
        self.source = topology.primary_region
        self.target = str(self.params.target_region)
        self._faults = faults
        self._say = say
        self.control = cloud.control()
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
        self.monitor: HealthMonitor = health_monitor(cloud, topology)
        self.load = InferenceLoad(
            topology.inference.client_url.rstrip("/") + "/predict",
            golden_set(),
            interval=self.params.request_interval,
            timeout=self.params.request_timeout,
        )
        self.writer = CanaryWriter(
            cloud=cloud,
            bucket_of=lambda region: self.dataset.buckets[region],
            key_prefix=self.prefix,
            drill_id=self.id,
            active_region=LeaseFollower(self.control, self.source),
            interval=self.params.canary_interval,
        )
        self.samples: list[metrics.RequestSample] = []
        self.canaries: list[metrics.CanaryWrite] = []
        self._lock: drill_lock.HeldLock | None = None

    @property
    def lock(self) -> drill_lock.HeldLock:
        if self._lock is None:
            raise MldrError("the drill lock is taken when the drill runs, which it has not")
        return self._lock

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
        self.lock.check()  # taken over (our heartbeat was late): stop changing things
        self.state.phase = phase
        for key, value in changes.items():
            setattr(self.state, key, value)
        self.drills.save(self.state)

    # -- the procedure -------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.t0 = time.time()
        # The lock first: while it is held no other drill, `--recover` or operator's failover or
        # failback starts (see `lock`), and everything below may assume the DR state is ours.
        self._lock = drill_lock.acquire(self.control, drill_id=self.id, say=self._say)
        try:
            recovered = recover(self.topology, self.cloud, faults=self._faults, say=self._say, lock=self.lock)
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
        finally:
            self.lock.release()
        return self.document()

    def preflight(self) -> None:
        p = self.params
        self.say(
            f"drill {self.id}: {self.scenario.value}, {self.source} -> {self.target}, "
            f"hold {p.hold_seconds:g}s, {'then fail back' if p.failback else 'no failback'}"
        )
        check_ready(self.topology, self.cloud, self.scenario, faults=self.faults, drill_id=self.id)
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
            # asking a store where it sends its requests makes its client, and sends nothing
            _ = self.cloud.objects(region, timeouts=CANARY_TIMEOUTS).endpoint
            _ = self.cloud.objects(region).endpoint
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
        statuses = status_source(self.topology, self.cloud) if self.topology.sandbox is not None else None
        missing: set[str] = set(acked)
        backlog = 0
        while time.monotonic() - started < QUIESCE_TIMEOUT:
            missing = acked - list_canary_keys(
                self.cloud, region=self.target, bucket=bucket, prefix=self.prefix
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
        fenced = record.result_if_done(failover.fence)
        self.mark("writes_stopped_at", fenced.fenced_at if fenced is not None else self.events["fault_at"])

    def _failover(self, mode: Mode) -> OperationRecord:
        reason = f"DR drill {self.id}: {self.scenario.value}"

        def opened(op_id: str) -> None:
            self.state.operations["failover"] = op_id
            self.drills.save(self.state)

        started = self.mark("failover_started_at")
        record = run_operation(
            self.topology,
            self.cloud,
            operation_params("failover", self.target, mode, reason, self.params.requested_by),
            lambda m: self.say(m.strip()),
            opened,
            drill_id=self.id,
            must_change=True,
        )
        self.records["failover"] = record
        self.durations["failover"] = round(time.time() - started, 3)
        self.mark("failover_done_at")
        switched = record.result_if_done(failover.switch)
        if switched is not None:
            self.mark("failover_switched_at", switched.switched_at)
        self.say(f"failover {record.id} completed in {self.durations['failover']:.1f}s")
        # Data loss is measured now, before the source comes back and replication catches up.
        self._wait_client_success(self.target, after=self.events["fault_at"])
        present = read_canaries(
            self.cloud, region=self.target, bucket=self.dataset.buckets[self.target], prefix=self.prefix
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
        waited = wait_healthy(self.topology, self.source)
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
        record = run_operation(
            self.topology,
            self.cloud,
            operation_params("failback", self.source, Mode.PLANNED, reason, self.params.requested_by),
            lambda m: self.say(m.strip()),
            opened,
            drill_id=self.id,
            must_change=True,
        )
        self.records["failback"] = record
        self.durations["failback"] = round(time.time() - started, 3)
        self.mark("failback_done_at")
        switched_back = record.result_if_done(failback.failback_switch)
        if switched_back is not None:
            self.mark("failback_switched_at", switched_back.switched_at)
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
            removed = cleanup_canaries(self.topology, self.cloud, self.id)
            self.notes.append(f"removed the drill's {removed} canary object version(s) from both regions")

    def _wait_canaries_everywhere(self) -> metrics.FailbackLoss:
        """Replication of the last canaries takes ~a second; wait for it (bounded) before judging."""
        deadline = time.monotonic() + CHECK_TIMEOUT
        while True:
            present = {
                region: read_canaries(
                    self.cloud, region=region, bucket=self.dataset.buckets[region], prefix=self.prefix
                )
                for region in self.topology.region_names
            }
            loss = metrics.lost_after_failback(self.canaries, present)
            if loss.lost == 0 or time.monotonic() > deadline:
                return loss
            time.sleep(0.5)

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
        if self.lock.lost:
            self.say(f"not reverting: {self.lock.lost}, which reverts what this drill left")
            return
        try:
            self.drills.save(self.state)
            actions = recover(self.topology, self.cloud, faults=self._faults, say=self._say, lock=self.lock)
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
        return drill_document(self)


def run_drill(
    topology: Topology,
    cloud: Cloud,
    params: DrillParams,
    *,
    faults: FaultInjector | None = None,
    say: Callable[[str], None] = log.info,
) -> dict[str, Any]:
    """Run one drill end to end and return its result document (not yet stored)."""
    if not params.scenario.fails_over:
        from mldr.runbooks.drill.corruption import CorruptionDrill

        return CorruptionDrill(topology, cloud, params, say=say).run()
    return Drill(topology, cloud, params, faults=faults, say=say).run()
