"""The result document of a drill: the verdict and every measurement, from a finished `Drill`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from mldr.errors import MldrError
from mldr.runbooks import failover
from mldr.runbooks.at_risk import DataAtRisk, load_full_list
from mldr.runbooks.drill import metrics
from mldr.runbooks.drill.monitor import first_transition

if TYPE_CHECKING:
    from mldr.runbooks.drill.runner import Drill


DOCUMENT_VERSION = 1


def _every_key(drill: Drill, risk: DataAtRisk) -> dict[str, Any]:
    """The record holds the first versions at risk; the report lists them all (from S3)."""
    try:
        return {"keys": to_jsonable_python(load_full_list(drill.cloud, drill.topology, risk))}
    except MldrError as exc:
        return {"keys": None, "keys_unreadable": str(exc)}


def drill_document(drill: Drill) -> dict[str, Any]:
    """The result document of a finished drill: verdict, measurements, timeline (what is stored)."""
    objectives = drill.params.objectives(drill.topology)
    fault_at = drill.events.get("fault_at", drill.t0)
    downtime = metrics.client_downtime(drill.samples, fault_at=fault_at, target=drill.target)
    parity = metrics.prediction_parity(drill.answers)
    loss = drill.loss
    failback_lost = drill.failback_loss.lost if drill.failback_loss is not None else None
    verdict = metrics.verdict(
        rto_seconds=downtime.seconds,
        rpo_seconds=loss.rpo_seconds if loss is not None else None,
        parity=parity.ok,
        lost_after_failback=failback_lost,
        objectives=objectives,
        failed_back=drill.params.failback,
        missing_by_region={r: len(k) for r, k in drill.failback_loss.missing.items()}
        if drill.failback_loss
        else None,
    )
    failback_detail = failback_loss_detail(drill)
    detection = metrics.detection_seconds(
        fault_at if drill.scenario.injects_outage else None, drill.events.get("detected_at")
    )
    transitions = drill.monitor.transitions()
    dns_switch = first_transition(transitions, what="answer", value=drill.target, after=fault_at)
    window = drill._window
    failed_over = drill.records.get("failover")
    drained = failed_over.result_if_done(failover.drain) if failed_over is not None else None
    # The document is stored as JSON: the typed result becomes JSON here, as in the record.
    failover_risk: dict[str, Any] | None = None
    if isinstance(drained, failover.NotDrained):
        failover_risk = to_jsonable_python(drained.data_at_risk)
        if isinstance(drained.data_at_risk, DataAtRisk):
            failover_risk.update(_every_key(drill, drained.data_at_risk))
    steps = {kind: record.step_seconds() for kind, record in drill.records.items()}
    return {
        "kind": "mldr-dr-drill",
        "version": DOCUMENT_VERSION,
        "drill_id": drill.id,
        "scenario": drill.scenario.value,
        "topology": drill.topology.name,
        "sandbox": drill.topology.sandbox is not None,
        "source": drill.source,
        "target": drill.target,
        "started_at": _iso(drill.t0),
        "finished_at": _iso(time.time()),
        "duration_seconds": round(time.time() - drill.t0, 3),
        "params": drill.params.public(),
        "objectives": {
            "rto_seconds": objectives.rto_seconds,
            "rpo_seconds": objectives.rpo_seconds,
            "overridden": drill.params.rto_objective_seconds is not None
            or drill.params.rpo_objective_seconds is not None,
        },
        "verdict": verdict.label,
        "verdict_reason": verdict.reason,
        "failed_criteria": list(verdict.failures),
        "rto_seconds": _round(downtime.seconds),
        "rpo_seconds": _round(loss.rpo_seconds) if loss is not None else None,
        "lost_objects": loss.lost_objects if loss is not None else None,
        "lost_after_failback": failback_lost,
        "failed_requests": downtime.failed_requests,
        "parity": parity.ok,
        "detection": {
            "window_seconds": window.seconds if window else None,
            "interval_seconds": window.interval_seconds if window else None,
            "failure_threshold": window.failure_threshold if window else None,
            "detected_after_seconds": _round(detection),
            "dns_switched_after_seconds": _round(dns_switch - fault_at) if dns_switch else None,
            "rto_over_window": _round(downtime.seconds / window.seconds, 2)
            if downtime.seconds is not None and window and drill.scenario.injects_outage
            else None,
        },
        "downtime": {
            "first_failure_at": downtime.first_failure_at,
            "recovered_at": downtime.recovered_at,
            "seconds": _round(downtime.seconds),
            "requests": len(drill.samples),
            "requests_failed_total": sum(1 for s in drill.samples if not s.ok),
        },
        "data": {
            "canaries_written": len(drill.canaries),
            "canaries_acknowledged": sum(1 for c in drill.canaries if c.acked),
            "considered_for_rpo": loss.considered if loss is not None else None,
            "lost_keys": [c.key for c in loss.lost] if loss is not None else [],
            "lost_after_failback_keys": dict(drill.failback_loss.missing) if drill.failback_loss else None,
            "lost_after_failback_detail": failback_detail,
            "write_outage_seconds": _round(metrics.write_outage_seconds(drill.canaries, fault_at=fault_at)),
            "data_at_risk_at_failover": failover_risk,
            "quiesce": drill.quiesce or None,
            "stall_seconds": _round(fault_at - drill.events["stall_at"])
            if "stall_at" in drill.events
            else None,
        },
        "parity_detail": {
            "ok": parity.ok,
            "model_versions": dict(parity.model_versions),
            "problems": list(parity.problems),
            "answers": drill.answers,
        },
        "steps": steps,
        "phases": drill.durations,
        "operations": {kind: record.id for kind, record in drill.records.items()},
        "events": {name: round(at, 3) for name, at in sorted(drill.events.items(), key=lambda kv: kv[1])},
        "transitions": [t.public() for t in transitions],
        "notes": drill.notes,
        "timeline": {
            "t0": drill.events.get("load_started", drill.t0),
            "requests": [
                [round(s.sent_at, 3), int(s.ok), s.status, round(s.latency * 1000, 1), s.region]
                for s in drill.samples
            ],
            # [sent_at, acknowledged, region, seq, acknowledged_at]
            "canaries": [
                [round(c.sent_at, 3), int(c.acked), c.region, c.seq, _round(c.acked_at)]
                for c in drill.canaries
            ],
        },
    }


def failback_loss_detail(drill: Drill) -> list[dict[str, Any]]:
    """Each canary missing after failback: where it was written, when, where it is missing.

    Also names the one pattern seen so far: writes the primary acknowledged right after the
    failback switched traffic back, before replication to the standby was restored - S3 does
    not replicate objects written before a rule exists, so they stay unprotected."""
    if drill.failback_loss is None or not drill.failback_loss.lost:
        return []
    t0 = drill.events.get("load_started", drill.t0)
    by_key = {c.key: c for c in drill.canaries}
    detail: list[dict[str, Any]] = [
        {
            "key": key,
            "seq": by_key[key].seq,
            "written_to": by_key[key].region,
            "acked_after_seconds": round((by_key[key].acked_at or t0) - t0, 3),
            "missing_in": region,
        }
        for region, keys in drill.failback_loss.missing.items()
        for key in keys
    ]
    start, end = drill.events.get("failback_started_at"), drill.events.get("failback_done_at")
    gap = [
        d
        for d in detail
        if d["missing_in"] == drill.target
        and d["written_to"] == drill.source
        and start is not None
        and end is not None
        and start - t0 <= d["acked_after_seconds"] <= end - t0
    ]
    if gap and len(gap) == len(detail):
        drill.notes.append(
            f"protection gap in the failback runbook: {len(gap)} write(s) acknowledged by {drill.source} "
            f"right after the failback switched writes to it, before replication {drill.source} -> "
            f"{drill.target} was restored, were never replicated (S3 does not replicate objects written "
            "before a replication rule exists). They are not lost from the primary, but a failover now "
            "would lose them: restore replication before switching writes (runbooks/dr-drill.md)"
        )
    return detail


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
