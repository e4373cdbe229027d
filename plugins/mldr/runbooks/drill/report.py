"""The drill report: one self-contained HTML page (inline SVG, no scripts, no external assets)
and the text summary the CLI and `make demo` print.

The page answers, top to bottom: did it pass and why; what clients saw over time (request
outcome and latency coloured by serving region, with fault, detection, switch and failback
marked); objectives vs measured; each runbook step's duration; data at risk and data lost;
prediction parity; how this drill compares with earlier ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mldr.html import Markup, esc, generated_at, render

WIDTH = 960
PALETTE = ("#0969da", "#bf8700", "#8250df", "#1a7f37")  # per serving region, source first
FAILED = "#cf222e"
LOST = "#1b1f24"

# Events marked on the timeline: (event key, label, colour, dashed)
_MARKS: tuple[tuple[str, str, str, bool], ...] = (
    ("stall_at", "replication paused", "#bf8700", True),
    ("fault_at", "fault", FAILED, False),
    ("detected_at", "detected", "#8250df", False),
    ("failover_switched_at", "failover switch", "#0969da", True),
    ("failover_done_at", "failover done", "#0969da", False),
    ("healed_at", "healed", "#1a7f37", True),
    ("failback_switched_at", "failback switch", "#1a7f37", False),
)


def _fmt(value: Any, unit: str = " s", digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float | int):
        return f"{value:.{digits}f}{unit}"
    return str(value)


def _region_colours(document: Mapping[str, Any]) -> dict[str, str]:
    regions = [document.get("source"), document.get("target")]
    return {str(r): PALETTE[i % len(PALETTE)] for i, r in enumerate(regions) if r}


def _ticks(span: float, target: int = 10) -> list[float]:
    if span <= 0:
        return [0.0]
    raw = span / target
    step = next((s for s in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600) if s >= raw), 600.0)
    count = int(span // step) + 1
    return [i * step for i in range(count)]


def timeline_svg(document: Mapping[str, Any]) -> str:
    """Request outcome and latency over time, coloured by serving region, canaries below."""
    timeline = document.get("timeline") or {}
    t0 = float(timeline.get("t0") or 0.0)
    requests: list[list[Any]] = timeline.get("requests") or []
    canaries: list[list[Any]] = timeline.get("canaries") or []
    lost = set((document.get("data") or {}).get("lost_keys") or [])
    lost_seqs = {int(k.rsplit("/", 1)[-1].split(".")[0]) for k in lost if k.rsplit("/", 1)[-1][:1].isdigit()}
    events: Mapping[str, float] = document.get("events") or {}
    times = [r[0] - t0 for r in requests] + [c[0] - t0 for c in canaries] + [1.0]
    span = max(times)
    left, right, top = 58, 16, 34
    plot_h, strip_h, gap = 200, 26, 30
    height = top + plot_h + gap + strip_h + 56
    inner_w = WIDTH - left - right
    max_latency = max([r[3] for r in requests if r[3] is not None] + [100.0])
    y_max = max_latency * 1.1

    def x(t: float) -> float:
        return left + inner_w * max(0.0, min(t, span)) / span

    def y(ms: float) -> float:
        return top + plot_h - plot_h * min(ms, y_max) / y_max

    colours = _region_colours(document)
    out = [
        f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="drill timeline">',
        "<title>Requests through the DNS name (latency, coloured by serving region; red x failed) and "
        "canary writes (bottom strip) over the drill</title>",
    ]
    downtime = document.get("downtime") or {}
    if downtime.get("first_failure_at") and downtime.get("recovered_at"):
        x1, x2 = x(downtime["first_failure_at"] - t0), x(downtime["recovered_at"] - t0)
        out.append(
            f'<rect x="{x1:.1f}" y="{top}" width="{max(1.0, x2 - x1):.1f}" height="{plot_h}" fill="{FAILED}" '
            'fill-opacity="0.08"><title>client-observed downtime (RTO)</title></rect>'
        )
    # axes and grid
    for t in _ticks(span):
        out.append(
            f'<line x1="{x(t):.1f}" y1="{top}" x2="{x(t):.1f}" y2="{top + plot_h}" stroke="#eaeef2"/>'
            f'<text x="{x(t):.1f}" y="{top + plot_h + gap + strip_h + 16}" text-anchor="middle">{t:g}</text>'
        )
    for frac in (0, 0.25, 0.5, 0.75, 1.0):
        ms = y_max * frac
        out.append(
            f'<line x1="{left}" y1="{y(ms):.1f}" x2="{WIDTH - right}" y2="{y(ms):.1f}" stroke="#eaeef2"/>'
            f'<text x="{left - 6}" y="{y(ms) + 4:.1f}" text-anchor="end">{ms:.0f}</text>'
        )
    out.append(
        f'<text x="14" y="{top + plot_h / 2}" transform="rotate(-90 14 {top + plot_h / 2})" '
        'text-anchor="middle">latency (ms)</text>'
        f'<text x="{left + inner_w / 2}" y="{height - 8}" text-anchor="middle">'
        "seconds since the load started</text>"
        f'<text x="{left - 6}" y="{top + plot_h + gap + strip_h / 2 + 4}" text-anchor="end">canaries</text>'
    )
    # requests
    for sent, ok, status, latency_ms, region in requests:
        cx, cy = x(sent - t0), y(latency_ms or 0.0)
        outcome = "ok" if ok else "FAILED"
        tip = f"{sent - t0:.2f}s: {outcome} {status or 'no response'} {latency_ms} ms {region or ''}"
        if ok:
            colour = colours.get(str(region), "#6e7781")
            out.append(
                f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.6" fill="{colour}">'
                f"<title>{esc(tip)}</title></circle>"
            )
        else:
            out.append(
                f'<path d="M{cx - 3:.1f},{cy - 3:.1f}L{cx + 3:.1f},{cy + 3:.1f}M{cx - 3:.1f},{cy + 3:.1f}'
                f'L{cx + 3:.1f},{cy - 3:.1f}" stroke="{FAILED}" stroke-width="1.6">'
                f"<title>{esc(tip)}</title></path>"
            )
    # canary strip
    strip_y = top + plot_h + gap
    for sent, acked, region, seq, *_ in canaries:
        cx = x(sent - t0)
        if seq in lost_seqs:
            colour, h, what = LOST, float(strip_h), "LOST"
        elif acked:
            colour, h, what = colours.get(str(region), "#6e7781"), strip_h * 0.6, "acknowledged"
        else:
            colour, h, what = FAILED, strip_h * 0.6, "refused / timed out"
        out.append(
            f'<rect x="{cx - 1:.1f}" y="{strip_y + strip_h - h:.1f}" width="2" height="{h:.1f}" '
            f'fill="{colour}">'
            f"<title>canary {seq} {what} ({region}) at {sent - t0:.2f}s</title></rect>"
        )
    # event marks
    for i, (key, label, colour, dashed) in enumerate(m for m in _MARKS if m[0] in events):
        mx = x(events[key] - t0)
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        out.append(
            f'<line x1="{mx:.1f}" y1="{top - 4}" x2="{mx:.1f}" y2="{strip_y + strip_h}" stroke="{colour}" '
            f'stroke-width="1.4"{dash}><title>{esc(label)} at {events[key] - t0:.2f}s</title></line>'
            f'<text x="{mx + (-3 if mx > WIDTH - 130 else 3):.1f}" y="{top - 8 - (i % 2) * 11}" '
            f'text-anchor="{"end" if mx > WIDTH - 130 else "start"}" fill="{colour}">{esc(label)}</text>'
        )
    # legend
    legend = [
        *((f"served by {r}", c) for r, c in colours.items()),
        ("failed request", FAILED),
        ("lost canary", LOST),
    ]
    lx = left
    for text, colour in legend:
        out.append(
            f'<rect x="{lx}" y="{height - 30}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{lx + 14}" y="{height - 21}">{esc(text)}</text>'
        )
        lx += 20 + 7 * len(text)
    out.append("</svg>")
    return "".join(out)


def trend_points(earlier: Sequence[Mapping[str, Any]], current: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Oldest first, the current drill last; earlier documents of other shapes are skipped."""
    seen = {current.get("drill_id")}
    points = []
    for doc in [*sorted(earlier, key=lambda d: str(d.get("started_at"))), current]:
        if doc is not current and (doc.get("drill_id") in seen or doc.get("kind") != current.get("kind")):
            continue
        seen.add(doc.get("drill_id"))
        points.append(
            {
                "drill_id": doc.get("drill_id"),
                "started_at": doc.get("started_at"),
                "scenario": doc.get("scenario"),
                "rto_seconds": doc.get("rto_seconds"),
                "rpo_seconds": doc.get("rpo_seconds"),
                "verdict": doc.get("verdict"),
            }
        )
    return points


