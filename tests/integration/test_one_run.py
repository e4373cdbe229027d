"""One run per operation: a resumed run takes the operation over, and the run it replaced - a
zombie DAG task, a CLI presumed dead - is refused at its next record save or lease change
instead of overwriting the newer run's progress or releasing its lease. Nothing is lost:
objects and checksums are counted before and after."""

from __future__ import annotations

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
