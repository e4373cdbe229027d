"""The result document of a logical-corruption drill: what was damaged, what detected it, what the
restore brought back (keys, bytes, time), whether both regions equal the recovery point exactly,
and the writes the restore gave up. The same envelope as a failover drill's (`document`), so
`publish`, the trend and the dashboard read it; the failover measures (RTO, RPO) are absent."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from mldr.checks.point_in_time import iso
from mldr.runbooks.drill.document import DOCUMENT_VERSION

if TYPE_CHECKING:
    from mldr.runbooks.drill.corruption import CorruptionDrill


def verdict(drill: CorruptionDrill) -> tuple[str, list[str]]:
    """pass when every region holds exactly the recovery point's dataset and serves its model."""
    failures = [
        f"{region}: the dataset is not the recovery point's: {diff.summary()}"
        for region, diff in drill.m.after.items()
        if not diff.exact
    ]
    failures += [
        f"{region}: the model is not the recovery point's: {problem}"
        for region, problem in drill.m.model_after.items()
        if problem
    ]
    if len(drill.m.after) < len(drill.topology.region_names):
        failures.append("the restore was not checked in every region")
    return ("fail" if failures else "pass"), failures


def corruption_document(drill: CorruptionDrill) -> dict[str, Any]:
    label, failures = verdict(drill)
    m, objectives = drill.m, drill.params.objectives(drill.topology)
    restored = m.restored
    time_to_restore = round(
        float(restored.get("seconds") or 0) + float(restored.get("model_seconds") or 0), 3
    )
    served = drill.model.version if drill.model else "?"
    reason = (
        failures[0]
        if failures
        else (
            f"both regions equal the recovery point of {iso(m.chosen_at)} exactly "
            f"({len(drill.snapshot)} keys, SHA-256 each) and serve {served}; restored in "
            f"{time_to_restore:.1f}s, {len(m.given_up)} write(s) given up"
        )
    )
    now = time.time()
    return {
        "kind": "mldr-dr-drill",
        "version": DOCUMENT_VERSION,
        "drill_id": drill.id,
        "scenario": drill.params.scenario.value,
        "topology": drill.topology.name,
        "sandbox": drill.topology.sandbox is not None,
        "source": drill.source,
        "target": drill.standby,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(drill.t0)),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "duration_seconds": round(now - drill.t0, 3),
        "params": drill.params.public(),
        "objectives": {
            "rto_seconds": objectives.rto_seconds,
            "rpo_seconds": objectives.rpo_seconds,
            "overridden": False,
        },
        "verdict": label,
        "verdict_reason": reason,
        "failed_criteria": failures,
        # a failover drill's measures: nothing failed over, no client lost its service
        "rto_seconds": None,
        "rpo_seconds": None,
        "lost_objects": None,
        "lost_after_failback": None,
        "failed_requests": None,
        "parity": all(problem is None for problem in m.model_after.values()) if m.model_after else None,
        "restore": {
            "dataset": drill.dataset.name,
            "prefix": drill.prefix,
            "recovery_point": {
                "at": iso(m.chosen_at),
                "keys": len(drill.snapshot),
                "model": drill.model.model if drill.model else None,
                "model_version": drill.model.version if drill.model else None,
            },
            "damage": {
                "at": iso(m.damage_at) if m.damage_at else None,
                "overwritten": m.overwritten,
                "deleted": m.deleted,
                "broken_version": m.broken_version or None,
            },
            "detected": m.detected,
            "keys_reverted": restored.get("reverted"),
            "keys_deleted": restored.get("deleted"),
            "bytes_restored": restored.get("bytes"),
            "dataset_seconds": restored.get("seconds"),
            "model_seconds": restored.get("model_seconds"),
            "time_to_restore_seconds": time_to_restore if restored else None,
            "exact": {
                region: {
                    "exact": diff.exact,
                    "missing": list(diff.missing),
                    "extra": list(diff.extra),
                    "different": list(diff.different),
                }
                for region, diff in m.after.items()
            },
            "model_after": dict(m.model_after),
            "given_up": [
                {
                    "key": w.key,
                    "version_id": w.version_id,
                    "written_at": iso(w.modified),
                    "bytes": w.size,
                    "delete_marker": w.deleted,
                }
                for w in m.given_up
            ],
        },
        "steps": {kind: record.step_seconds() for kind, record in drill.records.items()},
        "phases": drill.durations,
        "operations": {kind: record.id for kind, record in drill.records.items()},
        "events": {name: round(at, 3) for name, at in sorted(drill.events.items(), key=lambda kv: kv[1])},
        "transitions": [],
        "notes": drill.notes,
        "timeline": {"t0": drill.t0, "requests": [], "canaries": []},
    }
