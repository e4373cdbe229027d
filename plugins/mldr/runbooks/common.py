"""Pieces shared by failover and failback: parameters, data at risk, golden-set parity."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import httpx

from mldr import http
from mldr.checks.replication_status import BacklogItem, ReplicationState, status_source
from mldr.errors import ConfigurationError, MldrError, RegionUnreachable
from mldr.runbooks.engine import Context

log = logging.getLogger(__name__)

MIN_REASON = 10
AT_RISK_LISTED = 50


class Mode(StrEnum):
    PLANNED = "planned"
    UNPLANNED = "unplanned"


class AlreadyDone(MldrError):
    """Nothing to do: the target is already active. Not an error for the caller (exit 0)."""

    exit_code = 0


@dataclass(frozen=True)
class OperationParams:
    kind: str  # failover | failback
    target_region: str
    mode: Mode
    reason: str
    requested_by: str
    dry_run: bool = False
    force: bool = False
    require_approval: bool = True
    drain_timeout_seconds: float = 300.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mode"] = self.mode.value
        return data


def validate_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if len(text) < MIN_REASON:
        raise ConfigurationError(
            f"reason must say why, in at least {MIN_REASON} characters (got {len(text)}): "
            "it goes into the audit record"
        )
    return text


def validate_mode(mode: str) -> Mode:
    try:
        return Mode(mode)
    except ValueError:
        raise ConfigurationError(f"mode must be planned or unplanned, not {mode!r}") from None


def new_operation_id(kind: str) -> str:
    return f"{kind}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:6]}"


def data_at_risk(ctx: Context, source: str) -> dict[str, Any]:
    """Versions written in `source` whose replica is not in the other region: what an
    unplanned failover would leave behind (until the source returns)."""
    statuses = status_source(ctx.topology, ctx.cloud)
    items: list[BacklogItem] = []
    try:
        for dataset in ctx.topology.datasets:
            items += statuses.backlog(region=source, bucket=dataset.buckets[source])
    except (RegionUnreachable, MldrError) as exc:
        return {"measured": False, "reason": f"replication status unavailable: {exc}"}
    items.sort(key=lambda i: i.created_at)
    return {
        "measured": True,
        "objects": len(items),
        "bytes": sum(i.size for i in items),
        "oldest_age_seconds": round(items[0].age_seconds, 3) if items else 0.0,
        "failed": sum(1 for i in items if i.state is ReplicationState.FAILED),
        "keys": [
            {
                "bucket": i.bucket,
                "key": i.key,
                "version_id": i.version_id,
                "bytes": i.size,
                "age_seconds": round(i.age_seconds, 3),
                "state": i.state.value,
            }
            for i in items
        ],
    }


def describe_risk(risk: dict[str, Any]) -> str:
    if not risk.get("measured"):
        return f"data at risk unknown ({risk.get('reason')})"
    if not risk["objects"]:
        return "no data at risk: every version is replicated"
    shown = ", ".join(f"{k['bucket']}/{k['key']}" for k in risk["keys"][:5])
    more = f" and {risk['objects'] - 5} more" if risk["objects"] > 5 else ""
    return (
        f"DATA AT RISK: {risk['objects']} object(s), {risk['bytes']} bytes not replicated, oldest "
        f"{risk['oldest_age_seconds']:.1f}s old: {shown}{more}"
    )


def golden_predictions(ctx: Context, *, timeout: float = 5.0) -> dict[str, Any]:
    """Predictions for the fixed golden set through the DNS name, as a client gets them."""
    from mldr.ml.golden import golden_set

    url = ctx.topology.inference.client_url.rstrip("/") + "/predict"
    try:
        response = http.post(url, json={"instances": golden_set()}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise MldrError(f"{url}: no answer within {timeout:g}s ({type(exc).__name__})") from exc
    if response.status_code != 200:
        raise MldrError(f"{url}: HTTP {response.status_code}: {response.text[:200]}")
    body = response.json()
    return {
        "region": body.get("region"),
        "model_version": body.get("model_version"),
        "predictions": body.get("predictions"),
        "served_by": response.headers.get("x-mldr-served-by"),
    }
