"""Pieces shared by failover and failback: data at risk, golden-set predictions, their types."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from mldr import http
from mldr.checks.replication_status import BacklogItem, ReplicationState, status_source
from mldr.errors import MldrError, RegionUnreachable
from mldr.runbooks.engine import Context

log = logging.getLogger(__name__)

AT_RISK_LISTED = 50


def new_operation_id(kind: str) -> str:
    return f"{kind}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, kw_only=True)
class AtRiskVersion:
    """A version written in the source whose replica is not in the other region."""

    bucket: str
    key: str
    version_id: str
    bytes: int
    age_seconds: float
    state: ReplicationState


@dataclass(frozen=True, kw_only=True)
class DataAtRisk:
    measured: Literal[True] = True
    objects: int
    bytes: int
    oldest_age_seconds: float
    failed: int
    keys: tuple[AtRiskVersion, ...]


@dataclass(frozen=True, kw_only=True)
class RiskUnknown:
    """The replication status could not be read: the data at risk is not known."""

    measured: Literal[False] = False
    reason: str


def data_at_risk(ctx: Context, source: str) -> DataAtRisk | RiskUnknown:
    """Versions written in `source` whose replica is not in the other region: what an
    unplanned failover would leave behind (until the source returns)."""
    statuses = status_source(ctx.topology, ctx.cloud)
    items: list[BacklogItem] = []
    try:
        for dataset in ctx.topology.datasets:
            items += statuses.backlog(region=source, bucket=dataset.buckets[source])
    except (RegionUnreachable, MldrError) as exc:
        return RiskUnknown(reason=f"replication status unavailable: {exc}")
    items.sort(key=lambda i: i.created_at)
    return DataAtRisk(
        objects=len(items),
        bytes=sum(i.size for i in items),
        oldest_age_seconds=round(items[0].age_seconds, 3) if items else 0.0,
        failed=sum(1 for i in items if i.state is ReplicationState.FAILED),
        keys=tuple(
            AtRiskVersion(
                bucket=i.bucket,
                key=i.key,
                version_id=i.version_id,
                bytes=i.size,
                age_seconds=round(i.age_seconds, 3),
                state=i.state,
            )
            for i in items
        ),
    )


def describe_risk(risk: DataAtRisk | RiskUnknown) -> str:
    if isinstance(risk, RiskUnknown):
        return f"data at risk unknown ({risk.reason})"
    if not risk.objects:
        return "no data at risk: every version is replicated"
    shown = ", ".join(f"{k.bucket}/{k.key}" for k in risk.keys[:5])
    more = f" and {risk.objects - 5} more" if risk.objects > 5 else ""
    return (
        f"DATA AT RISK: {risk.objects} object(s), {risk.bytes} bytes not replicated, oldest "
        f"{risk.oldest_age_seconds:.1f}s old: {shown}{more}"
    )


@dataclass(frozen=True, kw_only=True)
class GoldenPredictions:
    """The golden set's predictions as a client got them through the DNS name."""

    region: str | None
    model_version: str | None
    predictions: list[Any] | None
    served_by: str | None


@dataclass(frozen=True, kw_only=True)
class NoPrediction:
    """No baseline could be taken before the switch, and why."""

    error: str


def golden_predictions(ctx: Context, *, timeout: float = 5.0) -> GoldenPredictions:
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
    return GoldenPredictions(
        region=body.get("region"),
        model_version=body.get("model_version"),
        predictions=body.get("predictions"),
        served_by=response.headers.get("x-mldr-served-by"),
    )
