"""The steps failover and failback both run, and the result types both runbooks return.

A step that does the same thing in both runbooks is one function here, so its name (the DAG
task id, the record's key) means one piece of code.
"""

from __future__ import annotations

from dataclasses import dataclass

from mldr.actions import compute
from mldr.errors import MldrError
from mldr.runbooks.common import GoldenPredictions, NoPrediction, golden_predictions
from mldr.runbooks.engine import Context, result_from_fields, step


@dataclass(frozen=True, kw_only=True)
class ApprovalResult:
    approved_by: str
    required: bool


@step("record who approved", holds_lease=False)
def approval(ctx: Context) -> ApprovalResult:
    return ApprovalResult(approved_by=ctx.params.requested_by, required=ctx.params.require_approval)


@dataclass(frozen=True, kw_only=True)
class ScaleResult:
    capacity: int
    changed: bool
    seconds: float


@step("scale the target's compute to active capacity and wait until healthy")
def scale(ctx: Context) -> ScaleResult:
    result = compute.scale_to_active(ctx.cloud, ctx.topology, ctx.params.target_region)
    return result_from_fields(ScaleResult, result)


@dataclass(frozen=True, kw_only=True)
class VerifyResult:
    served_by: str | None
    model_version: str | None
    parity: bool | None  # None: no baseline was taken before the switch


def golden_set_unchanged(
    ctx: Context, *, target: str, baseline: GoldenPredictions | NoPrediction
) -> VerifyResult:
    """Predict the golden set through the DNS name: the target serves, with the answers of before."""
    after = golden_predictions(ctx)
    problems = []
    if after.region != target:
        problems.append(f"predictions come from {after.region}, not {target}")
    parity = None
    if isinstance(baseline, GoldenPredictions) and baseline.predictions is not None:
        parity = baseline.predictions == after.predictions and baseline.model_version == after.model_version
        if not parity:
            problems.append(
                f"golden set differs: before {baseline.model_version} {baseline.predictions}, "
                f"after {after.model_version} {after.predictions}"
            )
    if problems:
        raise MldrError("verify: " + "; ".join(problems))
    return VerifyResult(served_by=after.region, model_version=after.model_version, parity=parity)


@dataclass(frozen=True, kw_only=True)
class RecordResult:
    summary: str
    fencing_token: int
    completed_at: str
