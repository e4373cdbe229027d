"""ECS services or Auto Scaling groups as the compute pool (`mldr.cloud.ComputePool`).

The topology says which one a region runs; the sandbox's moto reports no running ECS tasks, so
there `mldr.actions.compute` waits on the endpoint's health instead.
"""

from __future__ import annotations

from typing import Any

from mldr.cloud.aws.clients import PROBE_TIMEOUTS, ClientFactory
from mldr.cloud.aws.errors import aws_call
from mldr.cloud.calls import Timeouts
from mldr.cloud.compute import PoolCounts
from mldr.errors import NotFound
from mldr.topology import ComputeKind


class AwsComputePool:
    def __init__(self, factory: ClientFactory, region: str, *, timeouts: Timeouts | None = None) -> None:
        self.factory = factory
        self.region = region
        self.timeouts = timeouts
        self.compute = factory.topology.region(region).compute
        self.resource = (
            f"ECS service {self.compute.cluster}/{self.compute.service}"
            if self.compute.kind == ComputeKind.ECS
            else f"Auto Scaling group {self.compute.auto_scaling_group}"
        )

    def _client(self, *, probe: bool) -> Any:
        service = "ecs" if self.compute.kind == ComputeKind.ECS else "autoscaling"
        timeouts = self.timeouts or (PROBE_TIMEOUTS if probe else None)
        return self.factory.client(service, self.region, timeouts=timeouts)

    def counts(self) -> PoolCounts:
        compute, region = self.compute, self.region
        client = self._client(probe=True)
        if compute.kind == ComputeKind.ECS:
            with aws_call(self.resource, region=region):
                services: list[dict[str, Any]] = client.describe_services(
                    cluster=compute.cluster, services=[compute.service]
                )["services"]
            if not services:
                raise NotFound("service not found", resource=f"ECS service {compute.service}", region=region)
            return PoolCounts(int(services[0]["desiredCount"]), int(services[0]["runningCount"]))
        with aws_call(self.resource, region=region):
            groups = client.describe_auto_scaling_groups(AutoScalingGroupNames=[compute.auto_scaling_group])[
                "AutoScalingGroups"
            ]
        if not groups:
            raise NotFound("group not found", resource=self.resource, region=region)
        group = groups[0]
        in_service = sum(1 for i in group.get("Instances", []) if i.get("LifecycleState") == "InService")
        return PoolCounts(int(group["DesiredCapacity"]), in_service)

    def set_desired(self, capacity: int) -> None:
        compute = self.compute
        client = self._client(probe=False)
        with aws_call(self.resource, region=self.region):
            if compute.kind == ComputeKind.ECS:
                client.update_service(cluster=compute.cluster, service=compute.service, desiredCount=capacity)
            else:
                client.set_desired_capacity(
                    AutoScalingGroupName=compute.auto_scaling_group,
                    DesiredCapacity=capacity,
                    HonorCooldown=False,
                )