def trend_svg(points: Sequence[Mapping[str, Any]], objectives: Mapping[str, Any]) -> str:
    """RTO and RPO per drill against the objectives (dashed)."""
    height, left, right, top, bottom = 260, 58, 16, 20, 70
    inner_w, inner_h = WIDTH - left - right, height - top - bottom
    values = [float(p[k]) for p in points for k in ("rto_seconds", "rpo_seconds") if p.get(k) is not None]
    rto_obj, rpo_obj = float(objectives.get("rto_seconds") or 0), float(objectives.get("rpo_seconds") or 0)
    y_max = max([*values, rto_obj, rpo_obj, 1.0]) * 1.15
    n = max(1, len(points))

    def x(i: int) -> float:
        return left + inner_w * (i + 0.5) / n

    def y(v: float) -> float:
        return top + inner_h - inner_h * v / y_max

    out = [
        f'<svg id="trend" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="drill trend">',
        "<title>RTO and RPO of each drill, oldest first, against the objectives</title>",
    ]
    for frac in (0, 0.25, 0.5, 0.75, 1.0):
        v = y_max * frac
        out.append(
            f'<line x1="{left}" y1="{y(v):.1f}" x2="{WIDTH - right}" y2="{y(v):.1f}" stroke="#eaeef2"/>'
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.0f}</text>'
        )
    out.append(
        f'<text x="14" y="{top + inner_h / 2}" transform="rotate(-90 14 {top + inner_h / 2})" '
        'text-anchor="middle">seconds</text>'
    )
    for value, colour, label in (
        (rto_obj, PALETTE[0], "RTO objective"),
        (rpo_obj, PALETTE[1], "RPO objective"),
    ):
        if value:
            out.append(
                f'<line x1="{left}" y1="{y(value):.1f}" x2="{WIDTH - right}" y2="{y(value):.1f}" '
                f'stroke="{colour}" stroke-dasharray="6 4"/>'
                f'<text x="{WIDTH - right - 4}" y="{y(value) - 4:.1f}" text-anchor="end" '
                f'fill="{colour}">{label} {value:g} s</text>'
            )
    for key, colour in (("rto_seconds", PALETTE[0]), ("rpo_seconds", PALETTE[1])):
        coords = [(x(i), y(float(p[key]))) for i, p in enumerate(points) if p.get(key) is not None]
        if len(coords) > 1:
            path = "M" + "L".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
            out.append(
                f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.2" stroke-opacity="0.6"/>'
            )
    for i, p in enumerate(points):
        failed = p.get("verdict") != "pass"
        stroke = f' stroke="{FAILED}" stroke-width="2"' if failed else ""
        label = f"{str(p.get('started_at') or '')[5:16].replace('T', ' ')}"
        tip = (
            f"{p.get('drill_id')} {p.get('scenario')}: RTO {p.get('rto_seconds')} s, "
            f"RPO {p.get('rpo_seconds')} s, {p.get('verdict')}"
        )
        if p.get("rto_seconds") is not None:
            out.append(
                f'<circle cx="{x(i):.1f}" cy="{y(float(p["rto_seconds"])):.1f}" r="4.5" '
                f'fill="{PALETTE[0]}"{stroke}>'
                f"<title>{esc(tip)}</title></circle>"
            )
        if p.get("rpo_seconds") is not None:
            ry = y(float(p["rpo_seconds"]))
            out.append(
                f'<rect x="{x(i) - 4:.1f}" y="{ry - 4:.1f}" width="8" height="8" fill="{PALETTE[1]}"{stroke}>'
                f"<title>{esc(tip)}</title></rect>"
            )
        out.append(
            f'<text x="{x(i):.1f}" y="{top + inner_h + 16}" text-anchor="middle">{esc(label)}</text>'
            f'<text x="{x(i):.1f}" y="{top + inner_h + 30}" text-anchor="middle" fill="#57606a">'
            f"{esc(p.get('scenario') or '')}</text>"
        )
    lx = left
    for text, colour in (("RTO", PALETTE[0]), ("RPO", PALETTE[1]), ("red outline: drill failed", FAILED)):
        out.append(
            f'<rect x="{lx}" y="{height - 18}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{lx + 14}" y="{height - 9}">{esc(text)}</text>'
        )
        lx += 30 + 7 * len(text)
    out.append("</svg>")
    return "".join(out)


