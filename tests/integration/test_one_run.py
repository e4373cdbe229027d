"""One run per operation: a resumed run takes the operation over, and the run it replaced - a
zombie DAG task, a CLI presumed dead - is refused at its next record save or lease change
instead of overwriting the newer run's progress or releasing its lease. Nothing is lost:
objects and checksums are counted before and after."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from mldr.actions import fencing
from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.errors import FencingConflict, StaleRecord
from mldr.runbooks import failover
from mldr.runbooks.engine import OperationStatus, OperationStore
from mldr.runbooks.operations import execute, open_operation, run_one
from mldr.sandbox.manager import SandboxState
from mldr.topology import Topology
from tests.integration import test_failover as base
from tests.integration.test_failover import dns_answer, lease, params, run, snapshot, wait_replicated, write

# The failover tests' fixtures: the sandbox's topology, its clients, the primary active around each test.
topology, factory, on_primary = base.topology, base.factory, base.on_primary

pytestmark = pytest.mark.sandbox


def test_a_resumed_run_takes_over_and_the_older_run_is_refused(
    topology: Topology, factory: ClientFactory, sandbox_state: SandboxState, on_primary: None
) -> None:
    primary, secondary = topology.primary_region, topology.secondary_region
    written = write(factory, topology, primary, "one-run", 9)
    wait_replicated(factory, topology, written, secondary)
    before = snapshot(factory, topology, primary)
    token = lease(factory).fencing_token

    # The older run: a planned failover that got as far as the drain and then went quiet.
    older = open_operation(topology, AwsCloud(factory), params("failover", secondary))
    for step in (failover.preflight, failover.fence, failover.drain):
        run_one(older, step)
    # The operator resumes it from the CLI: this run claims the operation.
    newer = open_operation(
        topology,
        AwsCloud.from_environment(topology),
        params("failover", secondary),
        operation_id=older.record.id,
        resume=True,
    )
    held = lease(factory)
    assert held.operation is not None and held.operation.run == newer.run.id != older.run.id

    # The older run wakes up: its next step is refused before it changes anything ...
    with pytest.raises(StaleRecord, match=f"saved by run {newer.run.id}"):
        run_one(older, failover.scale)
    # ... and so is any lease change or release it tries, naming the run that holds it now.
    with (
        fencing.acting_as(older.run),
        pytest.raises(FencingConflict, match=f"taken over by run {newer.run.id}"),
    ):
        fencing.update(older.control, older.record.id, active_region=secondary)
    with (
        fencing.acting_as(older.run),
        pytest.raises(FencingConflict, match=f"taken over by run {newer.run.id}"),
    ):
        fencing.release(older.control, older.record.id)
    assert lease(factory) == held, "the older run changed the lease"
    assert dns_answer(sandbox_state) == primary

    # The newer run finishes the failover; the older one still cannot write its record over it.
    done = execute(newer)
    assert done.status is OperationStatus.COMPLETED, done.message
    with pytest.raises(StaleRecord):
        run_one(older, failover.switch)
    stored = OperationStore(AwsCloud(factory).control()).load(older.record.id)
    assert stored is not None and stored.status is OperationStatus.COMPLETED
    assert stored.steps["scale"].status.value == "done" and stored.version == done.version
    after = lease(factory)
    assert (after.active_region, after.operation, after.fencing_token) == (secondary, None, token + 1)
    assert dns_answer(sandbox_state) == secondary
    assert snapshot(factory, topology, secondary) == before, "objects or checksums changed"
    back = run(topology, factory, "failback", primary)
    assert back.status is OperationStatus.COMPLETED, back.message
    assert snapshot(factory, topology, primary) == before


def test_a_cli_killed_after_a_step_reads_stalled_with_the_command_that_resumes_it(
    topology: Topology,
    factory: ClientFactory,
    sandbox_state: SandboxState,
    on_primary: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 16 item 6: a run that died never leaves its operation `running` forever. A CLI
    failover SIGKILLed after its drain (lease held, writes fenced) stops heartbeating; status,
    history and the dashboard's data then name it stalled with the command that resumes it, and
    that command, run as shown, finishes the failover with nothing lost."""
    from mldr.airflow.dashboard.data import operation_view
    from mldr.cli import main
    from mldr.runbooks.engine import KILL_AFTER_ENV
    from mldr.runbooks.heartbeat import HEARTBEAT_ENV

    primary, secondary = topology.primary_region, topology.secondary_region
    written = write(factory, topology, primary, "killed-cli", 6)
    wait_replicated(factory, topology, written, secondary)
    before = snapshot(factory, topology, primary)
    token = lease(factory).fencing_token

    reason = "killed CLI test (INC-16)"
    env = {**os.environ, KILL_AFTER_ENV: "drain", HEARTBEAT_ENV: "0.2"}
    command = ["failover", "--to", secondary, "--mode", "planned", "--reason", reason, "--yes"]
    killed = subprocess.run(
        [sys.executable, "-m", "mldr.cli", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    held = lease(factory).operation
    assert held is not None and held.step == "drain", "the killed run held the lease at its drain"

    def status() -> dict[str, Any]:
        capsys.readouterr()
        assert main(["status", "--json"]) == 0
        return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]

    # Stalled once it has missed 6 heartbeats of 0.2 s; polled, so a busy machine only waits longer.
    deadline = time.monotonic() + 60
    while not (seen := status())["stalled"] and time.monotonic() < deadline:
        time.sleep(0.3)
    [dead] = seen["stalled"]
    resume = f"mldr failover --to {secondary} --mode planned --reason '{reason}' --yes --resume {held.id}"
    assert (dead["operation"], dead["resume"]) == (held.id, resume)
    assert dead["run"] == held.run, "the run named is the one that held the lease"
    assert main(["history", "--json"]) == 0
    [record] = [r for r in json.loads(capsys.readouterr().out) if r["id"] == held.id]
    assert record["status"] == "running" and record["stalled"]["resume"] == resume
    assert main(["history"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if held.id in ln)
    assert " stalled " in line, line
    stored = OperationStore(AwsCloud(factory).control()).history(limit=50)
    view = operation_view(next(r for r in stored if r.id == held.id), topology)
    assert view.stalled is not None and f"`{resume}`" in view.stalled

    # The command as shown resumes it: the failover completes, the token went up once, nothing lost.
    capsys.readouterr()
    assert main(shlex.split(resume)[1:]) == 0, capsys.readouterr().err[-2000:]
    after = lease(factory)
    assert (after.active_region, after.operation, after.fencing_token) == (secondary, None, token + 1)
    assert dns_answer(sandbox_state) == secondary
    assert not status()["stalled"], "a finished operation is not stalled"
    assert snapshot(factory, topology, secondary) == before, "objects or checksums changed"
    back = run(topology, factory, "failback", primary)
    assert back.status is OperationStatus.COMPLETED, back.message
    assert snapshot(factory, topology, primary) == before
