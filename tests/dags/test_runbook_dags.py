"""`dr_failover` and `dr_failback` end to end with `dag.test()` against the sandbox."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.sandbox.manager import Sandbox
from mldr.topology import load_topology
from tests.integration.test_failover import snapshot, wait_replicated, write

pytestmark = pytest.mark.sandbox


def test_failover_then_failback_through_airflow(sandbox: Sandbox, dagbag: Any, task_states: Any) -> None:
    topology = load_topology(use_airflow=False)
    store = AwsCloud.from_environment(topology).control()
    token = store.read_lease().fencing_token
    primary, secondary = topology.primary_region, topology.secondary_region
    factory = ClientFactory.from_environment(topology)
    written = write(factory, topology, primary, f"dag-{uuid.uuid4().hex[:8]}", 6)
    wait_replicated(factory, topology, written, secondary)
    before = snapshot(factory, topology, primary)

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
    after = snapshot(factory, topology, secondary)
    assert {k: after.get(k) for k in before} == before, "nothing lost: every object, byte for byte"

    back = dagbag.dags["dr_failback"].test(
        run_conf={"reason": "failback through airflow", "require_approval": False}
    )
    assert str(back.state) == "success", task_states(back)
    lease = store.read_lease()
    assert (lease.active_region, lease.fencing_token, lease.fenced_regions) == (primary, token + 2, ())
    after = snapshot(factory, topology, primary)
    assert {k: after.get(k) for k in before} == before, "nothing lost: every object, byte for byte"


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


def test_a_restore_through_airflow_plans_then_restores(
    sandbox: Sandbox, dagbag: Any, task_states: Any
) -> None:
    """dr_restore: a dry run shows the plan and changes nothing; the run restores the earlier state."""
    import hashlib
    import time
    import uuid

    from mldr.checks.point_in_time import iso
    from mldr.cloud.aws.clients import ClientFactory

    topology = load_topology(use_airflow=False)
    region = topology.primary_region
    s3 = ClientFactory.from_environment(topology).client("s3", region)
    bucket = topology.dataset("features").buckets[region]
    prefix = f"dag-restore-{uuid.uuid4().hex[:6]}/"
    s3.put_object(Bucket=bucket, Key=f"{prefix}a", Body=b"good a")
    time.sleep(1.1)
    moment = time.time()
    time.sleep(1.1)
    s3.put_object(Bucket=bucket, Key=f"{prefix}a", Body=b"bad a!")
    s3.put_object(Bucket=bucket, Key=f"{prefix}b", Body=b"new b")
    to = iso(moment)

    def current() -> dict[str, str]:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        return {
            o["Key"]: hashlib.sha256(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()).hexdigest()
            for o in listed
        }

    damaged = current()
    conf = {"dataset": "features", "to": to, "prefix": prefix, "reason": "restore through airflow"}
    dry = dagbag.dags["dr_restore"].test(run_conf={**conf, "dry_run": True})
    assert task_states(dry)["restore_preflight"] == "skipped" and current() == damaged
    run = dagbag.dags["dr_restore"].test(run_conf={**conf, "require_approval": False})
    states = task_states(run)
    assert str(run.state) == "success", states
    assert current() == {f"{prefix}a": hashlib.sha256(b"good a").hexdigest()}


def test_dr_autopilot_recommends_nothing_for_a_healthy_primary_and_records_its_decision(
    sandbox: Sandbox, dagbag: Any, task_states: Any
) -> None:
    """Issue 16: the `dr_autopilot` DAG runs the same evaluation as `mldr autopilot evaluate`: in
    `recommend` on a healthy primary it changes nothing, and its decision is recorded (the state
    `mldr status` reads) and audited with what each observer saw."""
    from mldr.runbooks.audit import AuditLog
    from mldr.runbooks.autopilot.policy import AUDIT_ID, POLICY_KEY, STATE_KEY, change_policy, read_state
    from mldr.topology import AutopilotMode

    topology = load_topology(use_airflow=False)
    cloud = AwsCloud.from_environment(topology)
    store = cloud.control()
    before = store.read_lease()
    audit = AuditLog(cloud, topology, store)
    audited = len(audit.events(topology.primary_region, AUDIT_ID))
    change_policy(
        cloud,
        topology,
        by="pytest",
        reason="dr_autopilot through dag.test()",
        mode=AutopilotMode.RECOMMEND,
        observers_required=3,
        for_seconds=60,
        block_after_seconds=0,
        max_per_day=1,
    )
    try:
        run = dagbag.dags["dr_autopilot"].test()
        assert str(run.state) == "success", task_states(run)
        decision = read_state(store).last
        assert decision is not None and decision.verdict.value in ("healthy", "suspect"), decision
        assert not decision.command, "nothing to recommend for a healthy primary"
        after = store.read_lease()
        assert (after.active_region, after.fencing_token, after.operation) == (
            before.active_region,
            before.fencing_token,
            None,
        )
        [evaluation] = [
            e for e in audit.events(topology.primary_region, AUDIT_ID)[audited:] if e["event"] == "evaluation"
        ]
        assert evaluation["by"] == "mldr-autopilot" and evaluation["verdict"] == decision.verdict.value
        assert len(evaluation["observations"]) == 4, "what each observer saw"
    finally:
        store.delete_record(POLICY_KEY)  # back to the topology's policy (off) for the session
        store.delete_record(STATE_KEY)
