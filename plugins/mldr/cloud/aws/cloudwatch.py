"""CloudWatch as the runbooks' metrics (`mldr.cloud.Metrics`).

Calls are probe-sized by default: a metric is never worth a runbook step's timeout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from itertools import groupby
from typing import Any

from mldr.cloud.aws.clients import PROBE_TIMEOUTS, ClientFactory
from mldr.cloud.aws.errors import aws_call
from mldr.cloud.calls import Timeouts
from mldr.cloud.telemetry import MetricId, Points, Sample, Statistic

#: PutMetricData takes at most this many entries per call.
MAX_PER_PUT = 1000


def _dimensions(metric: MetricId) -> list[dict[str, str]]:
    return [{"Name": name, "Value": value} for name, value in metric.dimensions]


def metric_datum(sample: Sample) -> dict[str, object]:
    return {
        "MetricName": sample.metric.name,
        "Dimensions": _dimensions(sample.metric),
        "Timestamp": sample.at,
        "Value": float(sample.value),
        "Unit": sample.unit.value,
    }


class CloudWatchMetrics:
    def __init__(self, factory: ClientFactory, region: str, *, timeouts: Timeouts | None = None) -> None:
        self.factory = factory
        self.region = region
        self.timeouts = timeouts

    def _client(self) -> Any:
        return self.factory.client("cloudwatch", self.region, timeouts=self.timeouts or PROBE_TIMEOUTS)

    def publish(self, samples: Sequence[Sample]) -> None:
        client = self._client()
        by_namespace = sorted(samples, key=lambda s: s.metric.namespace)
        for namespace, group in groupby(by_namespace, key=lambda s: s.metric.namespace):
            data = [metric_datum(s) for s in group]
            with aws_call(f"CloudWatch namespace {namespace}", region=self.region):
                for start in range(0, len(data), MAX_PER_PUT):
                    client.put_metric_data(Namespace=namespace, MetricData=data[start : start + MAX_PER_PUT])

    def series(
        self,
        metrics: Sequence[MetricId],
        *,
        start: datetime,
        end: datetime,
        period_seconds: int,
        statistic: Statistic,
    ) -> Mapping[MetricId, Points]:
        ids = {f"m{i}": metric for i, metric in enumerate(metrics)}
        queries = [
            {
                "Id": query_id,
                "MetricStat": {
                    "Metric": {
                        "Namespace": metric.namespace,
                        "MetricName": metric.name,
                        "Dimensions": _dimensions(metric),
                    },
                    "Period": period_seconds,
                    "Stat": statistic.value,
                },
                "ReturnData": True,
            }
            for query_id, metric in ids.items()
        ]
        values: dict[MetricId, dict[float, float]] = {metric: {} for metric in metrics}
        kwargs: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        }
        namespaces = ", ".join(sorted({m.namespace for m in metrics}))
        client = self._client()
        with aws_call(f"CloudWatch namespace {namespaces}", region=self.region):
            while True:
                response = client.get_metric_data(**kwargs)
                for result in response.get("MetricDataResults", []):
                    metric = ids.get(result["Id"])
                    if metric is None:
                        continue
                    for stamp, value in zip(
                        result.get("Timestamps", []), result.get("Values", []), strict=False
                    ):
                        values[metric][stamp.timestamp()] = float(value)
                token = response.get("NextToken")
                if not token:
                    break
                kwargs["NextToken"] = token
        return {metric: tuple(sorted(points.items())) for metric, points in values.items()}
