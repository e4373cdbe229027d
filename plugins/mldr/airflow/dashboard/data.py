"""What the DR dashboard shows, read from what is already recorded - never from the data buckets.

Sources, each read on its own so that one that does not answer (a region down) leaves a note on the
page instead of an error page:

- the DR control state: the lease (active region, fencing token, fenced regions, operation in
  progress) and the operation records (`op#...`, their steps and timings);
- the reports the checks and drills keep in the ops buckets (`mldr.reports.latest_reports`):
  `replication-lag`, `verification`, `drill` - only the newest few, by key, never a bucket listing
  beyond `reports/<kind>/` of the last day(s);
- the CloudWatch metrics the lag check publishes (namespace `MLDR`, per dataset) for the 24 h plots.

Reads are cached (`DashboardSource`): the control state for a few seconds, the reports and
metrics for longer, so a page load costs a few milliseconds and a burst of page loads one read.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from mldr.airflow.dashboard.autopilot_view import AutopilotView, read_autopilot
from mldr.checks.metrics import Metric, metric_id
from mldr.cloud import Cloud
from mldr.cloud.calls import PROBE_TIMEOUTS
from mldr.cloud.control import Lease
from mldr.cloud.telemetry import Statistic
from mldr.errors import MldrError
from mldr.reports import StoredReport, latest_reports
from mldr.runbooks.engine import OperationRecord, OperationStatus, OperationStore, StepStatus
from mldr.topology import Topology

log = logging.getLogger(__name__)

#: Which DAG writes which report kind (for links to its runs).
REPORT_DAGS = {
    "verification": "dr_backup_verification",
    "replication-lag": "dr_replication_lag",
    "drill": "dr_drill",
}
OPERATION_DAGS = {"failover": "dr_failover", "failback": "dr_failback", "drill": "dr_drill"}
#: CLI operations get ids like `failover-20261129T041800Z-1a2b3c`; DAG runs get `failover-<run id>`.
_CLI_OPERATION = re.compile(r"^[a-z]+-\d{8}T\d{6}Z-[0-9a-f]{6}$")
_REPORT_STAMP = re.compile(r"^(\d{8}T\d{6}Z)")

PLOT_HOURS = 24
PLOT_PERIOD_SECONDS = 300
CONTROL_TTL_SECONDS = 3.0
RECORDS_TTL_SECONDS = 30.0
#: How long a page load waits for a due refresh before it shows the last value instead: long
#: enough for a source that answers (a page after a failback shows the new active region), short
#: enough that a region that does not answer costs a page load little.
REFRESH_WAIT_SECONDS = 2.0
#: The steps that move traffic: replication figures measured before one describe the old direction.
SWITCH_STEPS = {"failover": "switch", "failback": "failback_switch"}

T = TypeVar("T")


# --- the model the page renders -----------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """A metric over time: epoch seconds and values, oldest first."""

    points: tuple[tuple[float, float], ...] = ()

    @property
    def latest(self) -> float | None:
        return self.points[-1][1] if self.points else None

    @property
    def peak(self) -> float | None:
        return max(v for _, v in self.points) if self.points else None


@dataclass(frozen=True)
class ReportLink:
    kind: str
    name: str
    regions: tuple[str, ...]
    run_id: str | None = None

    @property
    def dag_id(self) -> str | None:
        return REPORT_DAGS.get(self.kind)


@dataclass(frozen=True)
class LagStatus:
    """The dataset's replication lag and backlog as the newest lag report measured it."""

    measured_at: str
    ok: bool
    lag_seconds: float | None
    pending_objects: int
    pending_bytes: int
    failed_objects: int
    oldest_pending_age_seconds: float | None
    exposure_seconds: float | None
    threshold_seconds: float | None
    source_region: str | None
    target_region: str | None
    problems: tuple[str, ...]
    report: ReportLink


@dataclass(frozen=True)
class VerificationStatus:
    finished_at: str
    ok: bool
    objects_checked: int
    counts: Mapping[str, int]  # missing, extra, mismatched, pending, failed
    broken_recovery_points: tuple[str, ...]
    recovery_points: int | None
    error: str | None
    report: ReportLink


@dataclass(frozen=True)
class DatasetStatus:
    name: str
    kind: str
    rpo_seconds: int
    lag: LagStatus | None
    verification: VerificationStatus | None
    lag_series: Series = Series()
    pending_series: Series = Series()
    #: why the lag figures no longer describe replication (measured before the last switch)
    lag_stale: str | None = None


