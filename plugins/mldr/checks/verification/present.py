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
    from mldr import reports as r

    parts = [
        r.table(
            [
                "dataset",
                "verdict",
                "objects",
                "missing",
                "extra",
                "mismatched",
                "pending",
                "failed",
                "source -> replica",
            ],
            [
                [
                    r.esc(d["name"]),
                    r.verdict(d["ok"]),
                    d["objects_checked"],
                    len(d["missing"]),
                    len(d["extra"]),
                    len(d["mismatched"]),
                    len(d["pending"]),
                    len(d["failed"]),
                    r.esc(f"s3://{d['source_bucket']} -> s3://{d['target_bucket']}"),
                ]
                for d in document["datasets"]
            ],
            raw=True,
        )
    ]
    for d in document["datasets"]:
        parts.append(f"<h2>{r.esc(d['name'])} {r.verdict(d['ok'])}</h2>")
        if d.get("error"):
            parts.append(f"<p class='bad'>{r.esc(d['error'])}</p>")
            continue
        problems = breach_lines(d)
        if problems:
            parts.append("<ul>" + "".join(f"<li>{r.esc(p)}</li>" for p in problems) + "</ul>")
        parts.append(
            f"<p>{d['objects_checked']} objects, {d['bytes_checked']} bytes, mode {r.esc(d['mode'])}, "
            f"pending threshold {d['threshold_seconds']:.0f}s, compared on: "
            f"{r.esc(', '.join(f'{k} {v}' for k, v in d['basis'].items()) or 'nothing')}</p>"
        )
        if d["findings"]:
            parts.append(
                r.table(
                    ["key", "class", "basis", "age (s)", "detail"],
                    [
                        [f["key"], f["class"], f["basis"], f["age_seconds"], f["detail"]]
                        for f in d["findings"]
                    ],
                )
            )
        restore = d.get("restore") or {}
        if restore.get("sampled"):
            parts.append(
                f"<p>Restore test: {restore['verified']} of {restore['sampled']} sampled objects "
                "downloaded from the replica and matched the primary's record.</p>"
            )
        for rp in d.get("recovery_points") or []:
            parts.append(
                f"<p>Model {r.esc(rp['model'])} {r.esc(rp['version'])}: <b>{r.esc(rp['state'])}</b></p>"
            )
            parts.append(
                r.table(
                    ["object", "dataset", "key", "state", "detail"],
                    [[o["role"], o["dataset"], o["key"], o["state"], o["detail"]] for o in rp["objects"]],
                )
            )
    title = f"Backup verification {'OK' if document['ok'] else 'FAILED'} - {document['topology']}"
    return r.page(title, "".join(parts))
