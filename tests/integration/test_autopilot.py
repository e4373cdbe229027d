"""Autopilot against the real sandbox: a real outage (the primary's processes stopped) with `act`
fails over without a command; blips do not; a second outage inside the block window alerts
with the command instead; `recommend` changes nothing and alerts with the command.

The test drives `evaluate` in a loop (a fresh cloud handle per round, as each DAG run is a new
process) instead of waiting for the DAG's schedule, with a short `for_seconds`. Alerts are read
from an SQS queue subscribed to the standby's alert topic, as on-call would get them.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mldr import http
from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.ml.golden import golden_set
from mldr.runbooks.audit import AuditLog
from mldr.runbooks.autopilot.decision import Verdict
from mldr.runbooks.autopilot.evaluate import AUTOPILOT, Evaluation, evaluate
from mldr.runbooks.autopilot.policy import AUDIT_ID, POLICY_KEY, STATE_KEY, change_policy
from mldr.runbooks.engine import OperationStatus, OperationStore
from mldr.sandbox.manager import Sandbox, SandboxState
from mldr.topology import AutopilotMode, Topology, load_topology
from tests.integration.test_failover import dns_answer, lease, run, snapshot, wait_replicated, write
from tests.pager import listen_on_alerts

pytestmark = pytest.mark.sandbox

FOR_SECONDS = 3


@pytest.fixture(scope="module")
def topology(sandbox: Sandbox) -> Topology:
    return load_topology(use_airflow=False)


@pytest.fixture(scope="module")
def factory(topology: Topology) -> ClientFactory:
    return ClientFactory.from_environment(topology)


def cloud(factory: ClientFactory) -> AwsCloud:
    return AwsCloud(factory)


class Alerts:
    """An SQS queue subscribed to the standby's alert topic (the primary's is down in an outage)."""

    def __init__(self, state: SandboxState, topology: Topology) -> None:
        self.sqs, self.url = listen_on_alerts(state, topology, topology.secondary_region)

    def autopilot(self) -> list[dict[str, str]]:
        """The autopilot alerts received since the last call."""
        out = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            messages = got.get("Messages", [])
            if not messages:
                return out
            for m in messages:
                body = json.loads(m["Body"])
                if "autopilot" in body.get("Subject", ""):
                    out.append({"subject": body["Subject"], "message": body["Message"]})
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture(scope="module")
def alerts(sandbox: Sandbox, topology: Topology) -> Alerts:
    assert sandbox.state is not None
    return Alerts(sandbox.state, topology)


def _reset_autopilot(factory: ClientFactory) -> None:
    control = cloud(factory).control()
    control.delete_record(POLICY_KEY)  # back to the topology's policy: off
    control.delete_record(STATE_KEY)


@pytest.fixture
def autopilot_env(
    topology: Topology, factory: ClientFactory, sandbox: Sandbox, alerts: Alerts
) -> Iterator[None]:
    """Each test starts on the primary with a fresh autopilot memory, and ends healed, failed
    back and with autopilot off again (the other tests of the session expect it off)."""
    assert lease(factory).active_region == topology.primary_region
    _reset_autopilot(factory)
    alerts.autopilot()  # drain anything older
    yield
    for region in topology.region_names:
        sandbox.heal(region)
    _reset_autopilot(factory)
    current = lease(factory)
    if current.operation is not None:
        op = current.operation
        run(topology, factory, op.kind, op.target, op.mode, resume=op.id)
    if lease(factory).active_region != topology.primary_region or lease(factory).fenced_regions:
        run(topology, factory, "failback", topology.primary_region)
    assert lease(factory).active_region == topology.primary_region


def policy(factory: ClientFactory, topology: Topology, mode: AutopilotMode, **settings: Any) -> None:
    change_policy(
        cloud(factory),
        topology,
        by="pytest",
        reason="integration test of autopilot",
        mode=mode,
        observers_required=3,
        for_seconds=FOR_SECONDS,
        **{"block_after_seconds": 0, "max_per_day": 1, **settings},
    )


def drive(
    factory: ClientFactory, topology: Topology, until: Callable[[Evaluation], bool], *, timeout: float = 60.0
) -> list[Evaluation]:
    """Evaluate, round after round, until `until` holds; every evaluation made, in order."""
    seen: list[Evaluation] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # one handle for the loop, as a long-lived process: a region found silent is skipped by
        # the alert and the audit for a while (the observers always ask it again)
        seen.append(evaluate(cloud(factory), topology))
        if until(seen[-1]):
            return seen
        time.sleep(0.5)
    verdicts = [f"{e.decision.verdict.value}: {e.decision.why}" for e in seen[-5:]]
    raise AssertionError(f"autopilot did not get there within {timeout:.0f}s; last: {verdicts}")


def data(factory: ClientFactory, topology: Topology, region: str) -> dict[str, str]:
    """The datasets' objects and checksums, without the reserved canaries and heartbeats."""
    return {k: v for k, v in snapshot(factory, topology, region).items() if "/_mldr/" not in f"/{k}"}


