"""Keeping a drill's report: the summary (CLI `--json`, XCom), the HTML page with the trend
across earlier drills, stored in both regions' ops buckets."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from mldr.cloud import Cloud
from mldr.errors import MldrError
from mldr.topology import Topology

log = logging.getLogger(__name__)

REPORT_KIND = "drill"


SUMMARY_FIELDS = (
    "drill_id",
    "scenario",
    "source",
    "target",
    "verdict",
    "verdict_reason",
    "failed_criteria",
    "rto_seconds",
    "rpo_seconds",
    "lost_objects",
    "lost_after_failback",
    "failed_requests",
    "parity",
    "objectives",
    "detection",
    "steps",
    "duration_seconds",
    "report",
    "reports",
    "restore",  # a logical-corruption drill's measures
)


def summary(document: Mapping[str, Any]) -> dict[str, Any]:
    """The small part of the document: CLI `--json`, XCom, the demo's table."""
    return {k: document.get(k) for k in SUMMARY_FIELDS if k in document}


def publish(
    topology: Topology,
    cloud: Cloud,
    document: dict[str, Any],
    *,
    local_dir: str | os.PathLike[str] | None = None,
    history: int = 20,
) -> dict[str, Any]:
    """Render the report (with the trend across earlier drills), store it in both regions'
    ops buckets, and write it under `local_dir` when given. Returns the document with
    `reports` (region -> s3 URI of the HTML page) and `report` (the local HTML path) set."""
    from pathlib import Path

    from mldr import reports
    from mldr.runbooks.drill.report import render_html

    try:
        earlier = [r.document for r in reports.latest_reports(cloud, topology, REPORT_KIND, limit=history)]
    except MldrError as exc:
        log.warning("earlier drill reports not readable, the trend shows this drill only: %s", exc)
        earlier = []
    name = reports.report_name(f"{document['scenario']}-{_short(document['drill_id'])}")
    html_key = reports.report_key(REPORT_KIND, name, "html")
    document = {
        **document,
        "report_name": name,
        "reports": {r: f"s3://{topology.region(r).ops_bucket}/{html_key}" for r in topology.region_names},
    }
    html_path = Path(local_dir) / f"{name}.html" if local_dir is not None else None
    if html_path is not None:
        document["report"] = str(html_path)
    page = render_html(document, earlier)
    stored = reports.store_report(cloud, topology, kind=REPORT_KIND, name=name, document=document, html=page)
    document["reports"] = {region: reports.html_uri(uri) for region, uri in stored.items()}
    if html_path is not None:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(page)
        html_path.with_suffix(".json").write_text(_json(document))
    return document


def _short(drill_id: str) -> str:
    """The random tail of a CLI drill id, or a short digest of a DAG-run-derived one."""
    import hashlib
    import re

    tail = drill_id[-6:]
    return tail if re.fullmatch(r"[0-9a-f]{6}", tail) else hashlib.sha256(drill_id.encode()).hexdigest()[:6]


def _json(document: Mapping[str, Any]) -> str:
    import json

    return json.dumps(document, indent=2, default=str)
