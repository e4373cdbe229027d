"""The DR dashboard page: server-rendered HTML with inline SVG plots, no JavaScript.

It is shown inside the Airflow UI (an iframe under the top navigation), so links to Airflow pages
are relative to the Airflow base URL and open in the top window; stored reports open in a new tab.
Every value is escaped; element ids and `data-*` attributes name what a value is, for people
reading the source and for the browser test.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from mldr.airflow.dashboard.data import (
    PLOT_HOURS,
    Dashboard,
    DatasetStatus,
    DrillStatus,
    OperationView,
    ReportLink,
    Series,
)

REFRESH_SECONDS = 30
#: The DAGs a DR owner opens from here.
DAG_LINKS = (
    ("dr_failover", "Fail over"),
    ("dr_failback", "Fail back"),
    ("dr_drill", "Drill"),
    ("dr_backup_verification", "Backup verification"),
    ("dr_replication_lag", "Replication lag"),
    ("ml_training_pipeline", "ML training pipeline"),
)

_STYLE = """
:root{--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--muted:#57606a;--line:#d0d7de;--bg:#f6f8fa;
  --accent:#0969da}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;padding:1.25rem 1.5rem;
  color:#1f2328;background:#fff;font-size:14px}
h1{font-size:1.35rem;margin:0 0 .25rem}
h2{font-size:1.05rem;margin:1.6rem 0 .5rem}
a{color:var(--accent)}
.muted{color:var(--muted)}
.ok{color:var(--ok);font-weight:600}
.bad{color:var(--bad);font-weight:600}
.warn{color:var(--warn);font-weight:600}
table{border-collapse:collapse;width:100%;margin:.25rem 0}
td,th{border-bottom:1px solid var(--line);padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600;font-size:.85rem}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.tiles{display:flex;flex-wrap:wrap;gap:.75rem;margin:.75rem 0}
.tile{border:1px solid var(--line);border-radius:8px;padding:.6rem .9rem;min-width:11rem;
  background:var(--bg)}
.tile .label{font-size:.75rem;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.tile .value{font-size:1.5rem;font-weight:650;margin-top:.15rem}
.banner{border-radius:8px;padding:.6rem .9rem;margin:.75rem 0;border:1px solid}
.banner.op{background:#fff8c5;border-color:#d4a72c}
.banner.err{background:#ffebe9;border-color:#ff8182}
.steps{display:flex;flex-wrap:wrap;gap:.25rem;margin-top:.4rem}
.step{font-size:.78rem;padding:.1rem .45rem;border-radius:10px;border:1px solid var(--line);
  background:#fff}
.step.done{background:#dafbe1;border-color:#4ac26b}
.step.running{background:#fff8c5;border-color:#d4a72c;font-weight:700}
.step.failed{background:#ffebe9;border-color:#ff8182;font-weight:700}
.charts{display:flex;flex-wrap:wrap;gap:1rem}
.chart{border:1px solid var(--line);border-radius:8px;padding:.5rem .6rem}
.chart h3{font-size:.85rem;margin:0 0 .3rem}
svg text{font-size:10px;fill:#57606a;font-family:inherit}
code{font-size:.8rem}
"""

ICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
    'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M12 2 4 5v6c0 5 3.4 9.3 8 11 '
    '4.6-1.7 8-6 8-11V5l-8-3z"/><path d="M8 12h2l1.5-3 2 6 1.5-3h1"/></svg>'
)


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


# --- formatting ---------------------------------------------------------------------------


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 10:
        return f"{value:.2f} s"
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def fmt_bytes(value: float) -> str:
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def fmt_time(iso: str | None, now: datetime) -> str:
    if not iso:
        return "n/a"
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return esc(iso)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    ago = (now - when).total_seconds()
    return (
        f'<time datetime="{esc(when.isoformat())}">{when:%Y-%m-%d %H:%M:%S} UTC</time> '
        f'<span class="muted">({fmt_seconds(max(ago, 0))} ago)</span>'
    )


def verdict(ok: bool | None, good: str = "OK", bad: str = "FAILED") -> str:
    if ok is None:
        return '<span class="muted">n/a</span>'
    return f'<span class="ok">{good}</span>' if ok else f'<span class="bad">{bad}</span>'


def table(headers: Sequence[str], rows: Iterable[str], *, numeric: Iterable[int] = ()) -> str:
    nums = set(numeric)
    head = "".join(f"<th{' class=num' if i in nums else ''}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join(rows)
    if not body:
        body = f'<tr><td colspan="{len(headers)}" class="muted">nothing recorded yet</td></tr>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --- links --------------------------------------------------------------------------------


def dag_link(dag_id: str | None, text: str, run_id: str | None = None) -> str:
    """A link into the Airflow UI (relative to the Airflow base URL; the page is /<base>/mldr/)."""
    if not dag_id:
        return esc(text)
    href = f"../dags/{quote(dag_id, safe='')}"
    href += f"/runs/{quote(run_id, safe='')}" if run_id else "/runs"
    return f'<a href="{esc(href)}" target="_top">{esc(text)}</a>'


def report_links(link: ReportLink) -> str:
    parts = [
        f'<a href="reports/{quote(link.kind, safe="")}/{quote(link.name, safe="")}" target="_blank" '
        f'rel="noopener" title="stored in {esc(", ".join(link.regions))}">report</a>'
    ]
    if link.run_id:
        parts.append(dag_link(link.dag_id, "DAG run", link.run_id))
    return " · ".join(parts)


# --- plots --------------------------------------------------------------------------------


def line_chart(
    series: Series,
    *,
    start: float,
    end: float,
    title: str,
    unit: str = "",
    threshold: float | None = None,
    threshold_label: str = "",
    width: int = 340,
    height: int = 110,
    chart_id: str = "",
) -> str:
    """An inline SVG line plot of `series` over [start, end], with an optional threshold line."""
    pad_left, pad_right, pad_top, pad_bottom = 34, 8, 8, 16
    plot_w, plot_h = width - pad_left - pad_right, height - pad_top - pad_bottom
    values = [v for _, v in series.points]
    top = max([*values, threshold or 0.0, 1.0]) * 1.15  # at least 1: an all-zero backlog is a flat line
    span = max(end - start, 1.0)

    def x(t: float) -> float:
        return pad_left + (min(max(t, start), end) - start) / span * plot_w

    def y(v: float) -> float:
        return pad_top + plot_h - (v / top) * plot_h

    id_attr = f' id="{esc(chart_id)}"' if chart_id else ""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'viewBox="0 0 {width} {height}"{id_attr} '
        f'data-points="{len(values)}"><title>{esc(title)}</title>',
        f'<line x1="{pad_left}" y1="{pad_top + plot_h}" x2="{width - pad_right}" y2="{pad_top + plot_h}" '
        'stroke="#d0d7de"/>',
        f'<text x="{pad_left - 4}" y="{pad_top + 8}" text-anchor="end">{esc(_axis(top, unit))}</text>',
        f'<text x="{pad_left - 4}" y="{pad_top + plot_h}" text-anchor="end">0</text>',
        f'<text x="{pad_left}" y="{height - 3}">{PLOT_HOURS} h ago</text>',
        f'<text x="{width - pad_right}" y="{height - 3}" text-anchor="end">now</text>',
    ]
    if threshold is not None:
        ty = y(threshold)
        parts.append(
            f'<line x1="{pad_left}" y1="{ty:.1f}" x2="{width - pad_right}" y2="{ty:.1f}" stroke="#cf222e" '
            f'stroke-dasharray="4 3"><title>{esc(threshold_label)}</title></line>'
        )
    if len(series.points) == 1:
        t, v = series.points[0]
        parts.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5" fill="#0969da"/>')
    elif series.points:
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in series.points)
        parts.append(f'<polyline fill="none" stroke="#0969da" stroke-width="1.5" points="{path}"/>')
        t, v = series.points[-1]  # the latest value, visible even when all points sit near "now"
        parts.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5" fill="#0969da"/>')
    else:
        parts.append(
            f'<text x="{pad_left + plot_w / 2}" y="{pad_top + plot_h / 2}" text-anchor="middle">'
            "no data in the last 24 h</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _axis(value: float, unit: str) -> str:
    if unit == "s":
        return fmt_seconds(value).replace(" ", "")
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def trend_chart(
    values: Sequence[float | None], objective: float, *, title: str, width: int = 340, height: int = 110
) -> str:
    """Drill measurements left (oldest) to right (newest), against the objective."""
    pad_left, pad_right, pad_top, pad_bottom = 34, 8, 8, 16
    plot_w, plot_h = width - pad_left - pad_right, height - pad_top - pad_bottom
    known = [v for v in values if v is not None]
    top = max([*known, objective, 1e-9]) * 1.15
    n = max(len(values) - 1, 1)

    def x(i: int) -> float:
        return pad_left + i / n * plot_w if len(values) > 1 else pad_left + plot_w / 2

    def y(v: float) -> float:
        return pad_top + plot_h - v / top * plot_h

    oy = y(objective)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'viewBox="0 0 {width} {height}"><title>{esc(title)}</title>',
        f'<line x1="{pad_left}" y1="{pad_top + plot_h}" x2="{width - pad_right}" y2="{pad_top + plot_h}" '
        'stroke="#d0d7de"/>',
        f'<line x1="{pad_left}" y1="{oy:.1f}" x2="{width - pad_right}" y2="{oy:.1f}" stroke="#cf222e" '
        f'stroke-dasharray="4 3"><title>objective {esc(fmt_seconds(objective))}</title></line>',
        f'<text x="{pad_left - 4}" y="{oy + 3:.1f}" text-anchor="end">{esc(_axis(objective, "s"))}</text>',
        f'<text x="{pad_left}" y="{height - 3}">oldest</text>',
        f'<text x="{width - pad_right}" y="{height - 3}" text-anchor="end">newest</text>',
    ]
    points = [(x(i), y(v), v) for i, v in enumerate(values) if v is not None]
    if len(points) > 1:
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in points)
        parts.append(f'<polyline fill="none" stroke="#0969da" stroke-width="1.5" points="{path}"/>')
    for px, py, v in points:
        colour = "#1a7f37" if v <= objective else "#cf222e"
        parts.append(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}">'
            f"<title>{esc(fmt_seconds(v))}</title></circle>"
        )
    if not points:
        parts.append(
            f'<text x="{pad_left + plot_w / 2}" y="{pad_top + plot_h / 2}" text-anchor="middle">'
            "no drills yet</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


# --- sections -----------------------------------------------------------------------------


def _header(d: Dashboard) -> str:
    lease = d.lease
    if lease is None:
        active = '<div class="value bad" id="active-region">unknown</div>'
        token = '<div class="value" id="fencing-token">?</div>'
        fenced = '<div class="value">?</div>'
    else:
        role = "primary" if lease.active_region == d.primary_region else "secondary"
        active = (
            f'<div class="value" id="active-region" data-role="{role}">{esc(lease.active_region)}</div>'
            f'<div class="muted">{role} region in the topology</div>'
        )
        token = f'<div class="value" id="fencing-token">{lease.fencing_token}</div>'
        fenced_text = ", ".join(lease.fenced_regions) or "none"
        fenced = (
            f'<div class="value{" warn" if lease.fenced_regions else ""}" id="fenced-regions">'
            f"{esc(fenced_text)}</div>"
        )
    updated = fmt_time(lease.updated_at, d.generated_at) if lease else "n/a"
    return (
        f"<h1>Disaster recovery · {esc(d.topology_name)}</h1>"
        f'<div class="muted">regions {esc(d.primary_region)} (primary) and {esc(d.secondary_region)}; '
        f"objectives RTO {fmt_seconds(d.rto_objective)}, RPO {fmt_seconds(d.rpo_objective)}; "
        f"lease updated {updated}</div>"
        '<div class="tiles">'
        f'<div class="tile"><div class="label">Active region</div>{active}</div>'
        f'<div class="tile"><div class="label">Fencing token</div>{token}</div>'
        f'<div class="tile"><div class="label">Fenced regions</div>{fenced}</div>'
        "</div>"
    )


def _steps(op: OperationView, current: str | None) -> str:
    chips = []
    for step in op.steps:
        status = "running" if step.name == current and step.status != "failed" else step.status
        seconds = f" {fmt_seconds(step.seconds)}" if step.seconds is not None else ""
        chips.append(
            f'<span class="step {esc(status)}" data-step="{esc(step.name)}">{esc(step.name)}{seconds}</span>'
        )
    return f'<div class="steps">{"".join(chips)}</div>' if chips else ""


def _in_progress(d: Dashboard) -> str:
    lease = d.lease
    op = lease.operation if lease else None
    if op is None:
        return '<p class="muted" id="operation">No operation in progress.</p>'
    record = d.in_progress
    cli = "the CLI (<code>mldr history</code>)"
    link = dag_link(record.dag_id, "its DAG runs") if record and record.via_dag else cli
    return (
        '<div class="banner op" id="operation">'
        f"<strong>{esc(op.kind)} in progress</strong>: {esc(op.source)} → {esc(op.target)} ({esc(op.mode)}), "
        f'current step <strong id="operation-step">{esc(op.step)}</strong>; '
        f"operation <code>{esc(op.id)}</code> "
        f"started by {esc(op.started_by)} at {fmt_time(op.started_at, d.generated_at)}: “{esc(op.reason)}”. "
        f"Follow it in {link}."
        f"{_steps(record, op.step) if record else ''}</div>"
    )


def _lag_row(ds: DatasetStatus, now: datetime) -> str:
    lag = ds.lag
    if lag is None:
        cells = '<td colspan="7" class="muted">no replication-lag report yet</td>'
        return f'<tr data-dataset="{esc(ds.name)}"><td><strong>{esc(ds.name)}</strong></td>{cells}</tr>'
    problems = "".join(f'<div class="bad">{esc(p)}</div>' for p in lag.problems)
    lag_value = "" if lag.lag_seconds is None else f"{lag.lag_seconds:.3f}"
    return (
        f'<tr data-dataset="{esc(ds.name)}">'
        f"<td><strong>{esc(ds.name)}</strong><div class=muted>{esc(ds.kind)}; "
        f"{esc(lag.source_region)} → {esc(lag.target_region)}</div></td>"
        f'<td class="num lag" data-value="{lag_value}">{fmt_seconds(lag.lag_seconds)}</td>'
        f'<td class="num backlog" data-objects="{lag.pending_objects}" data-bytes="{lag.pending_bytes}">'
        f"{lag.pending_objects} obj · {fmt_bytes(lag.pending_bytes)}</td>"
        f'<td class="num">{lag.failed_objects}</td>'
        f'<td class="num">{fmt_seconds(lag.exposure_seconds)} / {fmt_seconds(ds.rpo_seconds)}</td>'
        f"<td>{verdict(lag.ok, 'OK', 'BREACH')}{problems}</td>"
        f"<td>{fmt_time(lag.measured_at, now)}</td>"
        f"<td>{report_links(lag.report)}</td></tr>"
    )


def _datasets(d: Dashboard) -> str:
    end = d.generated_at.timestamp()
    start = (d.generated_at - timedelta(hours=PLOT_HOURS)).timestamp()
    rows = [_lag_row(ds, d.generated_at) for ds in d.datasets]
    lag_table = table(
        ["Dataset", "Lag (canary)", "Backlog", "Failed", "RPO exposure / RPO", "Status", "Measured", "Links"],
        rows,
        numeric=(1, 2, 3, 4),
    )
    charts = []
    for ds in d.datasets:
        lag_chart = line_chart(
            ds.lag_series,
            start=start,
            end=end,
            title=f"{ds.name}: replication lag over {PLOT_HOURS} h (max per 5 min)",
            unit="s",
            threshold=float(ds.rpo_seconds),
            threshold_label=f"RPO {fmt_seconds(ds.rpo_seconds)}",
            chart_id=f"lag-{ds.name}",
        )
        backlog_chart = line_chart(
            ds.pending_series,
            start=start,
            end=end,
            title=f"{ds.name}: replication backlog (objects) over {PLOT_HOURS} h",
            chart_id=f"backlog-{ds.name}",
        )
        peak = ds.lag_series.peak
        charts.append(
            f'<div class="chart" data-dataset="{esc(ds.name)}"><h3>{esc(ds.name)}</h3>'
            f'<div class="muted">lag, 24 h peak {fmt_seconds(peak)}; dashed: RPO</div>{lag_chart}'
            f'<div class="muted">backlog, objects</div>{backlog_chart}</div>'
        )
    where = f" (CloudWatch in {esc(', '.join(d.metrics_regions))})" if d.metrics_regions else ""
    return (
        "<h2>Replication per dataset</h2>"
        f"{lag_table}<h2>Last {PLOT_HOURS} hours{where}</h2><div class=charts>{''.join(charts)}</div>"
    )


def _verification(d: Dashboard) -> str:
    rows = []
    for ds in d.datasets:
        v = ds.verification
        if v is None:
            rows.append(
                f'<tr data-dataset="{esc(ds.name)}"><td><strong>{esc(ds.name)}</strong></td>'
                '<td colspan="5" class="muted">not verified yet</td></tr>'
            )
            continue
        counts = ", ".join(f"{n} {k}" for k, n in v.counts.items() if n) or "no differences"
        points = (
            ""
            if v.recovery_points is None
            else f"{v.recovery_points} recovery point(s)"
            + (
                f', <span class="bad">broken: {esc(", ".join(v.broken_recovery_points))}</span>'
                if v.broken_recovery_points
                else ""
            )
        )
        error = f'<div class="bad">{esc(v.error)}</div>' if v.error else ""
        rows.append(
            f'<tr data-dataset="{esc(ds.name)}" class="verification"><td><strong>{esc(ds.name)}</strong></td>'
            f"<td>{verdict(v.ok)}{error}</td><td class=num>{v.objects_checked}</td>"
            f"<td>{esc(counts)}{'<br>' if points else ''}{points}</td>"
            f"<td>{fmt_time(v.finished_at, d.generated_at)}</td><td>{report_links(v.report)}</td></tr>"
        )
    return "<h2>Last backup verification</h2>" + table(
        ["Dataset", "Result", "Objects", "Findings", "Finished", "Links"], rows, numeric=(2,)
    )


def _drill_row(drill: DrillStatus, now: datetime) -> str:
    def against(value: float | None, objective: float) -> str:
        if value is None:
            return '<span class="muted">n/a</span>'
        mark = "ok" if value <= objective else "bad"
        return f'<span class="{mark}">{fmt_seconds(value)}</span> / {fmt_seconds(objective)}'

    return (
        f'<tr class="drill"><td>{fmt_time(drill.at, now)}</td>'
        f"<td>{esc(drill.scenario or '')} → {esc(drill.target_region or '')}</td>"
        f"<td class=num>{against(drill.rto_seconds, drill.rto_objective)}</td>"
        f"<td class=num>{against(drill.rpo_seconds, drill.rpo_objective)}</td>"
        f"<td>{verdict(drill.ok, 'PASSED', 'FAILED')}"
        f"{'' if drill.ok or not drill.reason else f'<div class=bad>{esc(drill.reason)}</div>'}</td>"
        f"<td>{report_links(drill.report)}</td></tr>"
    )


def _drills(d: Dashboard) -> str:
    rows = [_drill_row(drill, d.generated_at) for drill in reversed(d.drills)]  # newest first
    rto = trend_chart(
        [x.rto_seconds for x in d.drills], d.rto_objective, title="RTO per drill against the objective"
    )
    rpo = trend_chart(
        [x.rpo_seconds for x in d.drills], d.rpo_objective, title="RPO per drill against the objective"
    )
    return (
        "<h2>Recent drills</h2>"
        + table(
            ["When", "Scenario → target", "RTO / objective", "RPO / objective", "Result", "Links"],
            rows,
            numeric=(2, 3),
        )
        + f'<div class="charts"><div class="chart"><h3>RTO trend</h3>{rto}</div>'
        f'<div class="chart"><h3>RPO trend</h3>{rpo}</div></div>'
    )


def _operations(d: Dashboard) -> str:
    rows = []
    for op in d.operations:
        where = dag_link(op.dag_id, "DAG runs") if op.via_dag else "CLI"
        failed = next((s.name for s in op.steps if s.status == "failed"), None)
        status = esc(op.status) + (f' <span class="bad">at {esc(failed)}</span>' if failed else "")
        rows.append(
            f'<tr class="operation" data-operation="{esc(op.id)}">'
            f"<td>{fmt_time(op.created_at, d.generated_at)}</td>"
            f"<td>{esc(op.kind)} → {esc(op.target)} <span class=muted>({esc(op.mode)})</span>"
            f"<div class=muted><code>{esc(op.id)}</code></div></td><td>{status}</td>"
            f"<td class=num>{fmt_seconds(op.seconds)}</td><td>{esc(op.requested_by)}: {esc(op.reason)}</td>"
            f"<td>{where}</td></tr>"
        )
    return "<h2>Recent operations</h2>" + table(
        ["Started", "Operation", "Status", "Took", "By / why", "Where"], rows, numeric=(3,)
    )


def _footer(d: Dashboard) -> str:
    links = " · ".join(dag_link(dag_id, label) for dag_id, label in DAG_LINKS)
    ages = ", ".join(f"{k} {v:.0f}s" for k, v in d.ages.items())
    return (
        f"<h2>Runbooks as DAGs</h2><p>{links}</p>"
        f'<p class="muted">Read-only view of recorded results (control state, reports, CloudWatch); '
        f"generated {d.generated_at:%Y-%m-%d %H:%M:%S} UTC, data ages: {esc(ages)}; refreshes every "
        f'{REFRESH_SECONDS} s. <a href="api/status">JSON</a></p>'
    )


def render(d: Dashboard) -> str:
    problems = "".join(f"<div>{esc(p)}</div>" for p in d.problems)
    banner = (
        f'<div class="banner err" id="problems"><strong>Some sources could not be read</strong> '
        f"(showing what was last read):{problems}</div>"
        if problems
        else ""
    )
    body = (
        _header(d)
        + banner
        + _in_progress(d)
        + _datasets(d)
        + _verification(d)
        + _drills(d)
        + _operations(d)
        + _footer(d)
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>DR dashboard · {esc(d.topology_name)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def error_page(title: str, message: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{esc(title)}</h1>"
        f'<div class="banner err">{esc(message)}</div>'
        "</body></html>"
    )