class ServedBy:
    """Polls predictions through the DNS name; notes when the standby first served one."""

    def __init__(self, topology: Topology, region: str) -> None:
        self.url = topology.inference.client_url.rstrip("/") + "/predict"
        self.region, self.at, self.stop = region, 0.0, threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self.stop.is_set():
            try:
                r = http.post(self.url, json={"instances": golden_set()}, timeout=2.0)
                if r.status_code == 200 and r.headers.get("x-mldr-served-by") == self.region:
                    self.at = time.monotonic()
                    return
            except Exception:
                pass
            self.stop.wait(0.5)


def test_real_blips_do_not_fail_over(
    topology: Topology,
    factory: ClientFactory,
    sandbox: Sandbox,
    alerts: Alerts,
    autopilot_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The primary stopped for one evaluation, then healed: never `for_seconds` of agreement.
    (Twenty blips of every shape are in tests/unit/test_autopilot_decision.py.)"""
    primary = topology.primary_region
    token = lease(factory).fencing_token
    policy(factory, topology, AutopilotMode.ACT)
    seen = [evaluate(cloud(factory), topology)]
    for _ in range(2):
        sandbox.region_outage(primary)
        try:
            seen.append(evaluate(cloud(factory), topology))
        finally:
            sandbox.heal(primary)
        seen.append(evaluate(cloud(factory), topology))
    assert seen[1].round is not None and len(seen[1].round.failing) >= 3, "the blip was seen"
    for e in seen:
        assert e.decision.verdict in (Verdict.HEALTHY, Verdict.SUSPECT), e.decision.why
        assert e.operation_id is None
    assert (lease(factory).active_region, lease(factory).fencing_token) == (primary, token)
    assert alerts.autopilot() == [], "a blip alerts nobody"

    # the CLI shows it; a setting out of bounds is refused (exit 2) and changes nothing
    from mldr.cli import main

    with pytest.raises(SystemExit) as refused:
        main(["autopilot", "enable", "--mode", "act", "--observers-required", "1", "--json"])
    assert refused.value.code == 2
    capsys.readouterr()
    assert main(["autopilot", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["policy"]["mode"] == "act" and status["policy"]["observers_required"] == 3
    assert status["policy"]["changed_by"] == "pytest" and status["policy"]["source"] == "control store"
    assert status["last_decision"]["verdict"] in ("healthy", "suspect")
    # `mldr status` shows it at a glance: the mode and the last verdict, in text and --json
    assert main(["status", "--json"]) == 0
    pilot = json.loads(capsys.readouterr().out)["autopilot"]
    assert (pilot["mode"], pilot["source"]) == ("act", "control store")
    assert pilot["last_verdict"] == status["last_decision"]["verdict"] and pilot["why"]
    assert main(["status"]) == 0
    [line] = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("autopilot:")]
    assert f"act (policy from the control store); last verdict {pilot['last_verdict']} at " in line
    assert {o["observer"] for o in status["observations"]} == {
        "route53",
        "standby_probe",
        "heartbeat",
        "dns_inference",
    }
    changes = [
        e
        for e in AuditLog(cloud(factory), topology, cloud(factory).control()).events(primary, AUDIT_ID)
        if e["event"] == "policy-changed"
    ]
    assert changes[-1]["by"] == "pytest" and changes[-1]["after"]["mode"] == "act", "the change is audited"


def test_recommend_then_act_fail_over_a_dead_primary_and_a_second_outage_is_blocked(
    topology: Topology,
    factory: ClientFactory,
    sandbox: Sandbox,
    sandbox_state: SandboxState,
    alerts: Alerts,
    autopilot_env: None,
    record_property: Callable[[str, object], None],
) -> None:
    primary, secondary = topology.primary_region, topology.secondary_region
    token = lease(factory).fencing_token
    written = write(factory, topology, primary, f"autopilot-{uuid.uuid4().hex[:8]}", 12)
    wait_replicated(factory, topology, written, secondary)
    before = data(factory, topology, primary)
    assert {k: before.get(k) for k in written} == written

    # recommend: the outage is declared, nothing changes, the alert names the command
    policy(factory, topology, AutopilotMode.RECOMMEND)
    drive(factory, topology, lambda e: e.decision.verdict is Verdict.HEALTHY)
    served = ServedBy(topology, secondary)
    outage_at = time.monotonic()
    sandbox.region_outage(primary)
    served.thread.start()
    seen = drive(
        factory, topology, lambda e: e.decision.verdict is Verdict.RECOMMEND_FAILOVER and bool(e.alerted)
    )
    recommended = seen[-1]
    assert any(e.decision.verdict is Verdict.SUSPECT for e in seen), "suspect before declared dead"
    assert recommended.decision.command is not None
    assert recommended.decision.command.startswith(f"mldr failover --to {secondary} --mode unplanned")
    assert recommended.round is not None and len(recommended.round.failing) >= 3
    now = lease(factory)
    assert (now.active_region, now.fencing_token, now.operation) == (primary, token, None), "nothing changed"
    [alert] = alerts.autopilot()
    assert alert["subject"].endswith("recommend-failover")
    assert recommended.decision.command in alert["message"]

    # act, the outage going on: autopilot fails over without a command
    policy(factory, topology, AutopilotMode.ACT)
    acted = drive(factory, topology, lambda e: e.operation_status is not None, timeout=90)[-1]
    served.thread.join(timeout=30)
    served.stop.set()
    assert acted.decision.verdict is Verdict.FAILOVER
    assert acted.operation_status == OperationStatus.COMPLETED.value, acted.operation_message
    assert served.at, "the standby never served a prediction through the DNS name"
    took = served.at - outage_at
    print(
        f"\nautopilot: outage to predictions served by {secondary}: {took:.1f}s (for_seconds {FOR_SECONDS})"
    )
    record_property("outage_to_serving_seconds", round(took, 1))

    current = lease(factory)
    assert (current.active_region, current.fencing_token, current.operation) == (secondary, token + 1, None)
    assert dns_answer(sandbox_state) == secondary
    record = OperationStore(cloud(factory).control()).load(str(acted.operation_id))
    assert record is not None and record.params.requested_by == AUTOPILOT
    assert record.params.mode.value == "unplanned"
    after = data(factory, topology, secondary)
    assert {k: after.get(k) for k in before} == before, "every object replicated before the outage is there"
    [alert] = alerts.autopilot()
    assert alert["subject"].endswith(": failover") and acted.decision.command in alert["message"]
    events = AuditLog(cloud(factory), topology, cloud(factory).control()).events(secondary, AUDIT_ID)
    evaluations = [e for e in events if e["event"] == "evaluation"]
    assert [e["verdict"] for e in evaluations][-2:] == ["recommend-failover", "failover"]
    assert {o["observer"] for o in evaluations[-1]["observations"]} == {
        "route53",
        "standby_probe",
        "heartbeat",
        "dns_inference",
    }

    # failed over, autopilot never fails back: it recommends the failback's preflight
    sandbox.heal(primary)
    back = drive(factory, topology, lambda e: e.decision.verdict is Verdict.RECOMMEND_FAILBACK, timeout=60)
    assert back[-1].decision.command is not None and back[-1].decision.command.endswith("--dry-run")
    assert lease(factory).active_region == secondary

    # a person fails back; a second outage inside the block window: no failover, the command
    failed_back = run(topology, factory, "failback", primary)
    assert failed_back.status is OperationStatus.COMPLETED, failed_back.message
    p, s = data(factory, topology, primary), data(factory, topology, secondary)
    assert {k: p.get(k) for k in before} == before and {k: s.get(k) for k in before} == before
    alerts.autopilot()
    policy(factory, topology, AutopilotMode.ACT, block_after_seconds=3600, max_per_day=5)
    token = lease(factory).fencing_token
    sandbox.region_outage(primary)
    try:
        blocked = drive(
            factory, topology, lambda e: e.decision.verdict is Verdict.BLOCKED and bool(e.alerted)
        )
    finally:
        sandbox.heal(primary)
    assert "block window" in blocked[-1].decision.why
    assert all(e.operation_id is None for e in blocked)
    assert (lease(factory).active_region, lease(factory).fencing_token) == (primary, token)
    [alert] = alerts.autopilot()
    assert alert["subject"].endswith(": blocked")
    assert f"mldr failover --to {secondary} --mode unplanned" in alert["message"]
