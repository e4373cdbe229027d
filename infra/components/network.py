"""A small VPC per region for the inference service: two public subnets, no NAT gateway."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class RegionalNetworkArgs:
    region: str
    cidr: str
    tags: Mapping[str, str] = field(default_factory=dict)


class RegionalNetwork(pulumi.ComponentResource):
    """VPC with two public subnets in two availability zones (an ALB needs two).

    Tasks get public IPs to pull their image instead of going through NAT gateways, which
    would cost about as much as the rest of a pilot-light region; the security groups in
    `RegionalInference` still admit traffic only through the load balancer.
    """

    def __init__(
        self, name: str, args: RegionalNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mldr:index:RegionalNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = {**args.tags, "mldr:region": args.region}
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            region=args.region,
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={**tags, "Name": name},
            opts=child,
        )
        gateway = aws.ec2.InternetGateway(
            f"{name}-igw", region=args.region, vpc_id=self.vpc.id, tags=tags, opts=child
        )
        routes = aws.ec2.RouteTable(
            f"{name}-public",
            region=args.region,
            vpc_id=self.vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=gateway.id)],
            tags=tags,
            opts=child,
        )
        zones = aws.get_availability_zones_output(
            state="available", region=args.region, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        halves = list(ipaddress.ip_network(args.cidr).subnets(prefixlen_diff=1))
        self.subnets: list[aws.ec2.Subnet] = []
        for i, half in enumerate(halves):
            subnet = aws.ec2.Subnet(
                f"{name}-public-{i}",
                region=args.region,
                vpc_id=self.vpc.id,
                cidr_block=str(half),
                availability_zone=zones.names[i],
                map_public_ip_on_launch=True,
                tags={**tags, "Name": f"{name}-public-{i}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{i}",
                region=args.region,
                subnet_id=subnet.id,
                route_table_id=routes.id,
                opts=child,
            )
            self.subnets.append(subnet)
        self.subnet_ids = [s.id for s in self.subnets]
        self.register_outputs({"vpcId": self.vpc.id, "subnetIds": self.subnet_ids})
