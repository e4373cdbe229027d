"""Approval against the sandbox: a stale approval does not fence, the approver is who responded,
a topology can require approval whatever the trigger params say (issue 14 item 8)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.errors import FailoverPreconditionFailed
from mldr.runbooks import failback, failover
from mldr.runbooks.engine import Context, OperationStatus, OperationStore, step_name
from mldr.runbooks.operations import execute, open_operation
from mldr.runbooks.shared_steps import approval
from mldr.sandbox.manager import Sandbox, SandboxState
from mldr.topology import TOPOLOGY_ENV, Topology
from tests.integration import test_failover as base
from tests.integration.test_failover import (
    crashed_run,
    dns_answer,
    lease,
    params,
    run,
    snapshot,
    wait_replicated,
    write,
)

# The failover tests' fixtures: the sandbox's topology and clients, each test on the primary.
topology, factory, on_primary = base.topology, base.factory, base.on_primary

pytestmark = pytest.mark.sandbox


def _fenced(factory: ClientFactory, topology: Topology, region: str) -> list[str]:
    store = AwsCloud(factory).objects(region)
    return [d.buckets[region] for d in topology.datasets if store.is_fenced(d.buckets[region])]


def _run_approved(
    topology: Topology, factory: ClientFactory, kind: str, target: str, meanwhile: Callable[[], None]
) -> tuple[Context, pytest.ExceptionInfo[FailoverPreconditionFailed]]:
    """Run with approval; while the approver reads the preflight, `meanwhile` changes the world."""
    asks = dataclasses.replace(params(kind, target), require_approval=True)
    ctx = open_operation(topology, AwsCloud(factory), asks)

    def approve(c: Context) -> bool:
        meanwhile()
        c.approver = "approver-on-call"
        return True

    with pytest.raises(FailoverPreconditionFailed) as refused:
        execute(ctx, approve=approve)
    return ctx, refused


def test_failover_after_a_stale_approval_is_refused_and_changes_nothing(
    topology: Topology,
    factory: ClientFactory,
    sandbox: Sandbox,
    sandbox_state: SandboxState,
    on_primary: None,
) -> None:
    primary, secondary = topology.primary_region, topology.secondary_region
    written = write(factory, topology, primary, "stale-approval", 6)
    wait_replicated(factory, topology, written, secondary)
    before = {region: snapshot(factory, topology, region) for region in topology.region_names}
    control = AwsCloud(factory).control()

    # 1. Another operation ran while the approval waited: the token is not preflight's any more.
    def another_operation_ran() -> None:
        held = control.read_lease()
        moved = dataclasses.replace(held, fencing_token=held.fencing_token + 1)
        control.compare_and_set(expected=held, lease=moved)

    ctx, refused = _run_approved(topology, factory, "failover", secondary, another_operation_ran)
    assert "fencing token moved" in str(refused.value) and "Nothing was changed" in str(refused.value)
    moved = lease(factory)
    assert (moved.active_region, moved.operation) == (primary, None)
    record = OperationStore(control).load(ctx.record.id)
    assert record is not None and record.status is OperationStatus.FAILED
    assert record.steps[step_name(failover.fence)].status.value == "failed"

    # 2. The target stopped answering while the approval waited.
    try:
        ctx, refused = _run_approved(
            topology, factory, "failover", secondary, lambda: sandbox.region_outage(secondary)
        )
    finally:
        sandbox.heal(secondary)
    assert "the target is no longer healthy" in str(refused.value), refused.value
    assert lease(factory) == moved, "a refused fence takes no lease"

    assert _fenced(factory, topology, primary) == []
    assert dns_answer(sandbox_state) == primary
    after = {region: snapshot(factory, topology, region) for region in topology.region_names}
    assert {r: len(s) for r, s in after.items()} == {r: len(s) for r, s in before.items()}
    assert after == before, "objects and checksums unchanged in both regions"


def test_failback_after_a_stale_approval_is_refused_and_changes_nothing(
    topology: Topology,
    factory: ClientFactory,
    sandbox: Sandbox,
    sandbox_state: SandboxState,
    on_primary: None,
) -> None:
    primary, secondary = topology.primary_region, topology.secondary_region
    assert run(topology, factory, "failover", secondary).status is OperationStatus.COMPLETED
    written = write(factory, topology, secondary, "stale-failback-approval", 6)
    wait_replicated(factory, topology, written, primary)
    held = lease(factory)
    before = snapshot(factory, topology, secondary)

    try:
        _, refused = _run_approved(
            topology, factory, "failback", primary, lambda: sandbox.region_outage(primary)
        )
    finally:
        sandbox.heal(primary)
    assert "the target is no longer healthy" in str(refused.value), refused.value
    assert lease(factory) == held, "nothing changed: no lease, the primary still fenced"
    assert _fenced(factory, topology, primary) == [d.buckets[primary] for d in topology.datasets]
    assert _fenced(factory, topology, secondary) == []
    assert dns_answer(sandbox_state) == secondary
    after = snapshot(factory, topology, secondary)
    assert (len(after), after) == (len(before), before)

    done = run(topology, factory, "failback", primary)
    assert done.status is OperationStatus.COMPLETED, done.message
    assert snapshot(factory, topology, primary) == snapshot(factory, topology, secondary)


def test_the_recorded_approver_is_who_approved_not_who_asked(
    topology: Topology,
    factory: ClientFactory,
    sandbox_state: SandboxState,
    on_primary: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """alice starts a failover that stops after its preflight; bob resumes it with --yes."""
    from mldr.cli import main

    secondary = topology.secondary_region
    before = snapshot(factory, topology, topology.primary_region)
    started = crashed_run(topology, factory, "failover", secondary, step_name(failover.preflight))
    store = OperationStore(AwsCloud(factory).control())
    record = store.load(started)
    assert record is not None and record.params.requested_by == "pytest"
    monkeypatch.setenv("MLDR_OPERATOR", "bob")
    code = main(
        [
            "failover",
            "--to",
            secondary,
            "--mode",
            "planned",
            "--reason",
            "integration test of the runbook",
            "--yes",
            "--resume",
            started,
        ]
    )
    assert code == 0
    record = store.load(started)
    assert record is not None and record.status is OperationStatus.COMPLETED
    assert record.result(approval).approved_by == "bob"
    assert record.params.requested_by == "pytest"
    assert snapshot(factory, topology, secondary) == before
    assert dns_answer(sandbox_state) == secondary


@pytest.fixture
def approval_required(topology: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Topology:
    """The sandbox's topology with `approval: {required: true}`, for this process."""
    document: dict[str, Any] = json.loads(topology.to_json())
    document["approval"] = {"required": True}
    path = tmp_path / "topology.json"
    path.write_text(json.dumps(document))
    monkeypatch.setenv(TOPOLOGY_ENV, str(path))
    from mldr.topology import load_topology

    return load_topology(use_airflow=False)


