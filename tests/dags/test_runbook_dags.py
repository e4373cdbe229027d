"""`dr_failover` and `dr_failback` end to end with `dag.test()` against the sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from mldr.cloud.aws.cloud import AwsCloud
from mldr.sandbox.manager import Sandbox
from mldr.topology import load_topology

pytestmark = pytest.mark.sandbox


def test_failover_then_failback_through_airflow(sandbox: Sandbox, dagbag: Any, task_states: Any) -> None:
    topology = load_topology(use_airflow=False)
    store = AwsCloud.from_environment(topology).control()
    token = store.read_lease().fencing_token
    primary, secondary = topology.primary_region, topology.secondary_region

    # dry run: preflight only, every later task skipped, nothing changes
    dry = dagbag.dags["dr_failover"].test(
        run_conf={"target_region": secondary, "reason": "dry run through airflow", "dry_run": True}
    )
    states = task_states(dry)
    assert states["preflight"] == "skipped" and states["fence"] == "skipped"
    assert store.read_lease().fencing_token == token

    run = dagbag.dags["dr_failover"].test(
        run_conf={
            "target_region": secondary,
            "mode": "planned",
            "reason": "failover through airflow",
            "require_approval": False,
        }
    )
    states = task_states(run)
    assert str(run.state) == "success", states
    assert states["await_approval"] == "skipped" and states["approval"] == "success", states
    assert states["record"] == "success", states
    lease = store.read_lease()
    assert (lease.active_region, lease.fencing_token) == (secondary, token + 1)

    back = dagbag.dags["dr_failback"].test(
        run_conf={"reason": "failback through airflow", "require_approval": False}
    )
    assert str(back.state) == "success", task_states(back)
    lease = store.read_lease()
    assert (lease.active_region, lease.fencing_token, lease.fenced_regions) == (primary, token + 2, ())


def test_bad_params_fail_before_any_change(sandbox: Sandbox, dagbag: Any, task_states: Any) -> None:
    topology = load_topology(use_airflow=False)
    store = AwsCloud.from_environment(topology).control()
    before = store.read_lease()
    with pytest.raises(Exception, match=r"reason|minLength|too short"):
        dagbag.dags["dr_failover"].test(
            run_conf={"target_region": topology.secondary_region, "reason": "short"}
        )
    run = dagbag.dags["dr_failover"].test(
        run_conf={
            "target_region": topology.primary_region,
            "reason": "fail over to the active region",
            "require_approval": False,
        }
    )
    assert task_states(run)["preflight"] == "skipped", "already active: said so, nothing to do"
    assert store.read_lease() == before
