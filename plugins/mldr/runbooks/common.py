"""Pieces shared by failover and failback: operation ids, golden-set predictions, their types.

Data at risk has its own module, `mldr.runbooks.at_risk`.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from mldr import http
from mldr.errors import MldrError
from mldr.runbooks.engine import Context

log = logging.getLogger(__name__)


def new_operation_id(kind: str) -> str:
    return f"{kind}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:6]}"


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