@dataclass(frozen=True)
class DrillStatus:
    at: str
    ok: bool | None
    rto_seconds: float | None
    rpo_seconds: float | None
    rto_objective: float
    rpo_objective: float
    target_region: str | None
    report: ReportLink
    scenario: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class StepView:
    name: str
    status: str
    seconds: float | None


@dataclass(frozen=True)
class OperationView:
    id: str
    kind: str
    status: str
    target: str | None
    mode: str | None
    requested_by: str | None
    reason: str | None
    created_at: str
    seconds: float
    message: str
    steps: tuple[StepView, ...]
    via_dag: bool
    #: "awaiting approval since ... by ...: where" while a person must answer; None otherwise
    awaiting_approval: str | None = None
    took: str = "-"  # wall time, the approval wait apart (progress_view.took)
    #: "stalled: its run ... was last heard from at ...; resume with ..." when its run died
    stalled: str | None = None

    @property
    def dag_id(self) -> str | None:
        return OPERATION_DAGS.get(self.kind)

    @property
    def current_step(self) -> str | None:
        running = [s.name for s in self.steps if s.status in ("running", "failed")]
        return running[-1] if running else None


@dataclass(frozen=True)
class Dashboard:
    topology_name: str
    primary_region: str
    secondary_region: str
    rto_objective: float
    rpo_objective: float
    lease: Lease | None
    in_progress: OperationView | None
    operations: tuple[OperationView, ...]
    datasets: tuple[DatasetStatus, ...]
    drills: tuple[DrillStatus, ...]
    problems: tuple[str, ...]
    generated_at: datetime
    metrics_regions: tuple[str, ...] = ()  # the regions whose CloudWatch answered
    ages: Mapping[str, float] = field(default_factory=dict)  # source -> seconds since it was read
    autopilot: AutopilotView | None = None


# --- parsing recorded documents -------------------------------------------------------------


def _number(doc: Mapping[str, Any], *paths: str) -> float | None:
    """The first numeric value at one of the dotted `paths` (documents from different writers)."""
    for path in paths:
        value: Any = doc
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def report_time(name: str) -> str:
    """ISO time from a report name (`20261129T041800Z-...`), which is when it was stored."""
    match = _REPORT_STAMP.match(name)
    if not match:
        return ""
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).isoformat()


def _link(report: StoredReport) -> ReportLink:
    airflow = report.document.get("airflow")
    run_id = airflow.get("run_id") if isinstance(airflow, Mapping) else None
    return ReportLink(
        kind=report.kind, name=report.name, regions=tuple(report.uris), run_id=run_id if run_id else None
    )


def lag_by_dataset(reports: Sequence[StoredReport]) -> dict[str, LagStatus]:
    """The newest lag measurement of each dataset (a DAG report covers one, a CLI report all)."""
    out: dict[str, LagStatus] = {}
    for report in reports:  # newest first
        for d in report.document.get("datasets", []):
            if not isinstance(d, Mapping) or not d.get("name") or d["name"] in out:
                continue
            out[str(d["name"])] = LagStatus(
                measured_at=str(report.document.get("measured_at") or report_time(report.name)),
                ok=bool(d.get("ok")),
                lag_seconds=_number(d, "lag_seconds"),
                pending_objects=int(_number(d, "pending_objects") or 0),
                pending_bytes=int(_number(d, "pending_bytes") or 0),
                failed_objects=int(_number(d, "failed_objects") or 0),
                oldest_pending_age_seconds=_number(d, "oldest_pending_age_seconds"),
                exposure_seconds=_number(d, "rpo_exposure_seconds"),
                threshold_seconds=_number(d, "threshold_seconds"),
                source_region=d.get("source_region"),
                target_region=d.get("target_region"),
                problems=tuple(str(p) for p in d.get("problems") or []),
                report=_link(report),
            )
    return out


FINDINGS = ("missing", "extra", "mismatched", "pending", "failed")


