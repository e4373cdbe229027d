"""Drill measurements on synthetic timelines: downtime, data loss, parity, verdict, the report."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mldr.cloud.control import now_iso
from mldr.errors import ConfigurationError, FaultInjectionUnavailable
from mldr.runbooks.drill import DrillParams, Scenario, metrics
from mldr.runbooks.drill.faults import AwsFaults
from mldr.runbooks.drill.lock import HOST_ENV, DrillLock
from mldr.runbooks.drill.metrics import CanaryWrite, Objectives, RequestSample
from mldr.runbooks.drill.report import format_summary, render_html, trend_points
from mldr.runbooks.drill.state import DrillState, Phase
from mldr.topology import Topology, load_topology_file

FIXTURE = Path(__file__).parents[1] / "fixtures" / "topology.json"
SOURCE, TARGET = "us-east-1", "us-west-2"


@pytest.fixture
def topology() -> Topology:
    return load_topology_file(FIXTURE)


def requests(
    *, fault: float, detected: float, until: float = 20.0, interval: float = 0.2, timeout: float = 1.0
) -> list[RequestSample]:
    """A steady client: served by the source until the fault, timing out until detection, then
    served by the target."""
    out = []
    t = 0.0
    while t < until:
        if t + 0.02 < fault:
            out.append(RequestSample(t, t + 0.02, True, 200, SOURCE))
        elif t < detected:
            out.append(RequestSample(t, t + timeout, False, None, None, "ReadTimeout"))
        else:
            out.append(RequestSample(t, t + 0.03, True, 200, TARGET))
        t = round(t + interval, 6)
    return out


def canary(seq: int, at: float, *, region: str = SOURCE, acked: bool = True) -> CanaryWrite:
    body = f"canary {seq}".encode()
    return CanaryWrite(
        seq,
        f"_mldr/drill/d/{seq:06d}.json",
        region,
        at,
        at + 0.01 if acked else None,
        hashlib.sha256(body).hexdigest(),
    )


# --- downtime ------------------------------------------------------------------------------


def test_downtime_runs_from_first_failure_to_first_success_from_the_target() -> None:
    samples = requests(fault=5.0, detected=8.5)
    downtime = metrics.client_downtime(samples, fault_at=5.0, target=TARGET)
    assert downtime.first_failure_at == pytest.approx(5.0)
    assert downtime.recovered_at == pytest.approx(8.6)
    assert downtime.seconds == pytest.approx(3.6)
    assert downtime.failed_requests == 18  # 5.0, 5.2, ... 8.4


def test_a_request_in_flight_at_the_fault_counts_as_the_start() -> None:
    samples = [
        RequestSample(4.9, 5.9, False, None, None, "ReadTimeout"),  # sent before, failed because of it
        RequestSample(5.1, 6.1, False, None, None, "ReadTimeout"),
        RequestSample(7.0, 7.05, True, 200, TARGET),
    ]
    downtime = metrics.client_downtime(samples, fault_at=5.0, target=TARGET)
    assert downtime.first_failure_at == 4.9 and downtime.seconds == pytest.approx(2.1)


def test_no_failure_is_zero_downtime_and_no_recovery_is_none() -> None:
    steady = [RequestSample(t / 5, t / 5 + 0.02, True, 200, SOURCE) for t in range(50)]
    assert metrics.client_downtime(steady, fault_at=3.0, target=TARGET).seconds == 0.0
    never = requests(fault=5.0, detected=99.0)
    result = metrics.client_downtime(never, fault_at=5.0, target=TARGET)
    assert result.seconds is None and not result.recovered and result.failed_requests > 0


def test_success_from_the_source_after_a_failure_is_not_recovery() -> None:
    samples = [
        RequestSample(5.0, 6.0, False, None, None),
        RequestSample(5.5, 5.6, True, 200, SOURCE),  # a straggler the source still answered
        RequestSample(8.0, 8.1, True, 200, TARGET),
    ]
    assert metrics.client_downtime(samples, fault_at=5.0, target=TARGET).seconds == pytest.approx(3.0)


# --- data loss ------------------------------------------------------------------------------


def test_loss_is_what_the_source_acknowledged_after_the_stall_and_the_target_lacks() -> None:
    writes = [canary(i, i * 0.25) for i in range(48)]  # 0 .. 11.75 s
    stall, fault = 8.0, 12.0
    present = {c.key: c.sha256 for c in writes if c.sent_at < stall}
    loss = metrics.data_loss(writes, source=SOURCE, present_in_target=present, writes_stopped_at=fault)
    after_stall = [c for c in writes if c.sent_at >= stall]
    assert loss.lost_objects == len(after_stall) == 16
    assert loss.considered == 48
    assert loss.rpo_seconds == pytest.approx(fault - after_stall[0].acked_at)  # type: ignore[operator]
    assert abs(loss.rpo_seconds - (fault - stall)) <= 0.25


def test_nothing_lost_is_rpo_zero_and_a_wrong_checksum_is_lost() -> None:
    writes = [canary(i, i * 0.25) for i in range(8)]
    present = {c.key: c.sha256 for c in writes}
    assert (
        metrics.data_loss(writes, source=SOURCE, present_in_target=present, writes_stopped_at=5).rpo_seconds
        == 0
    )
    present[writes[3].key] = "0" * 64
    loss = metrics.data_loss(writes, source=SOURCE, present_in_target=present, writes_stopped_at=5.0)
    assert [c.seq for c in loss.lost] == [3]
    assert loss.rpo_seconds == pytest.approx(5.0 - writes[3].acked_at)  # type: ignore[operator]


def test_refused_writes_and_writes_to_the_target_are_not_data_loss() -> None:
    writes = [
        canary(0, 1.0),
        canary(1, 2.0, acked=False),  # never acknowledged: the client knows it failed
        canary(2, 3.0, region=TARGET),  # written to the target after failover
        canary(3, 9.0),  # acknowledged after the cut-off (cannot happen in an outage)
    ]
    loss = metrics.data_loss(writes, source=SOURCE, present_in_target={}, writes_stopped_at=5.0)
    assert [c.seq for c in loss.lost] == [0] and loss.considered == 1


def test_lost_after_failback_counts_a_key_missing_anywhere_once() -> None:
    writes = [canary(i, float(i)) for i in range(5)] + [canary(9, 1.0, acked=False)]
    everything = {c.key: c.sha256 for c in writes if c.acked}
    primary = dict(everything)
    secondary = {k: v for k, v in everything.items() if not k.endswith("000002.json")}
    secondary[writes[4].key] = "bad"
    loss = metrics.lost_after_failback(writes, {SOURCE: primary, TARGET: secondary})
    assert loss.checked == 5 and loss.lost == 2
    assert loss.missing[SOURCE] == () and len(loss.missing[TARGET]) == 2
    assert metrics.lost_after_failback(writes, {SOURCE: everything, TARGET: everything}).lost == 0


def test_write_outage_spans_refused_writes() -> None:
    writes = [canary(0, 1.0), canary(1, 5.0, acked=False), canary(2, 6.0, acked=False), canary(3, 9.5)]
    assert metrics.write_outage_seconds(writes, fault_at=4.0) == pytest.approx(4.5)
    assert metrics.write_outage_seconds(writes[:1], fault_at=4.0) == 0.0


# --- parity and verdict ------------------------------------------------------------------------


def answer(version: str = "v1", predictions: list[int] | None = None) -> dict[str, Any]:
    return {"model_version": version, "predictions": predictions if predictions is not None else [0, 1, 2, 2]}


def test_parity_needs_same_version_and_identical_predictions() -> None:
    assert metrics.prediction_parity({"a": answer(), "b": answer(), "c": answer()}).ok
    version = metrics.prediction_parity({"a": answer(), "b": answer("v2")})
    assert not version.ok and "v2" in version.problems[0]
    rows = metrics.prediction_parity({"a": answer(), "b": answer(predictions=[0, 1, 1, 2])})
    assert not rows.ok and "rows [2]" in rows.problems[0]
    down = metrics.prediction_parity({"a": answer(), "b": {"error": "no answer (ConnectTimeout)"}})
    assert not down.ok and "ConnectTimeout" in down.problems[0]
    assert not metrics.prediction_parity({}).ok


def test_verdict_passes_only_when_every_objective_is_met() -> None:
    objectives = Objectives(rto_seconds=30, rpo_seconds=5)
    ok = metrics.verdict(
        rto_seconds=3.8, rpo_seconds=0.0, parity=True, lost_after_failback=0, objectives=objectives
    )
    assert ok.passed and ok.label == "pass" and "RTO 3.8 s <= 30.0 s" in ok.reason
    bad = metrics.verdict(
        rto_seconds=31.0, rpo_seconds=7.25, parity=False, lost_after_failback=2, objectives=objectives
    )
    assert bad.label == "fail"
    assert bad.failures == (
        "RTO 31.0 s > objective 30.0 s",
        "RPO 7.2 s > objective 5.0 s",
        "prediction parity broken: the regions answer the golden set differently",
        "2 object(s) lost after failback (must be 0)",
    )
    never = metrics.verdict(
        rto_seconds=None, rpo_seconds=0.0, parity=True, lost_after_failback=0, objectives=objectives
    )
    assert not never.passed and "never got an answer" in never.reason


def test_without_failback_data_after_failback_is_not_a_criterion() -> None:
    objectives = Objectives(rto_seconds=30, rpo_seconds=5)
    result = metrics.verdict(
        rto_seconds=4.0,
        rpo_seconds=0.0,
        parity=True,
        lost_after_failback=None,
        objectives=objectives,
        failed_back=False,
    )
    assert result.passed
    unchecked = metrics.verdict(
        rto_seconds=4.0, rpo_seconds=0.0, parity=True, lost_after_failback=None, objectives=objectives
    )
    assert not unchecked.passed and "not checked" in unchecked.reason


# --- parameters, faults, state -----------------------------------------------------------------


def test_params_are_validated_against_the_topology(topology: Topology) -> None:
    params = DrillParams.from_mapping({"scenario": "replication-stall", "hold_seconds": 5}).validated(
        topology
    )
    assert params.scenario is Scenario.REPLICATION_STALL
    assert params.target_region == TARGET and params.drill_id and params.drill_id.startswith("drill-")
    assert params.objectives(topology) == Objectives(rto_seconds=300, rpo_seconds=900)
    stricter = DrillParams(rpo_objective_seconds=1).objectives(topology)
    assert stricter == Objectives(rto_seconds=300, rpo_seconds=1)
    with pytest.raises(ConfigurationError, match="scenario must be one of"):
        DrillParams.from_mapping({"scenario": "meteor"})
    with pytest.raises(ConfigurationError, match="unknown drill parameter"):
        DrillParams.from_mapping({"hold": 5})
    with pytest.raises(ConfigurationError, match="is the primary"):
        DrillParams(target_region=SOURCE).validated(topology)
    with pytest.raises(ConfigurationError, match="hold seconds must be between"):
        DrillParams(hold_seconds=-1).validated(topology)
    with pytest.raises(ConfigurationError, match="unknown region"):
        DrillParams(target_region="eu-west-1").validated(topology)


def test_a_real_account_gets_instructions_not_a_silent_stub(topology: Topology) -> None:
    faults = AwsFaults(topology)
    with pytest.raises(FaultInjectionUnavailable, match="Fault Injection Service") as info:
        faults.preflight("region-outage")
    assert "planned-switchover" in str(info.value) and info.value.exit_code == 2
    with pytest.raises(FaultInjectionUnavailable, match="put-bucket-replication"):
        faults.pause_replication()


def test_the_drill_imports_on_a_light_install_without_the_sandbox() -> None:
    """The break-glass install has no sandbox extra: `mldr drill --recover` must still load."""
    blocked = "import sys; sys.modules['mldr.sandbox'] = None; import mldr.runbooks.drill, mldr.cli_drill"
    done = subprocess.run(
        [sys.executable, "-c", blocked],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "plugins"), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_drill_state_round_trips() -> None:
    state = DrillState(drill_id="drill-x", scenario="region-outage", source=SOURCE, target=TARGET)
    state.phase, state.fault_region, state.operations = Phase.FAULT, SOURCE, {"failover": "failover-1"}
    again = DrillState.from_json(state.to_json())
    assert again == state and again.phase is Phase.FAULT


def test_the_drill_lock_knows_a_dead_process_and_a_stale_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOST_ENV, "host-a")
    now = now_iso()
    lock = DrillLock(
        drill_id="drill-x",
        purpose="drill",
        host="host-a",
        pid=os.getpid(),
        started_at=now,
        heartbeat_at=now,
        held=True,
        version=3,
    )
    assert DrillLock.from_record(lock.record()) == lock
    assert lock.live() and lock.mine(), "this very process holds it"
    dead = replace(lock, pid=2**22 + 7)  # above pid_max on most systems: no such process
    assert dead.stale_because() == f"its process {dead.pid} on this host (host-a) is gone"
    assert replace(lock, pid=os.getppid()).live()
    other_host = replace(dead, host="host-b")
    assert other_host.live(), "a pid on another host cannot be checked from here: the heartbeat decides"
    old = replace(other_host, heartbeat_at="2026-01-01T00:00:00.000Z")
    reason = old.stale_because()
    assert reason is not None and "last heartbeat is" in reason and not old.live()
    assert not replace(lock, held=False).live(), "a released lock holds nothing"
    described = other_host.describe()
    assert f"drill drill-x (pid {dead.pid} on host-b, started {now}, heartbeat" in described


# --- report --------------------------------------------------------------------------------


def document(**overrides: Any) -> dict[str, Any]:
    t0 = 1_800_000_000.0
    samples = requests(fault=5.0, detected=8.5)
    writes = [canary(i, i * 0.25) for i in range(60)]
    doc: dict[str, Any] = {
        "kind": "mldr-dr-drill",
        "drill_id": "drill-20261129T040000Z-abc123",
        "scenario": "region-outage",
        "topology": "sandbox",
        "source": SOURCE,
        "target": TARGET,
        "started_at": "2026-11-29T04:00:00Z",
        "duration_seconds": 60.0,
        "objectives": {"rto_seconds": 30, "rpo_seconds": 5},
        "verdict": "pass",
        "verdict_reason": "all objectives met",
        "failed_criteria": [],
        "rto_seconds": 3.6,
        "rpo_seconds": 0.0,
        "lost_objects": 0,
        "lost_after_failback": 0,
        "failed_requests": 18,
        "parity": True,
        "detection": {"window_seconds": 3.0, "interval_seconds": 1.0, "failure_threshold": 3},
        "downtime": {"first_failure_at": t0 + 5.0, "recovered_at": t0 + 8.6},
        "data": {"lost_keys": [writes[30].key]},
        "parity_detail": {"ok": True, "answers": {f"{SOURCE} before": answer()}},
        "steps": {"failover": {"preflight": 2.4, "switch": 0.4}, "failback": {"resync": 3.7}},
        "events": {"fault_at": t0 + 5.0, "detected_at": t0 + 8.5, "failback_switched_at": t0 + 18.0},
        "notes": ["<injected> & escaped"],
        "timeline": {
            "t0": t0,
            "requests": [[t0 + s.sent_at, int(s.ok), s.status, s.latency * 1000, s.region] for s in samples],
            "canaries": [[t0 + c.sent_at, 1, c.region, c.seq] for c in writes],
        },
        "reports": {SOURCE: "s3://mldr-ops-us-east-1/reports/drill/x.html"},
        "report": "reports/drill/x.html",
    }
    doc.update(overrides)
    return doc


def test_report_is_self_contained_html_with_the_timeline_and_trend_plots() -> None:
    earlier = [
        document(drill_id=f"drill-old-{i}", started_at=f"2026-11-{20 + i}T04:00:00Z", rto_seconds=4.0 + i)
        for i in range(3)
    ]
    page = render_html(document(), earlier)
    assert page.startswith("<!doctype html>") and "PASS" in page
    timeline = re.search(r'<svg id="timeline".*?</svg>', page, re.S)
    trend = re.search(r'<svg id="trend".*?</svg>', page, re.S)
    assert timeline and trend
    assert timeline.group(0).count("<circle") > 50, "one point per successful request"
    assert ">fault<" in timeline.group(0) and ">detected<" in timeline.group(0)
    assert 'fill="#1b1f24"' in timeline.group(0), "the lost canary is drawn in black"
    assert trend.group(0).count("<circle") == 4, "three earlier drills and this one"
    assert "&lt;injected&gt; &amp; escaped" in page and "<injected>" not in page
    assert "<script" not in page and "src=" not in page and "<link" not in page


def test_a_failed_drill_says_why_in_the_report_and_the_summary() -> None:
    doc = document(
        verdict="fail",
        verdict_reason="RPO 2.0 s > objective 1.0 s",
        failed_criteria=["RPO 2.0 s > objective 1.0 s"],
        rpo_seconds=2.0,
        lost_objects=8,
    )
    assert "FAIL" in render_html(doc) and "RPO 2.0 s &gt; objective 1.0 s" in render_html(doc)
    text = format_summary(doc)
    rpo_line = next(line for line in text.splitlines() if line.strip().startswith("RPO"))
    rto_line = next(line for line in text.splitlines() if line.strip().startswith("RTO (client"))
    assert rpo_line.rstrip().endswith("FAIL") and "8 object(s)" in rpo_line
    assert rto_line.rstrip().endswith("ok")
    assert "verdict: FAIL - RPO 2.0 s > objective 1.0 s" in text and "report:  reports/drill/x.html" in text


def test_trend_is_oldest_first_without_duplicates_or_foreign_documents() -> None:
    current = document()
    earlier = [
        document(drill_id="b", started_at="2026-11-02T00:00:00Z"),
        document(drill_id="a", started_at="2026-11-01T00:00:00Z"),
        document(drill_id=current["drill_id"]),  # this drill, already stored
        {"kind": "something-else", "drill_id": "z"},
    ]
    assert [p["drill_id"] for p in trend_points(earlier, current)] == ["a", "b", current["drill_id"]]
