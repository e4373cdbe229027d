"""The DR dashboard without a sandbox: what it makes of recorded documents, what the page shows,
that it needs an Airflow login and changes nothing, and that Airflow's plugin loader finds it."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mldr.airflow.dashboard import app as dashboard_app
from mldr.airflow.dashboard.data import (
    Dashboard,
    DatasetStatus,
    Series,
    _Cached,
    drills_of,
    lag_by_dataset,
    operation_view,
    verification_by_dataset,
)
from mldr.airflow.dashboard.render import line_chart, render
from mldr.cloud.control import Lease, Operation
from mldr.errors import MldrError
from mldr.reports import StoredReport
from mldr.runbooks.engine import OperationRecord, OperationStatus, StepRecord, StepStatus
from mldr.runbooks.params import Mode, OperationParams
from mldr.topology import load_topology_file

REPO = Path(__file__).resolve().parents[2]
TOPOLOGY = load_topology_file(REPO / "tests" / "fixtures" / "topology.json")
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def lag_doc(*datasets: tuple[str, float], run_id: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": "replication-lag",
        "measured_at": "2026-11-29T11:55:00Z",
        "datasets": [
            {
                "name": name,
                "ok": lag < 60,
                "lag_seconds": lag,
                "pending_objects": 3,
                "pending_bytes": 2048,
                "failed_objects": 0,
                "rpo_exposure_seconds": lag,
                "threshold_seconds": 60.0,
                "source_region": "us-east-1",
                "target_region": "us-west-2",
                "problems": [] if lag < 60 else [f"{name}: <b>over</b> the RPO"],
            }
            for name, lag in datasets
        ],
    }
    if run_id:
        doc["airflow"] = {"run_id": run_id}
    return doc


def stored(kind: str, name: str, document: dict[str, Any]) -> StoredReport:
    return StoredReport(
        kind=kind, name=name, uris={"us-east-1": f"s3://ops/reports/{kind}/{name}.json"}, document=document
    )


def test_the_newest_measurement_of_each_dataset_wins() -> None:
    reports = [  # newest first, as latest_reports returns them
        stored(
            "replication-lag", "20261129T115500Z-features-run2", lag_doc(("features", 2.5), run_id="run2")
        ),
        stored(
            "replication-lag", "20261129T115000Z-cli-all", lag_doc(("features", 9.0), ("training-data", 1.25))
        ),
    ]
    lag = lag_by_dataset(reports)
    assert lag["features"].lag_seconds == 2.5 and lag["features"].report.run_id == "run2"
    assert lag["features"].report.dag_id == "dr_replication_lag"
    assert lag["training-data"].lag_seconds == 1.25 and lag["training-data"].report.run_id is None
    assert "model-artifacts" not in lag


def test_verification_counts_and_broken_recovery_points() -> None:
    doc = {
        "finished_at": "2026-11-29T03:00:00Z",
        "datasets": [
            {
                "name": "model-artifacts",
                "ok": False,
                "objects_checked": 40,
                "missing": ["a", "b"],
                "mismatched": ["c"],
                "pending": [],
                "recovery_points": [
                    {"model": "iris", "version": "v1", "state": "restorable"},
                    {"model": "iris", "version": "v2", "state": "broken"},
                ],
            }
        ],
    }
    status = verification_by_dataset([stored("verification", "20261129T030000Z-x", doc)])["model-artifacts"]
    assert (status.ok, status.objects_checked) == (False, 40)
    assert status.counts == {"missing": 2, "extra": 0, "mismatched": 1, "pending": 0, "failed": 0}
    assert status.broken_recovery_points == ("iris/v2",) and status.recovery_points == 2


def test_drills_read_rto_and_rpo_oldest_first_with_the_objectives() -> None:
    reports = [
        stored(
            "drill", "20261129T100000Z-b", {"ok": True, "measured": {"rto_seconds": 42.0, "rpo_seconds": 0}}
        ),
        stored(
            "drill",
            "20261101T100000Z-a",
            {"ok": False, "rto_seconds": 400, "rpo_seconds": 5, "target": "us-west-2"},
        ),
    ]
    reports.append(  # the drill runbook's own document (mldr.runbooks.drill)
        stored(
            "drill",
            "20261115T100000Z-c",
            {
                "scenario": "region-outage",
                "target": "us-west-2",
                "verdict": "fail",
                "verdict_reason": "RTO 350.0 s > 300 s",
                "rto_seconds": 350.0,
                "rpo_seconds": 1.5,
                "objectives": {"rto_seconds": 300, "rpo_seconds": 900},
            },
        )
    )
    drills = drills_of(reports, TOPOLOGY)
    assert [d.rto_seconds for d in drills] == [400.0, 350.0, 42.0]
    assert [d.rpo_seconds for d in drills] == [5.0, 1.5, 0.0]
    assert [d.ok for d in drills] == [False, False, True]
    assert drills[1].scenario == "region-outage" and drills[1].reason == "RTO 350.0 s > 300 s"
    page = render(dashboard(drills=tuple(drills)))
    assert page.count('<tr class="drill">') == 3 and "RTO 350.0 s &gt; 300 s" in page
    assert (
        drills[0].rto_objective == TOPOLOGY.objectives.rto_seconds and drills[0].target_region == "us-west-2"
    )


FAILOVER_PARAMS = OperationParams(
    kind="failover",
    target_region="us-west-2",
    mode=Mode.PLANNED,
    requested_by="sre",
    reason="drill of the dashboard",
)


def test_operations_from_the_cli_and_from_dag_runs_are_told_apart() -> None:
    record = OperationRecord(
        id="failover-20261129T041800Z-1a2b3c",
        kind="failover",
        params=FAILOVER_PARAMS,
        steps={
            "preflight": StepRecord("preflight", StepStatus.DONE, seconds=1.5),
            "fence": StepRecord("fence", StepStatus.RUNNING),
        },
    )
    cli = operation_view(record)
    assert not cli.via_dag and cli.current_step == "fence" and cli.seconds == 1.5
    dag = operation_view(replace(record, id="failover-manual__2026-11-29T04-18-00-00-00"))
    assert dag.via_dag and dag.dag_id == "dr_failover"


def test_an_operation_awaiting_approval_says_so_with_who_and_since_when() -> None:
    """Issue 16 item 6: the dashboard said "No operation in progress" while a failover waited for
    its approver (the lease is taken only after the answer)."""
    record = OperationRecord(
        id="failover-manual__2026-11-29T04-18-00-00-00",
        kind="failover",
        params=replace(FAILOVER_PARAMS, require_approval=True),
        steps={
            "preflight": StepRecord(
                "preflight",
                StepStatus.DONE,
                started_at="2026-11-29T04:18:01+00:00",
                ended_at="2026-11-29T04:18:03+00:00",
                seconds=2.0,
            )
        },
    )
    view = operation_view(record, TOPOLOGY)
    assert view.awaiting_approval is not None
    assert view.awaiting_approval.startswith("awaiting approval since 2026-11-29T04:18:03+00:00 by ")
    page = render(dashboard(lease=Lease(active_region="us-east-1", fencing_token=7), operations=(view,)))
    assert "No operation in progress" not in page
    assert "failover to us-west-2 awaiting approval since" in page and "Required Actions" in page


def dashboard(**changes: Any) -> Dashboard:
    lag = lag_by_dataset([stored("replication-lag", "20261129T115500Z-cli", lag_doc(("features", 75.0)))])
    points = tuple((NOW.timestamp() - 300 * i, float(i)) for i in range(12, 0, -1))
    base = Dashboard(
        topology_name="example",
        primary_region="us-east-1",
        secondary_region="us-west-2",
        rto_objective=300.0,
        rpo_objective=900.0,
        lease=Lease(active_region="us-west-2", fencing_token=7, updated_at="2026-11-29T11:00:00Z"),
        in_progress=None,
        operations=(),
        datasets=(
            DatasetStatus(
                "features", "features", 60, lag.get("features"), None, Series(points), Series(points)
            ),
            DatasetStatus("model-artifacts", "model_artifacts", 30, None, None),
        ),
        drills=(),
        problems=(),
        generated_at=NOW,
    )
    return replace(base, **changes)


def test_the_page_shows_the_active_region_token_lag_and_plots() -> None:
    page = render(dashboard())
    assert re.search(r'id="active-region" data-role="secondary">us-west-2<', page)
    assert 'id="fencing-token">7<' in page
    assert 'data-dataset="features"' in page and 'class="num lag" data-value="75.000"' in page
    assert "BREACH" in page and "&lt;b&gt;over&lt;/b&gt;" in page, "findings are shown, escaped"
    assert "no replication-lag report yet" in page, "a dataset never measured says so"
    assert 'id="lag-features"' in page and 'data-points="12"' in page
    assert "<script" not in page, "no JavaScript"
    assert 'href="../dags/dr_failover/runs" target="_top"' in page, "links into the Airflow UI"


def test_an_operation_in_progress_shows_its_current_step() -> None:
    op = Operation(
        id="failover-20261129T115000Z-abcdef",
        kind="failover",
        source="us-east-1",
        target="us-west-2",
        mode="unplanned",
        started_by="sre",
        reason="use1 outage",
        started_at="2026-11-29T11:50:00Z",
        step="drain",
    )
    record = OperationRecord(
        id=op.id,
        kind="failover",
        params=FAILOVER_PARAMS,
        steps={"fence": StepRecord("fence", StepStatus.DONE, seconds=0.4), "drain": StepRecord("drain")},
        status=OperationStatus.RUNNING,
    )
    page = render(
        dashboard(
            lease=Lease("us-east-1", 8, op, fenced_regions=("us-east-1",)),
            in_progress=operation_view(record),
            problems=("metrics: CloudWatch namespace MLDR in us-east-1: no answer",),
        )
    )
    assert 'id="operation-step">drain<' in page and "failover in progress" in page
    assert 'class="step running" data-step="drain"' in page and 'class="step done" data-step="fence"' in page
    assert 'id="fenced-regions">us-east-1<' in page
    assert 'id="problems"' in page and "no answer" in page


def test_line_chart_plots_every_point_and_the_threshold() -> None:
    start, end = NOW.timestamp() - 86400, NOW.timestamp()
    svg = line_chart(
        Series(((start + 60, 1.0), (end - 60, 3.0))), start=start, end=end, title="t", threshold=2.0
    )
    assert svg.count("<polyline") == 1 and 'stroke-dasharray="4 3"' in svg
    assert len(re.search(r'<polyline[^>]* points="([^"]+)"', svg).group(1).split()) == 2  # type: ignore[union-attr]
    assert "no data in the last 24 h" in line_chart(Series(), start=start, end=end, title="t")


def test_cached_reads_once_per_ttl_and_keeps_the_last_value_on_errors() -> None:
    calls: list[int] = []

    def read() -> int:
        calls.append(1)
        if len(calls) == 2:
            raise MldrError("region down")
        return len(calls)

    cache = _Cached(ttl=60)
    assert cache.get(read)[:2] == (1, None)
    assert cache.get(read)[:2] == (1, None) and len(calls) == 1, "within the TTL: no read"
    cache.ttl = 0
    assert cache.get(read)[:2] == (1, "region down"), "the last good value, with the reason"
    assert cache.get(read)[:2] == (3, None)


def test_a_stale_value_is_served_at_once_while_a_background_read_refreshes_it() -> None:
    values = iter([1, 2])
    queued: list[Any] = []
    cache = _Cached(ttl=0)
    assert cache.get(lambda: next(values), queued.append)[0] == 1, "the first read waits"
    assert cache.get(lambda: next(values), queued.append)[0] == 1, "then the page does not wait"
    assert cache.get(lambda: next(values), queued.append)[0] == 1 and len(queued) == 1, (
        "one refresh at a time"
    )
    queued[0]()
    assert cache.get(lambda: 3, lambda _: None)[0] == 2


# --- the app ----------------------------------------------------------------------------------


class FakeSource:
    def __init__(self) -> None:
        self.reads = 0

    def read(self) -> Dashboard:
        self.reads += 1
        return dashboard()

    def report_html(self, kind: str, name: str) -> tuple[str, str]:
        if name == "missing":
            raise MldrError("NoSuchKey")
        return "us-west-2", f"<html>{kind}/{name}</html>"


@pytest.fixture
def source() -> FakeSource:
    return FakeSource()


@pytest.fixture
def anonymous(source: FakeSource) -> TestClient:
    return TestClient(dashboard_app.create_app(lambda: source))  # type: ignore[arg-type, return-value]


@pytest.fixture
def logged_in(source: FakeSource) -> TestClient:
    app = dashboard_app.create_app(lambda: source)  # type: ignore[arg-type, return-value]
    app.dependency_overrides[dashboard_app.get_user] = lambda: {"username": "viewer"}
    return TestClient(app)


def test_requires_an_airflow_login(anonymous: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    for path in ("/", "/api/status", "/reports/drill/x"):
        assert anonymous.get(path).status_code == 401, path

    class AuthManager:
        def get_url_login(self, next_url: str) -> str:
            return f"/auth/login?next={next_url}"

    import airflow.api_fastapi.app

    monkeypatch.setattr(airflow.api_fastapi.app, "get_auth_manager", lambda: AuthManager())
    browser = anonymous.get("/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert browser.status_code == 303 and browser.headers["location"].startswith("/auth/login?next=")
    assert anonymous.get("/icon.svg").status_code == 200, "the nav icon carries no data"


def test_accepts_the_airflow_session_cookie(source: FakeSource, monkeypatch: pytest.MonkeyPatch) -> None:
    """A JWT the Airflow auth manager issued, in the `_token` cookie the UI sets at login."""
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.models.revoked_token import RevokedToken

    # logouts are recorded in the metadata DB, which a unit test does not have
    monkeypatch.setattr(RevokedToken, "is_revoked", classmethod(lambda cls, jti, **_: False))

    manager = init_auth_manager()
    token = manager.generate_jwt(SimpleAuthManagerUser(username="viewer", role="viewer"))
    client = TestClient(dashboard_app.create_app(lambda: source))  # type: ignore[arg-type, return-value]
    client.cookies.set("_token", token)
    assert client.get("/").status_code == 200
    client.cookies.set("_token", token[:-4] + "AAAA")
    assert client.get("/").status_code in (401, 403), "a tampered token is refused"


def test_serves_the_page_json_and_reports_read_only(logged_in: TestClient, source: FakeSource) -> None:
    page = logged_in.get("/")
    assert page.status_code == 200 and 'id="active-region"' in page.text
    assert page.headers["cache-control"] == "no-store"
    status = logged_in.get("/api/status").json()
    assert status["lease"]["active_region"] == "us-west-2"
    assert status["datasets"][0]["lag"]["lag_seconds"] == 75.0
    report = logged_in.get("/reports/drill/20261129T100000Z-b")
    assert report.text == "<html>drill/20261129T100000Z-b</html>"
    assert "sandbox" in report.headers["content-security-policy"], "stored HTML cannot run scripts"
    assert logged_in.get("/reports/drill/missing").status_code == 404
    for method in ("post", "put", "delete"):
        assert getattr(logged_in, method)("/").status_code == 405, f"{method}: the dashboard is read-only"


def test_airflow_loads_the_plugin_and_nothing_else_from_plugins() -> None:
    from airflow._shared.plugins_manager.plugins_manager import _load_plugins_from_plugin_directory

    plugins, errors = _load_plugins_from_plugin_directory(plugins_folder=str(REPO / "plugins"))
    assert errors == {}
    assert [p.name for p in plugins] == ["mldr_dashboard"], ".airflowignore keeps the library's modules out"
    plugin = plugins[0]
    assert [(a["url_prefix"], a["name"]) for a in plugin.fastapi_apps] == [("/mldr", "mldr DR dashboard")]
    (view,) = plugin.external_views
    assert view["href"] == "mldr/" and not view["href"].startswith("/"), "relative to the Airflow base URL"
    assert (view["destination"], view["url_route"], view["nav_top_level"]) == ("nav", "dr-dashboard", True)


def test_dashboard_timestamps_render_relative_to_now() -> None:
    page = render(dashboard(generated_at=NOW + timedelta(minutes=5)))
    assert "(5.0 min ago)" in page or "(10.0 min ago)" in page


def test_the_plot_includes_a_measurement_published_a_moment_ago() -> None:
    """CloudWatch takes EndTime in whole seconds: a window ending at `now` left out a point
    published in the same second - the lag someone had just measured was missing."""
    from moto import mock_aws

    from mldr.airflow.dashboard.data import metric_series
    from mldr.checks.metrics import Metric, samples
    from mldr.cloud.aws.cloud import AwsCloud

    topology = TOPOLOGY
    dataset = topology.datasets[0].name
    region = topology.primary_region
    published = datetime(2026, 11, 29, 10, 30, 21, 400_000, tzinfo=UTC)
    with mock_aws():
        cloud = AwsCloud.from_environment(topology)
        cloud.metrics(region).publish(
            samples(topology, dataset, {Metric.REPLICATION_LAG_SECONDS: 1.224}, at=published)
        )
        series = metric_series(cloud, topology, region, now=published + timedelta(milliseconds=300))
    assert series[(dataset, Metric.REPLICATION_LAG_SECONDS.value)].latest == pytest.approx(1.224)