def verification_by_dataset(reports: Sequence[StoredReport]) -> dict[str, VerificationStatus]:
    out: dict[str, VerificationStatus] = {}
    for report in reports:
        for d in report.document.get("datasets", []):
            if not isinstance(d, Mapping) or not d.get("name") or d["name"] in out:
                continue
            points = d.get("recovery_points")
            broken = tuple(
                f"{rp.get('model')}/{rp.get('version')}"
                for rp in points or []
                if isinstance(rp, Mapping) and rp.get("state") == "broken"
            )
            out[str(d["name"])] = VerificationStatus(
                finished_at=str(report.document.get("finished_at") or report_time(report.name)),
                ok=bool(d.get("ok")),
                objects_checked=int(_number(d, "objects_checked") or 0),
                counts={f: len(d.get(f) or []) if isinstance(d.get(f), list) else 0 for f in FINDINGS},
                broken_recovery_points=broken,
                recovery_points=len(points) if isinstance(points, list) else None,
                error=d.get("error"),
                report=_link(report),
            )
    return out


def drills_of(reports: Sequence[StoredReport], topology: Topology) -> list[DrillStatus]:
    """Drill reports, oldest first (the trend reads left to right)."""
    drills = []
    for report in reports:
        doc = report.document
        ok = doc.get("ok")
        if not isinstance(ok, bool) and doc.get("verdict") in ("pass", "fail"):
            ok = doc["verdict"] == "pass"  # the drill runbook's report (mldr.runbooks.drill)
        drills.append(
            DrillStatus(
                at=report_time(report.name) or str(doc.get("finished_at") or ""),
                ok=ok if isinstance(ok, bool) else None,
                rto_seconds=_number(
                    doc, "rto_seconds", "measured.rto_seconds", "rto.seconds", "rto.measured"
                ),
                rpo_seconds=_number(
                    doc, "rpo_seconds", "measured.rpo_seconds", "rpo.seconds", "rpo.measured"
                ),
                rto_objective=_number(doc, "objectives.rto_seconds", "rto.objective")
                or float(topology.objectives.rto_seconds),
                rpo_objective=_number(doc, "objectives.rpo_seconds", "rpo.objective")
                or float(topology.objectives.rpo_seconds),
                target_region=doc.get("target_region") or doc.get("target"),
                report=_link(report),
                scenario=doc.get("scenario"),
                reason=doc.get("verdict_reason"),
            )
        )
    return sorted(drills, key=lambda d: d.at)


@dataclass(frozen=True)
class Switch:
    """The newest traffic switch an operation record shows done."""

    at: datetime
    operation: str
    kind: str


def _when(text: str | None) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def last_switch(records: Sequence[OperationRecord]) -> Switch | None:
    switches = []
    for record in records:
        step = record.steps.get(SWITCH_STEPS.get(record.kind, ""))
        when = _when(step.ended_at) if step and step.status is StepStatus.DONE else None
        if when is not None:
            switches.append(Switch(at=when, operation=record.id, kind=record.kind))
    return max(switches, key=lambda s: s.at, default=None)


def lag_staleness(lag: LagStatus | None, *, lease: Lease | None, switch: Switch | None) -> str | None:
    """Why a lag report no longer describes replication, or None: measured in the direction the
    traffic no longer goes, or before the last switch (a failover then a failback restores the
    direction, not the figures)."""
    if lag is None:
        return None
    if lease is not None and lag.source_region and lag.source_region != lease.active_region:
        return (
            f"measured {lag.source_region} → {lag.target_region}; {lease.active_region} is active now: "
            "the next lag check measures the new direction"
        )
    measured = _when(lag.measured_at)
    if switch is not None and measured is not None and measured < switch.at:
        return f"measured before the {switch.kind} {switch.operation} switched traffic"
    return None


def operation_view(record: OperationRecord, topology: Topology | None = None) -> OperationView:
    from mldr.runbooks.progress_view import awaiting_approval, stalled, took

    steps = tuple(StepView(s.name, s.status.value, s.seconds) for s in record.steps.values())
    waiting = awaiting_approval(record, topology) if topology is not None else None
    dead = stalled(record, topology) if topology is not None else None
    spent = took(record)
    return OperationView(
        id=record.id,
        kind=record.kind,
        status=record.status.value,
        target=record.params.target_region,
        mode=record.params.mode.value,
        requested_by=record.params.requested_by,
        reason=record.params.reason,
        created_at=record.created_at,
        seconds=spent.wall_seconds or 0.0,
        message=record.message,
        steps=steps,
        via_dag=not _CLI_OPERATION.match(record.id),
        awaiting_approval=waiting.describe() if waiting else None,
        took=spent.describe(),
        stalled=dead.describe() if dead else None,
    )


# --- reading ------------------------------------------------------------------------------


