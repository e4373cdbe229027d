"""The fence time comes from the store's clock, not the host's: a skewed host clock must not
let a planned failover's drain skip a version written before the fence. Counts objects and
compares checksums before and after."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from mldr.cloud.aws.clients import ClientFactory
from mldr.runbooks import failover
from mldr.runbooks.engine import OperationStatus
from mldr.sandbox.manager import Sandbox
from mldr.topology import Topology
from tests.integration.test_failover import (  # noqa: F401 - fixtures, used by name
    factory,
    on_primary,
    run,
    snapshot,
    topology,
    wait_replicated,
    write,
)

pytestmark = pytest.mark.sandbox


def _resuming_after_first_look(sandbox: Sandbox, datasets: int) -> Callable[..., Any]:
    """`status_source` whose backlog resumes the paused replication when the drain polls a second
    time: the drain's first look sees every version written before the fence still pending."""
    real = failover.status_source

    def status_source(*args: Any, **kwargs: Any) -> Any:
        source = real(*args, **kwargs)
        backlog, looks = source.backlog, [0]

        def counting(**kw: Any) -> Any:
            looks[0] += 1
            if looks[0] == datasets + 1:
                sandbox.replication("resume")
            return backlog(**kw)

        source.backlog = counting
        return source

    return status_source


def test_a_slow_host_clock_does_not_let_the_drain_skip_versions_written_before_the_fence(
    topology: Topology,  # noqa: F811
    factory: ClientFactory,  # noqa: F811
    sandbox: Sandbox,
    on_primary: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    primary, secondary = topology.primary_region, topology.secondary_region
    base = write(factory, topology, primary, f"clock-base-{uuid.uuid4().hex[:8]}", 4)
    wait_replicated(factory, topology, base, secondary)
    # Replication stands still: the versions below are still pending when the failover fences,
    # however long the steps before the drain take on a busy machine. It resumes once the drain
    # has looked at the backlog a first time (no timing involved).
    sandbox.replication("pause")
    written = write(factory, topology, primary, f"clock-{uuid.uuid4().hex[:8]}", 8)
    before = snapshot(factory, topology, primary)
    resuming = _resuming_after_first_look(sandbox, len(topology.datasets))
    monkeypatch.setattr(failover, "status_source", resuming)

    real = time.time
    with monkeypatch.context() as skewed:
        # The runbook's host runs two minutes slow (NTP broken, a VM resumed...).
        skewed.setattr(time, "time", lambda: real() - 120.0)
        record = run(topology, factory, "failover", secondary, "planned")

    assert record.status is OperationStatus.COMPLETED, record.message
    drained = record.result(failover.drain)
    assert isinstance(drained, failover.Drained)
    assert drained.waited_for >= len(written), (
        f"the drain waited for {drained.waited_for} version(s); {len(written)} were written before the fence"
    )
    after = snapshot(factory, topology, secondary)
    assert {k: after.get(k) for k in before} == before, (
        "RPO 0: every object written before the fence is there"
    )
    assert len(before) >= len(base) + len(written)
