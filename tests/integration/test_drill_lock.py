"""The drill lock in the control store (issue 14, items 7 and 10), against the sandbox's table:
one drill at a time wherever it runs, a heartbeat, a stale lock taken over saying so, and an
operator's failover or failback refused while a drill holds it. No drill runs here (see
tests/e2e/test_drill.py for drills that meet each other)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.cloud.control import ControlStore
from mldr.errors import DrillInProgress
from mldr.runbooks.drill import lock as drill_lock
from mldr.runbooks.drill.lock import HOST_ENV, LOCK_KEY, read_lock
from mldr.runbooks.engine import OperationStore
from mldr.runbooks.operations import open_operation
from mldr.runbooks.params import Mode, OperationParams
from mldr.sandbox.manager import Sandbox
from mldr.topology import Topology, load_topology

pytestmark = pytest.mark.sandbox


@pytest.fixture
def topology(sandbox: Sandbox) -> Topology:
    return load_topology(use_airflow=False)


@pytest.fixture
def cloud(topology: Topology) -> AwsCloud:
    return AwsCloud(ClientFactory.from_environment(topology))


@pytest.fixture
def control(cloud: AwsCloud) -> Iterator[ControlStore]:
    """The control store with no drill lock held before and after the test."""
    store = cloud.control()
    before = read_lock(store)
    assert before is None or not before.live(), f"a drill lock is held: {before}"
    yield store
    left = read_lock(store)
    if left is not None and left.held:  # a failed test's lock: release it for the next test
        store.put_record(LOCK_KEY, {**left.record(), "held": 0})


def on_host(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    monkeypatch.setenv(HOST_ENV, host)


def test_a_second_drill_elsewhere_is_refused_and_a_stale_lock_is_taken_over_saying_so(
    control: ControlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_host(monkeypatch, "host-a")
    first = drill_lock.acquire(control, drill_id="drill-a")
    try:
        held = read_lock(control)
        assert held is not None and (held.drill_id, held.host, held.pid, held.held) == (
            "drill-a",
            "host-a",
            os.getpid(),
            True,
        )

        on_host(monkeypatch, "host-b")
        with pytest.raises(DrillInProgress) as refused:
            drill_lock.acquire(control, drill_id="drill-b")
        message = str(refused.value)
        for part in (
            "drill drill-a",
            f"pid {os.getpid()} on host-a",
            f"started {held.started_at}",
            "heartbeat",
        ):
            assert part in message, message
        assert read_lock(control) == held, "the refusal changed nothing"

        # the running drill refreshes its heartbeat (its thread does this every few seconds)
        first.beat()
        beaten = read_lock(control)
        assert beaten is not None and beaten.version == held.version + 1
        assert beaten.heartbeat_at >= held.heartbeat_at and beaten.drill_id == "drill-a"

        # its host dies: no heartbeat for longer than the bound -> stale, taken over, said so
        control.put_record(LOCK_KEY, {**beaten.record(), "heartbeat_at": "2026-01-01T00:00:00.000Z"})
        said: list[str] = []
        second = drill_lock.acquire(control, drill_id="drill-b", say=said.append)
        try:
            assert len(said) == 1 and said[0].startswith("taking over the stale lock of drill drill-a"), said
            assert "last heartbeat is" in said[0] and "stale after 30s" in said[0]
            taken = read_lock(control)
            assert taken is not None and (taken.drill_id, taken.host) == ("drill-b", "host-b")
            # the old holder, back from the dead, notices at its next beat and stops
            first.beat()
            assert read_lock(control) == taken, "the old holder's heartbeat wrote nothing"
            with pytest.raises(DrillInProgress, match="taken over by drill drill-b"):
                first.check()
        finally:
            second.release()
    finally:
        first.release()
    released = read_lock(control)
    assert released is not None and not released.held and released.drill_id == "drill-b"


def test_a_lock_of_a_dead_process_on_this_host_is_taken_over_at_once(
    control: ControlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_host(monkeypatch, "host-a")
    holder = drill_lock.acquire(control, drill_id="drill-a")
    holder.release()
    gone = 2**22 + 7  # above pid_max on most systems: no such process
    record = read_lock(control)
    assert record is not None
    control.put_record(LOCK_KEY, {**record.record(), "held": 1, "pid": gone})
    said: list[str] = []
    drill_lock.acquire(control, drill_id="drill-b", say=said.append).release()
    assert said == [said[0]] and f"its process {gone} on this host (host-a) is gone" in said[0]


def test_an_operator_failover_or_failback_is_refused_while_a_drill_holds_the_lock(
    topology: Topology,
    cloud: AwsCloud,
    control: ControlStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mldr.cli import main

    def params(kind: str, target: str, *, dry_run: bool = False) -> OperationParams:
        return OperationParams(
            kind=kind,
            target_region=target,
            mode=Mode.UNPLANNED if kind == "failover" else Mode.PLANNED,
            reason="operator during a drill",
            requested_by="pytest",
            require_approval=False,
            dry_run=dry_run,
        )

    lease = control.read_lease()
    history = OperationStore(control).history(limit=1000)
    on_host(monkeypatch, "host-a")
    holder = drill_lock.acquire(control, drill_id="drill-a")
    try:
        on_host(monkeypatch, "host-b")
        asks = [
            params("failover", topology.secondary_region),
            params("failover", topology.secondary_region, dry_run=True),
            params("failback", topology.primary_region),
        ]
        for ask in asks:
            with pytest.raises(DrillInProgress) as refused:
                open_operation(topology, cloud, ask)
            message = str(refused.value)
            assert message.startswith("refused: ") and "while a DR drill runs" in message, message
            assert f"drill drill-a (pid {os.getpid()} on host-a" in message
            assert f"kill -INT {os.getpid()}` on host-a" in message, "it says how to stop the drill"
        # the drill's own operations are not refused
        ctx = open_operation(topology, cloud, asks[0], drill_id="drill-a")
        assert ctx.record.params == asks[0]
        # and `mldr status` shows the drill
        capsys.readouterr()
        assert main(["status", "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)["drill"]
        assert shown.startswith(f"drill drill-a (pid {os.getpid()} on host-a"), shown
    finally:
        holder.release()
    assert control.read_lease() == lease, "nothing changed"
    assert OperationStore(control).history(limit=1000) == history, "no operation was recorded"
    # released: operators are free again
    open_operation(topology, cloud, params("failover", topology.secondary_region, dry_run=True))
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["drill"] is None
