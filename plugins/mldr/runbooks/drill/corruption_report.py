"""The logical-corruption drill's report page and summary table (a failover drill's are in `report`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mldr.html import generated_at, render


def _value(value: Any, unit: str = "") -> str:
    return "n/a" if value is None else f"{value}{unit}"


def measures(restore: Mapping[str, Any]) -> list[list[str]]:
    """measure, measured: what the restore brought back and how long it took."""
    point = restore.get("recovery_point") or {}
    return [
        ["restored to (the recovery point)", _value(point.get("at"))],
        ["keys reverted (copied back)", _value(restore.get("keys_reverted"))],
        ["keys deleted (written after it)", _value(restore.get("keys_deleted"))],
        ["bytes restored", _value(restore.get("bytes_restored"))],
        ["time to restore the dataset", _value(restore.get("dataset_seconds"), " s")],
        [
            "time to roll the model back (until both regions serve it)",
            _value(restore.get("model_seconds"), " s"),
        ],
        ["time to restore in all", _value(restore.get("time_to_restore_seconds"), " s")],
        ["writes given up (listed below)", str(len(restore.get("given_up") or []))],
    ]


def _exact(entry: Mapping[str, Any]) -> str:
    if entry.get("exact"):
        return "identical"
    parts = [f"{len(entry.get(k) or [])} {k}" for k in ("missing", "extra", "different") if entry.get(k)]
    return "DIFFERENT: " + ", ".join(parts)


def render_restore_html(document: Mapping[str, Any]) -> str:
    restore: Mapping[str, Any] = document.get("restore") or {}
    damage = restore.get("damage") or {}
    detected = restore.get("detected") or {}
    model = detected.get("model") or {}
    return render(
        "drill_restore_report.html",
        title=f"DR drill {document.get('scenario')}: {str(document.get('verdict', 'fail')).upper()}",
        generated=generated_at(),
        doc=document,
        r=restore,
        verdict=str(document.get("verdict", "fail")),
        duration=_value(document.get("duration_seconds"), " s"),
        measures=measures(restore),
        exact_rows=[
            [region, _exact(entry), (restore.get("model_after") or {}).get(region) or "the recovery point's"]
            for region, entry in (restore.get("exact") or {}).items()
        ],
        damage_rows=[
            ["bad run at", _value(damage.get("at"))],
            [
                "keys overwritten / deleted",
                f"{len(damage.get('overwritten') or [])} / {len(damage.get('deleted') or [])}",
            ],
            ["broken model version registered", _value(damage.get("broken_version"))],
            ["replicated to the standby after", _value(detected.get("replicated_after_seconds"), " s")],
            ["detected in the standby: dataset", _value((detected.get("dataset") or {}).get("summary"))],
            ["detected in the standby: model", _value(model.get("summary"))],
            [
                "nightly verification of the model's recovery point",
                _value((detected.get("verification") or {}).get("state")),
            ],
        ],
        given_up=[
            [g["key"], g["written_at"], g["bytes"], "delete marker" if g["delete_marker"] else "version"]
            for g in restore.get("given_up") or []
        ],
        steps=[
            [kind, step, f"{seconds:.2f}"]
            for kind, durations in (document.get("steps") or {}).items()
            for step, seconds in durations.items()
        ],
    )


def format_restore_summary(summary: Mapping[str, Any]) -> str:
    """The table `mldr drill --scenario logical-corruption` prints."""
    restore: Mapping[str, Any] = summary.get("restore") or {}
    rows = [["measure", "measured"], *measures(restore)]
    rows += [
        [f"equal to the recovery point in {r}", _exact(e)] for r, e in (restore.get("exact") or {}).items()
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"DR drill {summary.get('drill_id')}: {summary.get('scenario')}, in {summary.get('source')}"]
    lines += [f"  {a.ljust(width)}  {b}" for a, b in rows]
    lines += [f"    given up: {g['key']} ({g['written_at']})" for g in (restore.get("given_up") or [])[:10]]
    lines.append(f"  verdict: {str(summary.get('verdict', '?')).upper()} - {summary.get('verdict_reason')}")
    if summary.get("report_url"):
        lines.append(f"  open:    {summary.get('report_url')}")
    if summary.get("report"):
        lines.append(f"  report:  {summary.get('report')}")
    for region, uri in (summary.get("reports") or {}).items():
        lines.append(f"  stored:  {uri} ({region})")
    return "\n".join(lines)
