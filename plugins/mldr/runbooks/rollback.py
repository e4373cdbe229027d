"""Model rollback: serve an earlier model version again, with its recovery point restored.

rollback_preflight -> approval -> in_place_lease -> rollback_apply -> rollback_verify -> rollback_record.
For a broken model a bad run registered (CURRENT moved to it) and the objects of the good
version it overwrote or deleted: the version to serve is named, or is the one CURRENT named at a
time; its recovery point's objects come back from the version history (checked by SHA-256), then
CURRENT names it. Verified through each region's inference endpoint: both serve the version,
with the same golden-set predictions (parity). Under the DR lease like a restore.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from mldr import http
from mldr.actions import fencing
from mldr.actions.model_rollback import apply_model_rollback
from mldr.checks.model_rollback import ModelRollbackPlan, plan_model_rollback
from mldr.cloud.control import now_iso
from mldr.errors import ConfigurationError, MldrError
from mldr.runbooks.engine import Context, Runbook, step
from mldr.runbooks.params import RollbackTarget
from mldr.runbooks.shared_steps import RecordResult, approval, in_place_lease, refuse_if_leased

#: How long the inference servers get to load the version (they re-read CURRENT every few
#: seconds; the standby's copy arrives by replication first).
PICK_UP_SECONDS = 90.0


def _target(ctx: Context) -> RollbackTarget:
    if ctx.params.rollback is None:
        raise ConfigurationError(f"operation {ctx.record.id} is a rollback without a model")
    return ctx.params.rollback


def _plan(ctx: Context, region: str, version: str | None = None) -> ModelRollbackPlan:
    target = _target(ctx)
    return plan_model_rollback(
        ctx.cloud,
        ctx.topology,
        region=region,
        model=target.model,
        version=version or target.version,
        at=None if (version or target.version) else target.at,
    )


@dataclass(frozen=True, kw_only=True)
class RollbackPlanResult:
    region: str
    version: str
    serving: str | None
    bring_back: tuple[str, ...]
    summary: str


@step("find the version to serve and what of its recovery point must come back", holds_lease=False)
def rollback_preflight(ctx: Context) -> RollbackPlanResult:
    lease = refuse_if_leased(ctx)
    plan = _plan(ctx, lease.active_region)
    ctx.say(f"  {plan.summary()}")
    return RollbackPlanResult(
        region=plan.region,
        version=plan.version,
        serving=plan.serving,
        bring_back=tuple(f"{r.dataset}/{r.key}" for r in plan.reverts),
        summary=plan.summary(),
    )


@dataclass(frozen=True, kw_only=True)
class RollbackApplyResult:
    brought_back: int
    version: str


@step("bring the recovery point back (checksummed), then point CURRENT at the version")
def rollback_apply(ctx: Context) -> RollbackApplyResult:
    planned = ctx.result(rollback_preflight)
    plan = _plan(ctx, planned.region, version=planned.version)  # again: a resumed run skips what is back
    brought_back = apply_model_rollback(ctx.cloud, ctx.topology, plan)
    return RollbackApplyResult(brought_back=brought_back, version=plan.version)


def _served(url: str) -> dict[str, Any] | None:
    from mldr.ml.golden import golden_set

    try:
        response = http.post(url.rstrip("/") + "/predict", json={"instances": golden_set()}, timeout=5.0)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]


@dataclass(frozen=True, kw_only=True)
class RollbackVerifyResult:
    serving: dict[str, str]  # region -> version it serves ("no answer" for a standby with no capacity)
    parity: bool


@step("each region's inference serves the version, with the same golden-set predictions")
def rollback_verify(ctx: Context) -> RollbackVerifyResult:
    version, active = ctx.result(rollback_apply).version, ctx.result(rollback_preflight).region
    deadline = time.monotonic() + PICK_UP_SECONDS
    answers: dict[str, dict[str, Any] | None] = {}
    while True:
        answers = {r: _served(ctx.topology.region(r).endpoint_url) for r in ctx.topology.region_names}
        picked = all(
            a is None or a.get("model_version") == version for r, a in answers.items() if r != active
        )
        if (answers[active] or {}).get("model_version") == version and picked:
            break
        if time.monotonic() > deadline:
            seen = {r: (a or {}).get("model_version", "no answer") for r, a in answers.items()}
            raise MldrError(
                f"rollback verify: not every region serves {version} after {PICK_UP_SECONDS:.0f}s: {seen}"
            )
        time.sleep(1.0)
    predictions = [a["predictions"] for a in answers.values() if a is not None]
    parity = all(p == predictions[0] for p in predictions)
    if not parity:
        raise MldrError(f"rollback verify: the regions serve {version} with different golden-set predictions")
    return RollbackVerifyResult(
        serving={r: (a or {}).get("model_version", "no answer") for r, a in answers.items()}, parity=parity
    )


@step("audit, notify, release the lease")
def rollback_record(ctx: Context) -> RecordResult:
    from mldr.runbooks.notify import notify

    planned, target = ctx.result(rollback_preflight), _target(ctx)
    summary = (
        f"rollback {ctx.record.id}: {target.model} serves {planned.version} again (was {planned.serving}); "
        f"{len(planned.bring_back)} recovery-point object(s) brought back\n"
        f"by {ctx.params.requested_by}: {ctx.params.reason}\n"
        f"undo: mldr restore --model {target.model} --version {planned.serving}"
    )
    notify(ctx.cloud, ctx.topology, subject=f"mldr rollback of {target.model} completed", message=summary)
    lease = fencing.release(ctx.control, ctx.record.id)
    return RecordResult(summary=summary, fencing_token=lease.fencing_token, completed_at=now_iso())


RUNBOOK = Runbook(
    kind="rollback",
    steps=(rollback_preflight, approval, in_place_lease, rollback_apply, rollback_verify, rollback_record),
)
STEPS = RUNBOOK.steps
