"""What a person reads of a verification: the CloudWatch value, one line per problem (alerts,
the CLI), and the HTML report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mldr.checks.verification.model import DatasetVerification, Finding


def verification_metrics(result: DatasetVerification) -> dict[Any, float]:
    """The CloudWatch value of one dataset's verification (none when it could not run)."""
    from mldr.checks.metrics import Metric

    if result.error:
        return {}
    wrong = sum(
        len(result.keys(f)) for f in (Finding.MISSING, Finding.EXTRA, Finding.MISMATCHED, Finding.FAILED)
    )
    return {Metric.VERIFICATION_MISMATCHES: wrong}


def _listing(keys: list[str], limit: int = 10) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def breach_lines(dataset: Mapping[str, Any]) -> list[str]:
    """One line per problem of a dataset (from `DatasetVerification.to_dict()` or `.summary()`)."""
    name = dataset["name"]
    if dataset.get("error"):
        return [f"{name}: verification could not run: {dataset['error']}"]
    lines = []
    stale = {f["key"]: f for f in dataset.get("findings", []) if f.get("over_seconds")}
    for finding in (Finding.MISSING, Finding.MISMATCHED, Finding.EXTRA, Finding.FAILED):
        keys = dataset.get(finding.value) or []
        count = dataset.get(f"{finding.value}_count", len(keys))
        if not count:
            continue
        line = f"{name}: {count} {finding.value}: {_listing(keys)}"
        overs = [stale[k]["over_seconds"] for k in keys if k in stale]
        if overs:
            line += (
                f" (replication pending up to {max(overs):.0f}s over the "
                f"{dataset['threshold_seconds']:.0f}s threshold)"
            )
        lines.append(line)
    restore = dataset.get("restore_failures")
    if restore is None:
        restore = (dataset.get("restore") or {}).get("failures", [])
    if restore:
        lines.append(
            f"{name}: restore test failed for {len(restore)} object(s): "
            + "; ".join(f"{f['key']}: {f['error']}" for f in restore[:5])
        )
    retention = dataset.get("retention_problems")
    if retention is None:
        retention = (dataset.get("retention") or {}).get("problems", [])
    lines += [f"{name}: {p}" for p in retention]
    short = dataset.get("short_history_count")
    if short is None:
        short = len((dataset.get("retention") or {}).get("short_history", []))
    if short:
        lines.append(
            f"{name}: {short} key(s) keep fewer versions in the replica than the retention policy needs"
        )
    broken = dataset.get("broken_recovery_points")
    if broken is None:
        broken = [
            f"{rp['model']}/{rp['version']}"
            for rp in dataset.get("recovery_points") or []
            if rp["state"] == "broken"
        ]
    if broken:
        lines.append(
            f"{name}: {len(broken)} model version(s) cannot be served and retrained in "
            f"{dataset['target_region']}: {_listing(broken)}"
        )
    return lines


def render_html(document: Mapping[str, Any]) -> str:
    """The stored report's HTML page (templates/verification.html)."""
    from mldr.html import generated_at, render

    title = f"Backup verification {'OK' if document['ok'] else 'FAILED'} - {document['topology']}"
    problems = {d["name"]: breach_lines(d) for d in document["datasets"] if not d.get("error")}
    return render(
        "verification.html", title=title, generated=generated_at(), document=document, problems=problems
    )
