"""Failover: move the ML service and its data to the other region.

preflight -> approval -> fence -> drain -> scale -> switch -> protect -> verify -> record,
as DESIGN.md describes. Planned mode fences writes on the source and drains replication
(RPO 0); unplanned mode (the source is impaired) skips the drain and records exactly which
versions were not replicated.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from mldr.actions import compute, fencing, replication, traffic, write_fence
from mldr.checks.health import region_health, s3_reachable
from mldr.checks.replication_status import status_source
from mldr.cloud.control import Operation, now_iso
from mldr.errors import FailoverPreconditionFailed, LeaseHeld, MldrError, RegionUnreachable
from mldr.runbooks.common import (
    AlreadyDone,
    Mode,
    data_at_risk,
    describe_risk,
    golden_predictions,
)
from mldr.runbooks.engine import Context, Step

log = logging.getLogger(__name__)


def _source(ctx: Context) -> str:
    return str(ctx.record.result("preflight")["source"])


def _target(ctx: Context) -> str:
    return str(ctx.params["target_region"])


def preflight(ctx: Context) -> dict[str, Any]:
    topology, target = ctx.topology, _target(ctx)
    topology.require_region(target)
    mode = Mode(ctx.params["mode"])
    lease = ctx.control.read_lease()
    if lease.operation is not None and lease.operation.id != ctx.record.id:
        raise LeaseHeld(f"the DR lease is held by {fencing.describe_holder(lease.operation)}")
    if lease.active_region == target and lease.operation is None:
        raise AlreadyDone(
            f"{target} is already the active region (fencing token {lease.fencing_token}); nothing to do"
        )
    source = lease.active_region
    problems: list[str] = []
    health = region_health(ctx.cloud, topology, target)
    if not health.healthy:
        problems.append(f"target {health.summary()}")
    # Planned mode must know the source answers now; unplanned mode says it does not, so a
    # region found silent moments ago (by the audit log, say) is not waited for again.
    source_ok, why = s3_reachable(ctx.factory, topology, source, recheck=mode is Mode.PLANNED)
    if mode is Mode.PLANNED and not source_ok:
        raise FailoverPreconditionFailed(
            f"planned failover needs the source {source} reachable to fence and drain it, but: {why}. "
            "If the region is down, fail over in unplanned mode (--mode unplanned)."
        )
    risk = data_at_risk(ctx, source)
    if source_ok:
        try:
            baseline = golden_predictions(ctx, timeout=3.0)
        except MldrError as exc:
            baseline = {"error": f"no prediction through the DNS name before the switch: {exc}"}
    else:  # the DNS name may still lead to the silent source: no baseline to wait for
        baseline = {"error": f"no baseline: the source does not answer ({why})"}
    forced = False
    if problems:
        if not ctx.params.get("force"):
            raise FailoverPreconditionFailed(
                "preflight failed: " + "; ".join(problems) + ". Fix it, or pass force to override (recorded)."
            )
        forced = True
        ctx.say("  preflight problems OVERRIDDEN by force: " + "; ".join(problems))
    ctx.say(f"  {source} -> {target} ({mode.value}); {describe_risk(risk)}")
    return {
        "source": source,
        "target": target,
        "mode": mode.value,
        "token_before": lease.fencing_token,
        "target_health": health.summary(),
        "source_reachable": source_ok,
        "data_at_risk": risk,
        "baseline": baseline,
        "forced": forced,
        "problems": problems,
        "plan": [f"{s.name}: {s.description}" for s in STEPS],
    }


def approval(ctx: Context) -> dict[str, Any]:
    return {
        "approved_by": ctx.params.get("approved_by") or ctx.params.get("requested_by"),
        "required": bool(ctx.params.get("require_approval")),
    }


def fence(ctx: Context) -> dict[str, Any]:
    source, target = _source(ctx), _target(ctx)
    p = ctx.params
    op = Operation(
        id=ctx.record.id,
        kind="failover",
        source=source,
        target=target,
        mode=p["mode"],
        started_by=p["requested_by"],
        reason=p["reason"],
        started_at=ctx.record.created_at,
        step="fence",
        force=bool(p.get("force")),
    )
    lease = fencing.take(ctx.control, op)
    fenced: list[str] = []
    if p["mode"] == Mode.PLANNED.value:
        s3 = ctx.factory.client("s3", source)
        for dataset in ctx.topology.datasets:
            write_fence.fence(s3, dataset.buckets[source], source)
            fenced.append(dataset.buckets[source])
        lease = fencing.update(
            ctx.control, ctx.record.id, fenced_regions=tuple({*lease.fenced_regions, source})
        )
    return {"fencing_token": lease.fencing_token, "fenced_buckets": fenced, "fenced_at": time.time()}


def drain(ctx: Context) -> dict[str, Any]:
    source = _source(ctx)
    if ctx.params["mode"] == Mode.UNPLANNED.value:
        risk = data_at_risk(ctx, source)
        ctx.say(f"  unplanned: no drain. {describe_risk(risk)}")
        return {"drained": False, "data_at_risk": risk}
    fenced_at = float(ctx.record.result("fence")["fenced_at"])
    timeout = float(ctx.params.get("drain_timeout_seconds", 300.0))
    statuses = status_source(ctx.topology, ctx.factory)
    started = time.monotonic()
    first: int | None = None
    while True:
        waiting = [
            item
            for dataset in ctx.topology.datasets
            for item in statuses.backlog(region=source, bucket=dataset.buckets[source])
            if item.created_at <= fenced_at + 1.0
        ]
        first = len(waiting) if first is None else first
        if not waiting:
            break
        failed = [i for i in waiting if i.state.value == "FAILED"]
        if failed:
            keys = ", ".join(f"{i.bucket}/{i.key}" for i in failed[:5])
            raise MldrError(
                f"drain: {len(failed)} version(s) FAILED to replicate ({keys}); repair replication or fail "
                "over unplanned, accepting the loss (recorded)"
            )
        elapsed = time.monotonic() - started
        if elapsed > timeout:
            raise MldrError(f"drain: {len(waiting)} version(s) still not replicated after {timeout:.0f}s")
        log.info("drain: %d of %d version(s) still replicating (%.0fs)", len(waiting), first, elapsed)
        time.sleep(0.25)
    return {"drained": True, "waited_for": first, "seconds": round(time.monotonic() - started, 3)}


def scale(ctx: Context) -> dict[str, Any]:
    return compute.scale_to_active(ctx.cloud, ctx.topology, _target(ctx))


def switch(ctx: Context) -> dict[str, Any]:
    target = _target(ctx)
    result = traffic.switch(ctx.cloud, ctx.topology, target)
    lease = fencing.update(ctx.control, ctx.record.id, active_region=target)
    return {**result, "active_region": lease.active_region, "switched_at": time.time()}


def protect(ctx: Context) -> dict[str, Any]:
    source, target = _source(ctx), _target(ctx)
    result = replication.set_direction(ctx.factory, ctx.topology, source=target, target=source)
    try:
        with ctx.factory.silent.guard(source):
            result["source_scaled_to_standby"] = compute.scale_to_standby(ctx.cloud, ctx.topology, source)
    except RegionUnreachable as exc:
        result["source_scaled_to_standby"] = f"pending: {exc}"
    return result


def verify(ctx: Context) -> dict[str, Any]:
    target = _target(ctx)
    baseline = ctx.record.result("preflight").get("baseline", {})
    after = golden_predictions(ctx)
    problems = []
    if after["region"] != target:
        problems.append(f"predictions come from {after['region']}, not {target}")
    parity = None
    if baseline.get("predictions") is not None:
        parity = (
            baseline["predictions"] == after["predictions"]
            and baseline["model_version"] == after["model_version"]
        )
        if not parity:
            problems.append(
                f"golden set differs: before {baseline['model_version']} {baseline['predictions']}, "
                f"after {after['model_version']} {after['predictions']}"
            )
    if problems:
        raise MldrError("verify: " + "; ".join(problems))
    return {"served_by": after["region"], "model_version": after["model_version"], "parity": parity}


def record(ctx: Context) -> dict[str, Any]:
    from mldr.runbooks.notify import notify

    summary = summarize(ctx)
    notify(ctx.cloud, ctx.topology, subject=f"mldr failover to {_target(ctx)} completed", message=summary)
    ctx.control.put_record(
        "last-failover",
        {
            "operation_id": ctx.record.id,
            "started_epoch": ctx.record.created_epoch,
            "target": _target(ctx),
            "source": _source(ctx),
        },
    )
    lease = fencing.release(ctx.control, ctx.record.id)
    return {"summary": summary, "fencing_token": lease.fencing_token, "completed_at": now_iso()}


def summarize(ctx: Context) -> str:
    pre = ctx.record.result("preflight")
    risk = ctx.record.result("drain").get("data_at_risk") or pre.get("data_at_risk", {})
    lines = [
        f"failover {ctx.record.id}: {pre.get('source')} -> {_target(ctx)} ({ctx.params['mode']})",
        f"by {ctx.params['requested_by']}: {ctx.params['reason']}",
        f"fencing token {ctx.record.result('fence').get('fencing_token')}",
        describe_risk(risk) if ctx.params["mode"] == Mode.UNPLANNED.value else "planned: drained, RPO 0",
    ]
    if pre.get("forced"):
        lines.append("PREFLIGHT OVERRIDDEN BY FORCE: " + "; ".join(pre.get("problems", [])))
    return "\n".join(lines)


STEPS: list[Step] = [
    Step(
        "preflight", "check the target, the source and the replication backlog", preflight, holds_lease=False
    ),
    Step("approval", "record who approved", approval, holds_lease=False),
    Step(
        "fence",
        "take the DR lease (token + 1); planned: deny writes on the source buckets",
        fence,
        holds_lease=False,
    ),
    Step("drain", "planned: wait for replication to catch up; unplanned: measure data at risk", drain),
    Step("scale", "scale the target's compute to active capacity and wait until healthy", scale),
    Step("switch", "make the target PRIMARY in Route 53 and confirm the DNS answer", switch),
    Step("protect", "replicate target -> source from now on", protect),
    Step("verify", "predict the golden set through the DNS name: target serves, same answers", verify),
    Step("record", "audit, notify, release the lease", record),
]
