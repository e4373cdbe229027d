"""What every check run leaves behind: its report in both regions and each dataset's metrics.

Here, not in `mldr.reports`: reports store and read documents and publish nothing; the check's
caller (the CLI, an Airflow task) decides that its metrics go out too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mldr.cloud import Cloud
from mldr.reports import report_name, store_report
from mldr.topology import Topology


def keep_check_results(
    cloud: Cloud,
    topology: Topology,
    *,
    kind: str,
    label: str,
    document: dict[str, Any],
    html: str,
    metrics: Mapping[str, Mapping[Any, float]],
) -> dict[str, str]:
    """Store the report in both regions and publish each dataset's metrics.
    Returns {region: URI of the JSON report}."""
    from mldr.checks.metrics import publish

    uris = store_report(cloud, topology, kind=kind, name=report_name(label), document=document, html=html)
    for dataset, values in metrics.items():
        publish(cloud, topology, dataset=dataset, values=values)
    return uris
