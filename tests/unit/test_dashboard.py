"""The DR dashboard without a sandbox: what it makes of recorded documents, what the page shows,
that it needs an Airflow login and changes nothing, and that Airflow's plugin loader finds it."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from fastapi.testclient import TestClient

from mldr.airflow.dashboard import app as dashboard_app
from mldr.airflow.dashboard.access import DASHBOARD_DAGS
from mldr.airflow.dashboard.data import (
    SWITCH_STEPS,
    Dashboard,
    DatasetStatus,
    Series,
    _Cached,
    drills_of,
    lag_by_dataset,
    lag_staleness,
    last_switch,
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


def test_a_refresh_slower_than_the_wait_serves_the_last_value_while_it_goes_on() -> None:
    values = iter([1, 2])
    queued: list[Any] = []
    cache = _Cached(ttl=0, wait=0.05)
    assert cache.get(lambda: next(values), queued.append)[0] == 1, "the first read waits"
    assert cache.get(lambda: next(values), queued.append)[0] == 1, "then the page does not wait for long"
    assert cache.get(lambda: next(values), queued.append)[0] == 1 and len(queued) == 1, (
        "one refresh at a time"
    )
    queued[0]()
    assert cache.get(lambda: 3, lambda _: None)[0] == 2


def test_a_change_shows_at_the_next_load_when_the_source_answers_within_the_wait() -> None:
    """A page loaded 24 s after a failback showed the old active region ("lease 60s" old): the
    due refresh ran in the background and only the load after next saw it."""
    region = ["us-east-1"]
    cache = _Cached(ttl=0, wait=30)  # generous: the refresh thread only has to run
    with ThreadPoolExecutor(max_workers=1) as background:
        assert cache.get(lambda: region[0], background.submit)[0] == "us-east-1"
        region[0] = "us-west-2"  # the failback moved the lease
        value, error, age = cache.get(lambda: region[0], background.submit)
    assert (value, error) == ("us-west-2", None) and age < 30


def _switched(kind: str, ended_at: str) -> OperationRecord:
    step = SWITCH_STEPS[kind]
    return OperationRecord(
        id=f"{kind}-20261129T115000Z-abc123",
        kind=kind,
        params=FAILOVER_PARAMS,
        status=OperationStatus.COMPLETED,
        steps={step: StepRecord(step, StepStatus.DONE, ended_at=ended_at)},
    )


def test_lag_measured_before_a_switch_is_stale_not_ok() -> None:
    lag = lag_by_dataset([stored("replication-lag", "20261129T115500Z-cli", lag_doc(("features", 5.0)))])[
        "features"
    ]
    assert lag.ok and lag.source_region == "us-east-1"
    east = Lease(active_region="us-east-1", fencing_token=9)
    west = Lease(active_region="us-west-2", fencing_token=8)
    assert lag_staleness(lag, lease=east, switch=None) is None, "measured in the direction in force"
    assert "us-west-2 is active now" in (lag_staleness(lag, lease=west, switch=None) or "")
    # a failover then a failback restore the direction, not the figures measured before them
    back = last_switch(
        [_switched("failover", "2026-11-29T11:50:00Z"), _switched("failback", "2026-11-29T11:58:00Z")]
    )
    assert back is not None and back.kind == "failback"
    assert "before the failback" in (lag_staleness(lag, lease=east, switch=back) or "")
    earlier = last_switch([_switched("failback", "2026-11-29T11:50:00+00:00")])
    assert lag_staleness(lag, lease=east, switch=earlier) is None, "measured after the switch"
    page = render(
        dashboard(datasets=(replace(dashboard().datasets[0], lag_stale="measured before the failback"),))
    )
    row = re.search(r'<tr data-dataset="features">.*?</tr>', page, re.S)
    assert row and "STALE" in row.group(0) and ">OK<" not in row.group(0)


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
    app.dependency_overrides[dashboard_app.dr_reader] = lambda: {"username": "viewer"}  # may read the DR DAGs
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


class PerDagAuthManager(SimpleAuthManager):
    """An auth manager with per-DAG read grants (as FAB or Keycloak have), for two users."""

    GRANTS = {
        "dr-oncall": set(DASHBOARD_DAGS) | {"ml_training_pipeline"},
        "ml-team": {"ml_training_pipeline"},
    }

    def is_authorized_dag(
        self, *, method: str, user: Any, access_entity: Any = None, details: Any = None
    ) -> bool:
        return method == "GET" and details is not None and details.id in self.GRANTS.get(user.username, set())


def test_only_users_who_may_read_the_dr_dags_see_the_dashboard(
    source: FakeSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.api_fastapi import app as airflow_app
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.models.revoked_token import RevokedToken

    monkeypatch.setattr(RevokedToken, "is_revoked", classmethod(lambda cls, jti, **_: False))
    manager = PerDagAuthManager()
    monkeypatch.setattr(airflow_app._AuthManagerState, "instance", manager)
    client = TestClient(dashboard_app.create_app(lambda: source))  # type: ignore[arg-type, return-value]

    def bearer(username: str) -> dict[str, str]:
        token = manager.generate_jwt(SimpleAuthManagerUser(username=username, role="viewer"))
        return {"Authorization": f"Bearer {token}"}

    for path in ("/", "/api/status", "/reports/drill/20261129T100000Z-b"):
        assert client.get(path, headers=bearer("dr-oncall")).status_code == 200, path
        refused = client.get(path, headers=bearer("ml-team"))
        assert refused.status_code == 403, path
        assert "may not read the DR DAGs" in refused.text and "dr_failover" in refused.text
        assert "us-west-2" not in refused.text, "no DR data in the refusal"
    # a browser gets a page saying why, not a loop back to the login it already passed
    page = client.get("/", headers={**bearer("ml-team"), "Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 403 and "Ask an Airflow admin" in page.text


def test_the_simple_auth_manager_refuses_a_user_without_a_role(
    source: FakeSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow's own simple auth manager, unpatched: a viewer may read the DR DAGs, a user the
    manager gives no role may not."""
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.models.revoked_token import RevokedToken

    monkeypatch.setattr(RevokedToken, "is_revoked", classmethod(lambda cls, jti, **_: False))
    manager = init_auth_manager()
    assert type(manager) is SimpleAuthManager
    client = TestClient(dashboard_app.create_app(lambda: source))  # type: ignore[arg-type, return-value]
    for role, expected in (("viewer", 200), (None, 403)):
        token = manager.generate_jwt(SimpleAuthManagerUser(username="someone", role=role))
        response = client.get("/api/status", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == expected, role


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


def test_the_report_link_the_cli_prints_opens_the_report(logged_in: TestClient) -> None:
    """`mldr.reports.report_url` (CLI output, task logs, alerts) leads to this app's report route."""
    from mldr.reports import report_url

    base = "http://localhost:8080"
    url = report_url("s3://ops/reports/drill/20261129T100000Z-b.html", base)
    assert url is not None and url.startswith(base + dashboard_app.URL_PREFIX + "/")
    page = logged_in.get(url.removeprefix(base + dashboard_app.URL_PREFIX))
    assert page.status_code == 200 and page.text == "<html>drill/20261129T100000Z-b</html>"


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


def test_the_autopilot_section_shows_the_policy_the_verdict_the_command_and_each_observer() -> None:
    from mldr.airflow.dashboard.autopilot_view import AutopilotView, ObserverView

    command = "mldr failover --to us-west-2 --mode unplanned --reason 'autopilot: <dead>'"
    view = AutopilotView(
        mode="recommend",
        observers_required=3,
        observers=4,
        for_seconds=60.0,
        block_after_seconds=3600.0,
        max_per_day=1,
        changed_by="alice",
        verdict="recommend-failover",
        why="us-east-1 dead (3 of 4 observers failing for 61s)",
        command=command,
        decided_at="2026-11-29T11:58:00Z",
        watched_region="us-east-1",
        observations=(
            ObserverView("route53", False, "0/3 checkers healthy"),
            ObserverView("dns_inference", True, "0/4 requests failed"),
        ),
    )
    page = render(dashboard(autopilot=view))
    assert 'data-mode="recommend"' in page and "3 of 4 observers" in page
    assert 'data-verdict="recommend-failover"' in page
    assert "mldr failover --to us-west-2 --mode unplanned --reason &#39;autopilot: &lt;dead&gt;&#39;" in page
    assert re.search(r'data-observer="route53">.*FAILING.*0/3 checkers healthy', page)
    assert re.search(r'data-observer="dns_inference">.*>ok<.*0/4 requests failed', page)
    assert 'id="autopilot"' not in render(dashboard()), "no section without an autopilot reading"
