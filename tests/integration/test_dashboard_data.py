"""The DR dashboard's data from the sandbox's recorded results: the lease, the newest lag report and
the CloudWatch series it published - also while the primary region is down."""

from __future__ import annotations

import time
import uuid

import pytest

from mldr.airflow.dashboard.data import DashboardSource
from mldr.airflow.dashboard.render import render
from mldr.checks.metrics import publish
from mldr.checks.replication import LagOptions, lag_metrics, measure_lag, render_html
from mldr.cloud.aws.clients import PROBE_TIMEOUTS, ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.reports import report_name, store_report
from mldr.sandbox.manager import Sandbox
from mldr.topology import load_topology

pytestmark = pytest.mark.sandbox


def test_dashboard_reads_what_the_lag_check_recorded_and_survives_a_region_outage(sandbox: Sandbox) -> None:
    # A topology name of its own: CloudWatch plots each period's maximum, and another test's lag
    # check published in the same 5-minute period would otherwise be the point plotted.
    shared = load_topology(use_airflow=False)
    topology = shared.model_copy(update={"name": f"{shared.name}-dashboard-{uuid.uuid4().hex[:8]}"})
    factory = ClientFactory.from_environment(topology)
    cloud = AwsCloud(factory)
    # what `mldr lag` and the dr_replication_lag DAG do: measure, keep the report, publish metrics
    report = measure_lag(cloud, topology, options=LagOptions(canary_timeout_seconds=15))
    name = report_name("dashboard-test")
    document = report.to_dict()
    store_report(
        cloud, topology, kind="replication-lag", name=name, document=document, html=render_html(document)
    )
    for dataset in report.datasets:
        publish(AwsCloud(factory), topology, dataset=dataset.name, values=lag_metrics(dataset))

    source = DashboardSource(topology, AwsCloud.from_environment(topology, timeouts=PROBE_TIMEOUTS))
    dashboard = source.read()
    assert dashboard.problems == ()
    assert dashboard.metrics_regions == tuple(topology.region_names)
    assert dashboard.lease is not None and dashboard.lease.active_region == topology.primary_region
    measured = {d.name: d.lag_seconds for d in report.datasets}
    for status in dashboard.datasets:
        assert status.lag is not None and status.lag.report.name == name, status.name
        assert status.lag.lag_seconds == pytest.approx(measured[status.name], abs=1e-3)
        assert status.lag_series.latest == pytest.approx(measured[status.name], abs=1e-3), (
            "plotted from CloudWatch"
        )
        assert status.pending_series.points, status.name
    region, page = source.report_html("replication-lag", name)
    assert region == topology.primary_region and "<html" in page.lower()
    started = time.monotonic()
    assert source.read().lease == dashboard.lease
    assert time.monotonic() - started < 0.5, "a page load within the cache's lifetime reads nothing"

    # the primary region stops answering: the dashboard still shows the DR state, from the rest
    sandbox.region_outage(topology.primary_region)
    try:
        during = DashboardSource(topology, AwsCloud.from_environment(topology, timeouts=PROBE_TIMEOUTS))
        started = time.monotonic()
        outage = during.read()
        took = time.monotonic() - started
        page = render(outage)
    finally:
        sandbox.heal(topology.primary_region)
    assert outage.lease is not None and outage.lease.active_region == topology.primary_region
    assert outage.metrics_regions == (topology.secondary_region,), "metrics from the region that answers"
    assert all(d.lag is not None and d.lag.report.name == name for d in outage.datasets), (
        "reports from the replica"
    )
    assert 'id="active-region"' in page
    # one timeout per region that does not answer, not one per report kind and listing window
    assert took < 15, f"the first read during the outage took {took:.0f}s"
