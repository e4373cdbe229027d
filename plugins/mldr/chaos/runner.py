"""Run fault schedules against a running sandbox and check the invariants.

Operations run as an operator and Airflow would run them: a CLI call is a process of its own
(`mldr failover ... --yes --json`, killed after a step by MLDR_CRASH_AFTER_STEP); a DAG run calls
its steps one by one in this process, each with a fresh context as each Airflow task has, and
"dies" by not running the steps after its crash point. Faults are the sandbox's own: a region's
processes stopped (outage) and resumed (heal), replication paused (a partition between the
regions, both healthy), the global server stopped (a stalled control store).

After the events, the schedule is wound down the way an on-call engineer would: faults healed,
the operation holding the lease resumed (or aborted), the service failed back to the primary,
replication given time to deliver. Then the final invariants are checked.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mldr import http
from mldr.chaos.invariants import LeaseSampler, Violation, lost_writes, quiescent_violations
from mldr.chaos.schedule import Event, Schedule
from mldr.chaos.writers import Writers
from mldr.cloud import Cloud
from mldr.errors import AlreadyDone, MldrError
from mldr.runbooks.engine import CRASH_AFTER_ENV, OperationStatus, OperationStore, step_name
from mldr.runbooks.operations import finish, open_operation, run_one
from mldr.runbooks.params import Mode, OperationParams
from mldr.sandbox.manager import Sandbox
from mldr.topology import Topology

log = logging.getLogger(__name__)

#: A CLI call that takes longer than this is stuck: the tester reports it as a violation.
CLI_TIMEOUT_SECONDS = 240
#: How long the wind-down waits for replication to deliver every acknowledged write.
CONVERGE_SECONDS = 60.0
#: Steps after which an operation has changed something (a run left `running` after one of them,
#: without the lease, cannot be resumed safely by anyone).
_UNCHANGING = {"preflight", "failback_preflight", "approval"}


def _mldr() -> list[str]:
    script = Path(sys.executable).with_name("mldr")
    if script.exists():
        return [str(script)]
    found = shutil.which("mldr")
    return [found] if found else [sys.executable, "-c", "from mldr.cli import run; run()"]


@dataclass
class ScheduleResult:
    schedule: Schedule
    outcomes: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    seconds: float = 0.0

    def public(self) -> dict[str, Any]:
        return {
            **self.schedule.public(),
            "outcomes": self.outcomes,
            "violations": [v.public() for v in self.violations],
            "seconds": round(self.seconds, 1),
        }


class ChaosRunner:
    def __init__(
        self,
        sandbox: Sandbox,
        topology: Topology,
        cloud: Cloud,
        *,
        say: Callable[[str], None] = lambda _m: None,
    ) -> None:
        self.sandbox, self.topology, self.cloud, self.say = sandbox, topology, cloud, say
        self.primary = topology.primary_region
        self.secondary = next(r for r in topology.region_names if r != self.primary)
        self.operations = OperationStore(cloud.control())
        self._abort_available: bool | None = None

    # --- the sandbox's faults ---------------------------------------------------------------

    def _global_pid(self) -> int:
        return self.sandbox.running_state().processes["moto-global"].pid

    def _resolve(self) -> str | None:
        try:
            answer = http.get(f"{self.sandbox.running_state().edge_url}/resolve", timeout=1.0).json()[
                "answer"
            ]
        except (MldrError, OSError, ValueError, KeyError):
            return None
        return str(answer) if answer else None

    # --- operations -------------------------------------------------------------------------

    def _cli(
        self, args: list[str], *, crash_after: str | None = None
    ) -> tuple[int, dict[str, Any] | None, str]:
        env = {k: v for k, v in os.environ.items() if k != CRASH_AFTER_ENV}
        if crash_after:
            env[CRASH_AFTER_ENV] = crash_after
        try:
            proc = subprocess.run(
                [*_mldr(), *args], env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS
            )
        except subprocess.TimeoutExpired:
            return -1, None, f"stuck: no answer in {CLI_TIMEOUT_SECONDS}s"
        document = None
        try:
            document = json.loads(proc.stdout) if proc.stdout.strip() else None
        except ValueError:
            document = None
        last = (proc.stderr.strip().splitlines() or [""])[-1]
        return proc.returncode, document, last

    def _params(self, kind: str, args: dict[str, Any]) -> OperationParams:
        return OperationParams(
            kind=kind,
            target_region=args.get("to", self.primary),
            mode=Mode(args.get("mode", "planned")),
            reason=f"chaos schedule: {kind}",
            requested_by="chaos-dag",
            dry_run=bool(args.get("dry_run")),
            require_approval=False,
        )

    def _dag(self, params: OperationParams, operation_id: str, crash_after: str | None) -> str:
        """A DAG run: each step a task with its own context; none after `crash_after`."""
        for _ in range(64):
            ctx = open_operation(self.topology, self.cloud, params, operation_id=operation_id)
            steps = ctx.runbook.steps
            done = {n for n, s in ctx.record.steps.items() if s.status.value == "done"}
            pending = [s for s in steps if step_name(s) not in done]
            if not pending or ctx.record.status in (OperationStatus.COMPLETED, OperationStatus.NOOP):
                return f"dag {operation_id}: {ctx.record.status.value}"
            step = pending[0]
            try:
                run_one(ctx, step)
            except AlreadyDone as exc:
                return f"dag {operation_id}: nothing to do ({exc})"
            except MldrError as exc:
                return f"dag {operation_id}: task {step_name(step)} failed: {exc}"
            if step is ctx.runbook.preflight and params.dry_run:
                finish(ctx, OperationStatus.PLANNED, "dry run")
                return f"dag {operation_id}: planned (dry run)"
            if crash_after == step_name(step):
                return f"dag {operation_id}: worker died after {crash_after}"
        return f"dag {operation_id}: too many tasks"

    def _operation(self, kind: str, args: dict[str, Any]) -> str:
        crash_after = args.get("crash_after")
        if args.get("caller") == "dag":
            run_id = f"{kind}-chaos-{uuid.uuid4().hex[:8]}"
            try:
                return self._dag(self._params(kind, args), run_id, crash_after)
            except MldrError as exc:
                return f"dag refused: {exc}"
        cli = [kind, "--reason", f"chaos schedule: {kind}", "--yes", "--json"]
        if kind == "failover":
            cli += ["--to", args["to"], "--mode", args["mode"]]
        if args.get("dry_run"):
            cli.append("--dry-run")
        code, document, last = self._cli(cli, crash_after=crash_after)
        status = (document or {}).get("status", "")
        return f"cli exit {code} {status} {last}".strip()

    def _unfinished(self) -> tuple[str, dict[str, Any]] | None:
        """The operation to resume: the lease holder's, else the newest running record."""
        try:
            lease = self.cloud.control().read_lease()
        except MldrError:
            return None
        wanted = lease.operation.id if lease.operation else None
        for record in self.operations.history(limit=200):
            if record.id == wanted or (wanted is None and record.status is OperationStatus.RUNNING):
                return record.id, {
                    "kind": record.kind,
                    "to": record.params.target_region,
                    "mode": record.params.mode.value,
                }
        return None

    def _resume(self, caller: str) -> str:
        found = self._unfinished()
        if found is None:
            return "nothing to resume"
        operation_id, params = found
        kind = params["kind"]
        if caller == "dag":
            try:
                return self._dag(self._params(kind, params), operation_id, None)
            except MldrError as exc:
                return f"dag resume refused: {exc}"
        cli = [
            kind,
            "--reason",
            f"chaos schedule: resume {kind}",
            "--yes",
            "--json",
            "--resume",
            operation_id,
        ]
        if kind == "failover":
            cli += ["--to", params["to"], "--mode", params["mode"]]
        code, document, last = self._cli(cli)
        return f"resume {operation_id}: exit {code} {(document or {}).get('status', '')} {last}".strip()

    def _abort(self) -> str:
        if self._abort_available is None:
            code, _, _ = self._cli(["abort", "--help"])
            self._abort_available = code == 0
        if not self._abort_available:
            return "skipped: this mldr has no abort command"
        code, document, last = self._cli(["abort", "--reason", "chaos schedule: abort", "--yes", "--json"])
        return f"abort: exit {code} {(document or {}).get('status', '')} {last}".strip()

    def _concurrent(self, kind: str) -> str:
        args = {"to": self.secondary, "mode": "planned"} if kind == "failover" else {}
        outcomes: list[str] = []
        threads = [
            threading.Thread(target=lambda: outcomes.append(self._operation(kind, {**args, "caller": "cli"})))
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return " | ".join(outcomes)

    # --- one schedule -----------------------------------------------------------------------

    def run(self, schedule: Schedule) -> ScheduleResult:
        result = ScheduleResult(schedule)
        started = time.monotonic()
        started_epoch = time.time()
        prefix = f"chaos/{schedule.seed}-{schedule.index}-{uuid.uuid4().hex[:6]}"
        sampler = LeaseSampler(self.cloud)
        sampler.sample()
        sampler.start()
        writers = Writers(
            self.cloud,
            self.topology,
            prefix=prefix,
            resolve=self._resolve,
            active_region=sampler.active_region,
        )
        writers.start()
        state = _FaultState(lag_checked=set(self.topology.region_names))
        try:
            for number, event in enumerate(schedule.events, 1):
                label = f"event {number} ({event.describe()})"
                outcome = self._apply(event, state)
                result.outcomes.append(f"{event.describe()} -> {outcome}")
                self.say(f"  {number}/{len(schedule.events)} {event.describe()}: {outcome}")
                if not state.stalled:
                    lease = sampler.sample()
                    if lease is not None and lease.operation is None:
                        result.violations += quiescent_violations(
                            self.cloud, self.topology, lease, lag_checked=state.lag_checked, after=label
                        )
            for outcome in self._wind_down(state):
                result.outcomes.append(outcome)
                self.say(f"  {outcome}")
        finally:
            acked = writers.stop()
            sampler.stop()
            self._heal_everything(state)  # also when the tester itself failed: leave no fault behind
        result.violations += self._final_checks(sampler, acked, prefix, started_epoch)
        result.seconds = time.monotonic() - started
        return result

    def _apply(self, event: Event, state: _FaultState) -> str:
        a = event.args
        if event.kind in ("failover", "failback"):
            return self._operation(event.kind, a)
        if event.kind == "resume":
            return self._resume(a.get("caller", "cli"))
        if event.kind == "abort":
            return self._abort()
        if event.kind == "concurrent":
            return self._concurrent(a["kind"])
        if event.kind == "outage":
            self.sandbox.region_outage(a["region"])
            state.down.add(a["region"])
            state.lag_checked.discard(a["region"])
            return "region stopped"
        if event.kind == "heal":
            self.sandbox.heal(a["region"])
            state.down.discard(a["region"])
            state.lag_checked.discard(a["region"])
            return "region resumed"
        if event.kind in ("partition", "unpartition"):
            self.sandbox.replication("pause" if event.kind == "partition" else "resume")
            return "replication paused" if event.kind == "partition" else "replication resumed"
        if event.kind in ("stall_control", "unstall_control"):
            stall = event.kind == "stall_control"
            os.kill(self._global_pid(), signal.SIGSTOP if stall else signal.SIGCONT)
            state.stalled = stall
            return "global server stopped" if stall else "global server resumed"
        if event.kind == "lag":
            code, _, last = self._cli(["lag", "--json"])
            state.lag_checked |= {r for r in self.topology.region_names if r not in state.down}
            return f"lag exit {code} {last}".strip()
        if event.kind == "writes":
            time.sleep(float(a.get("seconds", 1)))
            return "writes only"
        raise ValueError(f"unknown chaos event {event.kind!r}")

    def _heal_everything(self, state: _FaultState) -> None:
        if state.stalled:
            os.kill(self._global_pid(), signal.SIGCONT)
            state.stalled = False
        for region in sorted(state.down):
            self.sandbox.heal(region)
        state.down.clear()
        self.sandbox.replication("resume")

    def _wind_down(self, state: _FaultState) -> list[str]:
        """Heal everything, finish or abort what holds the lease, fail back to the primary."""
        out = []
        self._heal_everything(state)
        time.sleep(2.0)  # the edge's probes see the healed region again
        for _ in range(3):
            lease = self.cloud.control().read_lease()
            if lease.operation is None:
                break
            outcome = self._resume("cli")
            out.append(f"wind-down: {outcome}")
            if self.cloud.control().read_lease().operation is not None:
                out.append(f"wind-down: {self._abort()}")
        code, _, last = self._cli(["lag", "--json"])
        state.lag_checked = set(self.topology.region_names)
        out.append(f"wind-down: lag exit {code}")
        lease = self.cloud.control().read_lease()
        if lease.active_region != self.primary or lease.fenced_regions:
            code, document, last = self._cli(
                ["failback", "--reason", "chaos schedule: wind-down failback", "--yes", "--json"]
            )
            out.append(f"wind-down: failback exit {code} {(document or {}).get('status', '')} {last}".strip())
        return out

    def _final_checks(
        self, sampler: LeaseSampler, acked: list[Any], prefix: str, started_epoch: float
    ) -> list[Violation]:
        found = [Violation("token only increases", d, "during") for d in sampler.decreases]
        lease = self.cloud.control().read_lease()
        if lease.operation is not None or lease.active_region != self.primary:
            found.append(
                Violation(
                    "a way out",
                    f"after healing and failing back, the lease is {lease.public()}: the primary is not "
                    "active with the lease free",
                    "end",
                )
            )
        records = [r for r in self.operations.history(limit=1000) if r.created_epoch >= started_epoch]
        for record in records:
            changed = [
                n for n, s in record.steps.items() if s.status.value == "done" and n not in _UNCHANGING
            ]
            if (
                record.status is OperationStatus.RUNNING
                and changed
                and record.id != (lease.operation.id if lease.operation else None)
            ):
                found.append(
                    Violation(
                        "resumable or aborted",
                        f"operation {record.id} is left running after {changed[-1]} without the lease",
                        "end",
                    )
                )
        if lease.operation is None:
            found += quiescent_violations(
                self.cloud, self.topology, lease, lag_checked=self.topology.region_names, after="end"
            )
        found += self._converged_losses(acked, prefix, [r.public() for r in records])
        return found

    def _converged_losses(
        self, acked: list[Any], prefix: str, records: list[dict[str, Any]]
    ) -> list[Violation]:
        """Lost writes, once replication had time to deliver (checked until stable or timed out)."""
        deadline = time.monotonic() + CONVERGE_SECONDS
        while True:
            losses = lost_writes(self.cloud, self.topology, acked, prefix=prefix, records=records)
            if not losses or time.monotonic() > deadline:
                return losses
            time.sleep(2.0)


@dataclass
class _FaultState:
    down: set[str] = field(default_factory=set)
    stalled: bool = False
    #: Regions the lag check has seen answering since they last came back from an outage.
    lag_checked: set[str] = field(default_factory=set)