def _objective_rows(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """measure, measured, objective, and whether it was met (None: not an objective)."""
    obj = doc.get("objectives") or {}
    det = doc.get("detection") or {}
    failed = " ".join(doc.get("failed_criteria") or [])
    window = det.get("window_seconds")
    lost_after = doc.get("lost_after_failback")
    rows = [
        (
            "RTO: client-observed downtime",
            _fmt(doc.get("rto_seconds")),
            f"≤ {_fmt(obj.get('rto_seconds'), digits=0)}",
            "RTO" not in failed,
        ),
        (
            "RPO: data lost",
            f"{_fmt(doc.get('rpo_seconds'))} ({doc.get('lost_objects')} object(s))",
            f"≤ {_fmt(obj.get('rpo_seconds'), digits=0)}",
            "RPO" not in failed,
        ),
        (
            "prediction parity",
            "identical" if doc.get("parity") else "DIFFERENT",
            "identical",
            bool(doc.get("parity")),
        ),
        (
            "lost after failback",
            lost_after if lost_after is not None else "not failed back",
            "0",
            "after failback" not in failed,
        ),
        (
            "detection (health check unhealthy)",
            _fmt(det.get("detected_after_seconds")),
            f"window {_fmt(window, digits=0)} ({_fmt(det.get('interval_seconds'), digits=0)} x "
            f"{det.get('failure_threshold')})"
            if window
            else "n/a",
            None,
        ),
        (
            "RTO / detection window",
            _fmt(det.get("rto_over_window"), unit="", digits=2),
            "≤ (window + 5 s) / window",
            None,
        ),
        ("failed requests", doc.get("failed_requests"), "", None),
    ]
    return [dict(zip(("measure", "measured", "objective", "ok"), row, strict=True)) for row in rows]


def _steps(steps: Mapping[str, Mapping[str, float]]) -> list[tuple[str, list[tuple[str, float, int]], float]]:
    """Per runbook: (step, seconds, bar width in px) and the total; bars scaled to the longest step."""
    longest = max([s for kind in steps.values() for s in kind.values()] + [0.001])
    return [
        (
            kind,
            [(step, seconds, max(1, int(240 * seconds / longest))) for step, seconds in durations.items()],
            sum(durations.values()),
        )
        for kind, durations in steps.items()
    ]


def _data_rows(doc: Mapping[str, Any]) -> list[list[Any]]:
    data = doc.get("data") or {}
    risk = data.get("data_at_risk_at_failover") or {}
    rows: list[list[Any]] = [
        [
            "canaries written / acknowledged",
            f"{data.get('canaries_written')} / {data.get('canaries_acknowledged')}",
        ],
        ["acknowledged by the source before it stopped taking writes", data.get("considered_for_rpo")],
        ["lost in the target after failover", doc.get("lost_objects")],
        ["RPO (seconds of acknowledged writes lost)", _fmt(doc.get("rpo_seconds"))],
        [
            "data at risk reported by the failover runbook",
            f"{risk.get('objects')} object(s), {risk.get('bytes')} bytes, "
            f"oldest {risk.get('oldest_age_seconds')} s"
            if risk.get("measured")
            else risk.get("reason", "n/a"),
        ],
        [
            "write outage (first refused canary to the next acknowledged)",
            _fmt(data.get("write_outage_seconds")),
        ],
        ["lost after failback (missing or different in either region)", doc.get("lost_after_failback")],
    ]
    if data.get("stall_seconds") is not None:
        rows.insert(3, ["replication stalled before the fault", _fmt(data.get("stall_seconds"))])
    return rows


def _parity_rows(detail: Mapping[str, Any]) -> list[list[Any]]:
    return [
        [
            name,
            answer.get("model_version") or "",
            " ".join(str(p) for p in answer.get("predictions") or []) or answer.get("error", ""),
        ]
        for name, answer in (detail.get("answers") or {}).items()
    ]


def render_html(document: Mapping[str, Any], earlier: Sequence[Mapping[str, Any]] = ()) -> str:
    """The report page (templates/drill_report.html); the plots are drawn here and passed in."""
    if document.get("restore") is not None:
        from mldr.runbooks.drill.corruption_report import render_restore_html

        return render_restore_html(document)
    doc = document
    verdict = str(doc.get("verdict", "fail"))
    t0 = float((doc.get("timeline") or {}).get("t0") or 0.0)
    points = trend_points(earlier, doc)
    return render(
        "drill_report.html",
        title=f"DR drill {doc.get('scenario')}: {verdict.upper()}",
        generated=generated_at(),
        doc=doc,
        verdict=verdict,
        duration=_fmt(doc.get("duration_seconds"), digits=0),
        timeline=Markup(timeline_svg(doc)),
        objectives=_objective_rows(doc),
        steps=_steps(doc.get("steps") or {}),
        data_rows=_data_rows(doc),
        lost_keys=(doc.get("data") or {}).get("lost_keys") or [],
        parity=doc.get("parity_detail") or {},
        parity_rows=_parity_rows(doc.get("parity_detail") or {}),
        trend=Markup(trend_svg(points, doc.get("objectives") or {})),
        trend_rows=[
            [
                p.get("started_at"),
                p.get("scenario"),
                _fmt(p.get("rto_seconds")),
                _fmt(p.get("rpo_seconds")),
                p.get("verdict"),
            ]
            for p in reversed(points)
        ],
        events=[(name, at - t0) for name, at in (doc.get("events") or {}).items()],
    )


def format_summary(summary: Mapping[str, Any]) -> str:
    """The table `mldr drill` and `make demo` print."""
    if summary.get("restore") is not None:
        from mldr.runbooks.drill.corruption_report import format_restore_summary

        return format_restore_summary(summary)
    obj = summary.get("objectives") or {}
    det = summary.get("detection") or {}
    failed = " ".join(str(f) for f in summary.get("failed_criteria") or []) or str(
        summary.get("verdict_reason")
    )
    passed = summary.get("verdict") == "pass"

    def result(tag: str) -> str:
        return "ok" if passed or tag not in failed else "FAIL"

    lb = summary.get("lost_after_failback")
    rows = [
        ("measure", "measured", "objective", ""),
        (
            "RTO (client-observed downtime)",
            _fmt(summary.get("rto_seconds")),
            f"<= {_fmt(obj.get('rto_seconds'), digits=0)}",
            result("RTO"),
        ),
        (
            "RPO (data lost)",
            f"{_fmt(summary.get('rpo_seconds'))}, {summary.get('lost_objects')} object(s)",
            f"<= {_fmt(obj.get('rpo_seconds'), digits=0)}",
            result("RPO"),
        ),
        (
            "prediction parity",
            "identical" if summary.get("parity") else "DIFFERENT",
            "identical",
            result("parity"),
        ),
        (
            "lost after failback",
            "n/a (no failback)" if lb is None else str(lb),
            "0",
            result("after failback"),
        ),
        (
            "detection",
            _fmt(det.get("detected_after_seconds")),
            f"window {_fmt(det.get('window_seconds'), digits=0)}" if det.get("window_seconds") else "",
            "",
        ),
        ("RTO / detection window", _fmt(det.get("rto_over_window"), unit="", digits=2), "", ""),
        ("failed requests", str(summary.get("failed_requests")), "", ""),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        f"DR drill {summary.get('drill_id')}: {summary.get('scenario')}, "
        f"{summary.get('source')} -> {summary.get('target')}"
    ]
    for row in rows:
        lines.append("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    lines.append(f"  verdict: {str(summary.get('verdict', '?')).upper()} - {summary.get('verdict_reason')}")
    if summary.get("report_url"):
        lines.append(f"  open:    {summary.get('report_url')}")
    if summary.get("report"):
        lines.append(f"  report:  {summary.get('report')}")
    for region, uri in (summary.get("reports") or {}).items():
        lines.append(f"  stored:  {uri} ({region})")
    return "\n".join(lines)