def metric_series(
    cloud: Cloud,
    topology: Topology,
    region: str,
    *,
    now: datetime | None = None,
    hours: int = PLOT_HOURS,
    period: int = PLOT_PERIOD_SECONDS,
) -> dict[tuple[str, str], Series]:
    """{(dataset, metric name): series} of the lag and backlog over the last `hours`, one read.

    The window ends at the period boundary after `now`, not at `now`: CloudWatch takes the end
    in whole seconds, so a point published less than a second ago fell after it (the
    measurement someone just ran was missing from the plot), and every region's periods start
    at the same instants, so the regions' series merge point for point.
    """
    moment = (now or datetime.now(UTC)).timestamp()
    end = datetime.fromtimestamp((math.floor(moment / period) + 1) * period, UTC)
    ids = {
        metric_id(topology, dataset.name, metric): (dataset.name, metric.value)
        for dataset in topology.datasets
        for metric in (Metric.REPLICATION_LAG_SECONDS, Metric.PENDING_OBJECTS)
    }
    points = cloud.metrics(region, timeouts=PROBE_TIMEOUTS).series(
        list(ids),
        start=end - timedelta(hours=hours),
        end=end,
        period_seconds=period,
        statistic=Statistic.MAXIMUM,  # the worst moment of each period is what matters for an RPO
    )
    return {key: Series(tuple(points.get(metric, ()))) for metric, key in ids.items()}


class _Cached:
    """One source's last value and when it was read.

    The first read waits for the source. After that, a page load that finds the value due waits
    up to `wait` seconds for one background refresh, so a change shows at the next load; a source
    slower than that (a region that does not answer) costs the refresh its timeouts, not the person
    looking at the page, who gets the last value and its age. Concurrent loads share reads.
    """

    def __init__(self, ttl: float, wait: float = REFRESH_WAIT_SECONDS) -> None:
        self.ttl, self.wait = ttl, wait
        self.lock = threading.Condition()
        self.value: Any = None
        self.error: str | None = None
        self.read_at = 0.0
        self.reading = False

    def _read(self, read: Callable[[], Any]) -> None:
        try:
            value, error = read(), None
        except MldrError as exc:
            value, error = None, str(exc)
        with self.lock:
            if error is None:
                self.value = value
            # on an error, keep showing the last good value, with the reason it was not refreshed
            self.error, self.read_at, self.reading = error, time.monotonic(), False
            self.lock.notify_all()

    def get(
        self, read: Callable[[], Any], background: Callable[[Callable[[], None]], object] | None = None
    ) -> tuple[Any, str | None, float]:
        """(value, error of the last read, age in seconds); `background` runs a refresh elsewhere."""
        with self.lock:
            first = not self.read_at
            last_read = self.read_at
            due = first or time.monotonic() - self.read_at >= self.ttl
            start = due and not self.reading
            if start:
                self.reading = True
        if start and (first or background is None):
            self._read(read)
        elif start and background is not None:
            background(lambda: self._read(read))
        with self.lock:
            while not self.read_at:  # someone else is doing the first read
                self.lock.wait()
            if due:  # a refresh is under way (ours or another load's): give it a moment
                self.lock.wait_for(lambda: self.read_at != last_read, timeout=self.wait)
            return self.value, self.error, time.monotonic() - self.read_at


