"""`AwsCloud`: the `mldr.cloud.Cloud` of one AWS account, built on a `ClientFactory`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mldr.cloud import Cloud
from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.calls import SilentRegions, Timeouts
from mldr.topology import Topology

if TYPE_CHECKING:
    # Each service module is imported when first asked for: a check that lists S3 needs neither
    # Route 53's HTTP client (httpx, ~0.1 s) nor CloudWatch's.
    from mldr.cloud.aws.cloudwatch import CloudWatchMetrics
    from mldr.cloud.aws.compute import AwsComputePool
    from mldr.cloud.aws.dynamodb import DynamoControlStore
    from mldr.cloud.aws.route53 import Route53Traffic
    from mldr.cloud.aws.s3 import S3ObjectStore
    from mldr.cloud.aws.sns import SnsAlerts


class AwsCloud:
    """Every service handle is cheap: clients are cached by the factory, per (service, region,
    timeouts), and the silent-region marks are shared by all of them."""

    def __init__(self, factory: ClientFactory) -> None:
        self.factory = factory

    @classmethod
    def from_environment(cls, topology: Topology, **kwargs: Any) -> AwsCloud:
        """Clients from `AIRFLOW_CONN_<ID>` variables or the default credential chain (the CLI)."""
        return cls(ClientFactory.from_environment(topology, **kwargs))

    @classmethod
    def from_airflow(cls, topology: Topology, **kwargs: Any) -> AwsCloud:
        """Clients through the Amazon provider's connections (a DAG task)."""
        return cls(ClientFactory.from_airflow(topology, **kwargs))

    @property
    def topology(self) -> Topology:
        return self.factory.topology

    @property
    def silent(self) -> SilentRegions:
        return self.factory.silent

    def objects(self, region: str, *, timeouts: Timeouts | None = None) -> S3ObjectStore:
        from mldr.cloud.aws.s3 import S3ObjectStore

        return S3ObjectStore(self.factory, region, timeouts=timeouts)

    def compute(self, region: str, *, timeouts: Timeouts | None = None) -> AwsComputePool:
        from mldr.cloud.aws.compute import AwsComputePool

        return AwsComputePool(self.factory, region, timeouts=timeouts)

    def metrics(self, region: str, *, timeouts: Timeouts | None = None) -> CloudWatchMetrics:
        from mldr.cloud.aws.cloudwatch import CloudWatchMetrics

        return CloudWatchMetrics(self.factory, region, timeouts=timeouts)

    def alerts(self, region: str, *, timeouts: Timeouts | None = None) -> SnsAlerts:
        from mldr.cloud.aws.sns import SnsAlerts

        return SnsAlerts(self.factory, region, timeouts=timeouts)

    def traffic(self, *, timeouts: Timeouts | None = None) -> Route53Traffic:
        from mldr.cloud.aws.route53 import Route53Traffic

        return Route53Traffic(self.factory, timeouts=timeouts)

    def control(self, *, timeouts: Timeouts | None = None) -> DynamoControlStore:
        from mldr.cloud.aws.dynamodb import DynamoControlStore

        return DynamoControlStore(self.factory, timeouts=timeouts)


def _satisfies_protocol(cloud: AwsCloud) -> Cloud:
    """mypy checks here that `AwsCloud` is a `Cloud`, method for method."""
    return cloud
