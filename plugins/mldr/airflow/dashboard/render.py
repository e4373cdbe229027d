"""The DR dashboard page: server-rendered HTML with inline SVG plots, no JavaScript.

It is shown inside the Airflow UI (an iframe under the top navigation), so links to Airflow pages
are relative to the Airflow base URL and open in the top window; stored reports open in a new tab.
Every value is escaped; element ids and `data-*` attributes name what a value is, for people
reading the source and for the browser test.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from mldr import html
from mldr.airflow.dashboard.data import (
    PLOT_HOURS,
    Dashboard,
    ReportLink,
    Series,
)
from mldr.html import Markup, esc

REFRESH_SECONDS = 30
#: The DAGs a DR owner opens from here.
DAG_LINKS = (
    ("dr_failover", "Fail over"),
    ("dr_failback", "Fail back"),
    ("dr_drill", "Drill"),
    ("dr_autopilot", "Autopilot"),
    ("dr_backup_verification", "Backup verification"),
    ("dr_replication_lag", "Replication lag"),
    ("ml_training_pipeline", "ML training pipeline"),
)

ICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
    'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M12 2 4 5v6c0 5 3.4 9.3 8 11 '
    '4.6-1.7 8-6 8-11V5l-8-3z"/><path d="M8 12h2l1.5-3 2 6 1.5-3h1"/></svg>'
)


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


def fmt_time(iso: str | None, now: datetime) -> Markup:
    if not iso:
        return Markup("n/a")
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return esc(iso)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    ago = (now - when).total_seconds()
    return Markup(
        f'<time datetime="{esc(when.isoformat())}">{when:%Y-%m-%d %H:%M:%S} UTC</time> '
        f'<span class="muted">({fmt_seconds(max(ago, 0))} ago)</span>'
    )


def verdict(ok: bool | None, good: str = "OK", bad: str = "FAILED") -> Markup:
    if ok is None:
        return Markup('<span class="muted">n/a</span>')
    return Markup(f'<span class="ok">{esc(good)}</span>' if ok else f'<span class="bad">{esc(bad)}</span>')


# --- links --------------------------------------------------------------------------------


def dag_link(dag_id: str | None, text: str, run_id: str | None = None) -> Markup:
    """A link into the Airflow UI (relative to the Airflow base URL; the page is /<base>/mldr/)."""
    if not dag_id:
        return esc(text)
    href = f"../dags/{quote(dag_id, safe='')}"
    href += f"/runs/{quote(run_id, safe='')}" if run_id else "/runs"
    return Markup(f'<a href="{esc(href)}" target="_top">{esc(text)}</a>')


def report_links(link: ReportLink) -> Markup:
    parts = [
        f'<a href="reports/{quote(link.kind, safe="")}/{quote(link.name, safe="")}" target="_blank" '
        f'rel="noopener" title="stored in {esc(", ".join(link.regions))}">report</a>'
    ]
    if link.run_id:
        parts.append(dag_link(link.dag_id, "DAG run", link.run_id))
    return Markup(" · ".join(parts))


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


# --- the page -----------------------------------------------------------------------------


def render(d: Dashboard) -> str:
    """The dashboard page (templates/dashboard.html); the plots are drawn here and passed in."""
    end = d.generated_at.timestamp()
    start = (d.generated_at - timedelta(hours=PLOT_HOURS)).timestamp()
    charts = [
        {
            "name": ds.name,
            "peak": ds.lag_series.peak,
            "lag": Markup(
                line_chart(
                    ds.lag_series,
                    start=start,
                    end=end,
                    title=f"{ds.name}: replication lag over {PLOT_HOURS} h (max per 5 min)",
                    unit="s",
                    threshold=float(ds.rpo_seconds),
                    threshold_label=f"RPO {fmt_seconds(ds.rpo_seconds)}",
                    chart_id=f"lag-{ds.name}",
                )
            ),
            "backlog": Markup(
                line_chart(
                    ds.pending_series,
                    start=start,
                    end=end,
                    title=f"{ds.name}: replication backlog (objects) over {PLOT_HOURS} h",
                    chart_id=f"backlog-{ds.name}",
                )
            ),
        }
        for ds in d.datasets
    ]
    return html.render(
        "dashboard.html",
        d=d,
        now=d.generated_at,
        refresh=REFRESH_SECONDS,
        plot_hours=PLOT_HOURS,
        dag_links=DAG_LINKS,
        charts=charts,
        rto_trend=Markup(
            trend_chart(
                [x.rto_seconds for x in d.drills],
                d.rto_objective,
                title="RTO per drill against the objective",
            )
        ),
        rpo_trend=Markup(
            trend_chart(
                [x.rpo_seconds for x in d.drills],
                d.rpo_objective,
                title="RPO per drill against the objective",
            )
        ),
        cli_link=Markup("the CLI (<code>mldr history</code>)"),
        fmt_seconds=fmt_seconds,
        fmt_bytes=fmt_bytes,
        fmt_time=fmt_time,
        verdict=verdict,
        dag_link=dag_link,
        report_links=report_links,
    )


def error_page(title: str, message: str) -> str:
    return html.render("dashboard_error.html", title=title, message=message)
