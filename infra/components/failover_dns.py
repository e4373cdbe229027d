"""Route 53 failover routing for the inference DNS name: a health check per region, two alias records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import pulumi
import pulumi_aws as aws


class FailoverRole(StrEnum):
    PRIMARY = "PRIMARY"
    SECONDARY = "SECONDARY"


@dataclass(frozen=True)
class FailoverEndpoint:
    region: str
    role: FailoverRole
    #: The region's load balancer: its DNS name and its canonical hosted zone (alias target).
    dns_name: pulumi.Input[str]
    zone_id: pulumi.Input[str]


@dataclass(frozen=True)
class FailoverDnsArgs:
    #: The name clients use, e.g. inference.example.com.
    dns_name: str
    hosted_zone_id: pulumi.Input[str]
    endpoints: Sequence[FailoverEndpoint]
    health_path: str
    #: Route 53 probes every 10 or 30 seconds; `failure_threshold` misses in a row mark it unhealthy.
    request_interval: int
    failure_threshold: int
    port: int = 80
    tags: Mapping[str, str] = field(default_factory=dict)


class FailoverDns(pulumi.ComponentResource):
    """PRIMARY and SECONDARY alias records, each gated by its region's health check.

    Detection takes about `request_interval x failure_threshold` seconds; that window is part
    of the RTO the drills measure.
    """

    def __init__(self, name: str, args: FailoverDnsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mldr:index:FailoverDns", name, None, opts)
        roles = sorted(e.role for e in args.endpoints)
        if roles != [FailoverRole.PRIMARY, FailoverRole.SECONDARY]:
            raise ValueError(f"{name}: needs exactly one PRIMARY and one SECONDARY endpoint, got {roles}")
        child = pulumi.ResourceOptions(parent=self)
        self.health_checks: dict[str, aws.route53.HealthCheck] = {}
        self.records: dict[str, aws.route53.Record] = {}
        for endpoint in args.endpoints:
            check = aws.route53.HealthCheck(
                f"{name}-{endpoint.region}-health",
                type="HTTP",
                fqdn=endpoint.dns_name,
                port=args.port,
                resource_path=args.health_path,
                request_interval=args.request_interval,
                failure_threshold=args.failure_threshold,
                tags={
                    **args.tags,
                    "Name": f"{args.dns_name} in {endpoint.region}",
                    "mldr:region": endpoint.region,
                },
                opts=child,
            )
            record = aws.route53.Record(
                f"{name}-{endpoint.role.lower()}",
                zone_id=args.hosted_zone_id,
                name=args.dns_name,
                type="A",
                # The runbooks (and the sandbox edge) read the region from the set identifier.
                set_identifier=endpoint.region,
                failover_routing_policies=[
                    aws.route53.RecordFailoverRoutingPolicyArgs(type=endpoint.role.value)
                ],
                health_check_id=check.id,
                aliases=[
                    aws.route53.RecordAliasArgs(
                        name=endpoint.dns_name,
                        zone_id=endpoint.zone_id,
                        # One signal decides: the health check above, with the configured interval
                        # and threshold the runbooks and drills reason about. Evaluating the ALB's
                        # target health as well would add a second, unconfigured one.
                        evaluate_target_health=False,
                    )
                ],
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # The failover runbook switches traffic by swapping PRIMARY and SECONDARY on
                    # these records; a later `pulumi up` must not silently swap them back.
                    ignore_changes=["failoverRoutingPolicies"],
                ),
            )
            self.health_checks[endpoint.region] = check
            self.records[endpoint.region] = record
        self.register_outputs(
            {"healthCheckIds": {region: check.id for region, check in self.health_checks.items()}}
        )