def test_a_topology_requiring_approval_refuses_a_run_without_it(
    approval_required: Topology,
    factory: ClientFactory,
    sandbox_state: SandboxState,
    on_primary: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mldr.airflow.runbook_tasks import run_step
    from mldr.cli import main
    from mldr.errors import ConfigurationError

    topology = approval_required
    primary, secondary = topology.primary_region, topology.secondary_region
    before = lease(factory)
    snap = snapshot(factory, topology, primary)
    base = ["--reason", "approval is required here", "--yes"]
    assert main(["failover", "--to", secondary, "--mode", "planned", *base]) == 2
    assert "requires approval" in capsys.readouterr().err
    assert main(["failback", *base]) == 2
    # The DAG's tasks: require_approval=false is refused at the first task, preflight.
    conf = {"target_region": secondary, "reason": "approval is required here", "require_approval": False}
    with pytest.raises(ConfigurationError, match=r"approval\.required: true"):
        run_step(failover.RUNBOOK, failover.preflight, params=conf, run_id="manual__approval-test")
    with pytest.raises(ConfigurationError, match=r"approval\.required: true"):
        run_step(failback.RUNBOOK, failback.failback_preflight, params=conf, run_id="manual__approval-test")
    # A dry run changes nothing: allowed.
    assert main(["failover", "--to", secondary, "--mode", "planned", *base, "--dry-run"]) == 0
    after = lease(factory)
    assert (after.active_region, after.fencing_token, after.operation) == (
        primary,
        before.fencing_token,
        None,
    )
    assert snapshot(factory, topology, primary) == snap
    assert dns_answer(sandbox_state) == primary