class DashboardSource:
    """Reads the dashboard's sources for one topology, each cached for its own time-to-live."""

    def __init__(
        self,
        topology: Topology,
        cloud: Cloud,
        *,
        control_ttl: float = CONTROL_TTL_SECONDS,
        records_ttl: float = RECORDS_TTL_SECONDS,
    ) -> None:
        self.topology = topology
        self.cloud = cloud
        self.control = cloud.control()
        self._cache = {
            "lease": _Cached(control_ttl),
            "operations": _Cached(control_ttl),
            "lag": _Cached(records_ttl),
            "verification": _Cached(records_ttl),
            "drills": _Cached(records_ttl),
            "metrics": _Cached(records_ttl),
            "autopilot": _Cached(control_ttl),
        }
        self._readers: dict[str, Callable[[], Any]] = {
            "lease": self.control.read_lease,
            "operations": self._read_operations,
            "lag": lambda: latest_reports(cloud, topology, "replication-lag", limit=self._per_dataset),
            "verification": lambda: latest_reports(cloud, topology, "verification", limit=self._per_dataset),
            "drills": lambda: latest_reports(cloud, topology, "drill", limit=12),
            "metrics": self._read_metrics,
            "autopilot": lambda: read_autopilot(self.control, topology),
        }
        self._pool = ThreadPoolExecutor(max_workers=len(self._cache), thread_name_prefix="mldr-dashboard")
        self._refresh = ThreadPoolExecutor(max_workers=len(self._cache), thread_name_prefix="mldr-refresh")

    @property
    def _per_dataset(self) -> int:
        # DAG runs store one report per dataset: enough of them that every dataset has its newest
        return 2 * len(self.topology.datasets)

    def _read_operations(self) -> list[OperationRecord]:
        return OperationStore(self.control).history(limit=10)

    def _read_metrics(self) -> tuple[tuple[str, ...], dict[tuple[str, str], Series]]:
        """From every region that answers, merged: the checks publish to each region on a best-effort
        basis, so a point one region missed (it did not answer then) comes from the other."""
        errors, answered = [], []
        merged: dict[tuple[str, str], dict[float, float]] = {}
        for region in self.topology.region_names:
            try:
                # a region found down moments ago: not another timeout per page load
                with self.cloud.silent.guard(region):
                    series = metric_series(self.cloud, self.topology, region)
            except MldrError as exc:
                errors.append(str(exc))
                continue
            answered.append(region)
            for key, values in series.items():
                points = merged.setdefault(key, {})
                for stamp, value in values.points:
                    points[stamp] = max(value, points.get(stamp, value))
        if not answered:
            raise MldrError("CloudWatch metrics not readable in any region: " + "; ".join(errors))
        return tuple(answered), {key: Series(tuple(sorted(p.items()))) for key, p in merged.items()}

    def read(self) -> Dashboard:
        futures = {
            name: self._pool.submit(cache.get, self._readers[name], self._refresh.submit)
            for name, cache in self._cache.items()
        }
        results = {name: future.result() for name, future in futures.items()}
        problems = [f"{name}: {error}" for name, (_, error, _) in results.items() if error]
        value: dict[str, Any] = {name: result[0] for name, result in results.items()}
        topology = self.topology
        lag = lag_by_dataset(value["lag"] or [])
        verification = verification_by_dataset(value["verification"] or [])
        metrics_regions, series = value["metrics"] or ((), {})
        series = dict[tuple[str, str], Series](series)
        datasets = tuple(
            DatasetStatus(
                name=d.name,
                kind=d.kind.value,
                rpo_seconds=d.rpo_seconds,
                lag=lag.get(d.name),
                verification=verification.get(d.name),
                lag_series=series.get((d.name, Metric.REPLICATION_LAG_SECONDS.value), Series()),
                pending_series=series.get((d.name, Metric.PENDING_OBJECTS.value), Series()),
            )
            for d in topology.datasets
        )
        operations = tuple(operation_view(r, topology) for r in value["operations"] or [])
        lease: Lease | None = value["lease"]
        switch = last_switch(value["operations"] or [])
        datasets = tuple(
            replace(ds, lag_stale=lag_staleness(ds.lag, lease=lease, switch=switch)) for ds in datasets
        )
        in_progress = None
        if lease is not None and lease.operation is not None:
            in_progress = next((o for o in operations if o.id == lease.operation.id), None)
        if in_progress is None:
            in_progress = next((o for o in operations if o.status == OperationStatus.RUNNING.value), None)
        return Dashboard(
            topology_name=topology.name,
            primary_region=topology.primary_region,
            secondary_region=topology.secondary_region,
            rto_objective=float(topology.objectives.rto_seconds),
            rpo_objective=float(topology.objectives.rpo_seconds),
            lease=lease,
            in_progress=in_progress,
            operations=operations,
            datasets=datasets,
            drills=tuple(drills_of(value["drills"] or [], topology)),
            problems=tuple(problems),
            generated_at=datetime.now(UTC),
            metrics_regions=metrics_regions,
            ages={name: round(age, 1) for name, (_, _, age) in results.items()},
            autopilot=value["autopilot"],
        )

    def report_html(self, kind: str, name: str) -> tuple[str, str]:
        """(region, HTML) of one stored report, by its key: a GET, never a listing."""
        from mldr.reports import REPORT_TIMEOUTS, report_key

        key = report_key(kind, name, "html")
        errors = []
        for region in self.topology.region_names:
            bucket = self.topology.region(region).ops_bucket
            try:
                body = self.cloud.objects(region, timeouts=REPORT_TIMEOUTS).get(bucket, key).body
                return region, body.decode("utf-8", errors="replace")
            except MldrError as exc:
                errors.append(str(exc))
        raise MldrError("report not readable in any region: " + "; ".join(errors))
